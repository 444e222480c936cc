"""Error pages: inside the layout, with a way back; the 500 page needs no database or user."""

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error


def assert_in_layout(page: str) -> None:
    assert '<link rel="stylesheet" href="/static/css/app.css">' in page
    assert '<header class="topbar">' in page
    assert 'href="/">Go to your account page</a>' in page


def test_a_refused_page_is_styled_and_offers_a_way_back(nurse_client):
    response = nurse_client.get("/account/settings/")
    assert response.status_code == 403
    page = response.content.decode()
    assert_in_layout(page)
    assert "You cannot open this page" in page
    assert "Sign out" in page  # the signed-in layout, with its menu


def test_a_missing_page_is_styled_and_offers_a_way_back(nurse_client):
    response = nurse_client.get("/no/such/page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert_in_layout(page)
    assert "Page not found" in page


def test_a_form_without_its_token_is_refused_with_a_styled_page(nurse):
    client = Client(enforce_csrf_checks=True)
    client.force_login(nurse)
    response = client.post("/account/staff/", {"email": nurse.email})
    assert response.status_code == 403
    page = response.content.decode()
    assert_in_layout(page)
    assert "This form has expired" in page and "Nothing was saved" in page


@pytest.mark.django_db
def test_the_server_error_page_needs_neither_the_database_nor_a_user(django_assert_num_queries):
    request = RequestFactory().get("/account/settings/")  # no session, no user
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    page = response.content.decode()
    assert_in_layout(page)
    assert "Something went wrong on our side" in page
    assert "Sign out" not in page
