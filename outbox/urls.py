from django.urls import path

from outbox import views

urlpatterns = [path("audit/outbox/", views.outbox_page, name="outbox_status")]
