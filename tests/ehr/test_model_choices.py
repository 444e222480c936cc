"""Menus of model rows are read with one plain query (ehr/model_choices.py)."""

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Specialty
from accounts.roles import Role
from ehr.model_choices import ModelMultipleChoiceField, OneQueryChoiceIterator
from tests.ehr.project_forms import project_fields
from tests.factories import make_practice, make_user


def model_fields():
    return {
        where: field
        for where, field in project_fields().items()
        if isinstance(field, forms.ModelChoiceField)  # and ModelMultipleChoiceField
    }


def test_every_model_menu_of_the_project_reads_in_one_query():
    menus = {
        where: field
        for where, field in model_fields().items()
        if isinstance(field.widget, forms.Select)  # and SelectMultiple
    }
    assert "accounts.forms.ProviderProfileForm.specialties" in menus
    slow = [
        where
        for where, field in menus.items()
        if not issubclass(field.iterator, OneQueryChoiceIterator)
    ]
    assert slow == []


def test_practices_are_typed_never_listed_in_a_menu():
    """A platform's practices grow with it: each choice of one is a box that suggests."""
    practices = {
        where: field
        for where, field in model_fields().items()
        if field.queryset.model.__name__ == "Practice"
    }
    assert set(practices) == {
        "audit.forms.AuditEventFilter.practice",
        "audit.dashboard_views.DashboardForm.practice",
    }
    assert all(type(field.widget) is forms.TextInput for field in practices.values())


class Specialties(forms.Form):
    specialties = ModelMultipleChoiceField(
        queryset=Specialty.objects.filter(name__endswith="ology").order_by("name")
    )


@pytest.mark.django_db
def test_a_menu_reads_its_rows_once_and_lists_them_in_order(django_assert_num_queries):
    for name in ("Zymology", "Audiology"):
        Specialty.objects.get_or_create(name=name)
    form = Specialties()
    with django_assert_num_queries(1):
        drawn = str(form["specialties"])
        assert str(form["specialties"]) == drawn  # drawn again from the same rows
    names = [drawn.index(name) for name in ("Audiology", "Zymology")]
    assert names == sorted(names)
    # A fresh form reads afresh: a specialty added since shows.
    Specialty.objects.get_or_create(name="Birchology")
    assert "Birchology" in str(Specialties()["specialties"])


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_no_page_with_a_menu_opens_a_server_side_cursor(client):
    practice = make_practice("Alder Practice")
    Specialty.objects.get_or_create(name="Cardiology")
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    provider = make_user(Role.PROVIDER, practice=practice, username="provider")
    for user, path, shown in (
        (auditor, f"/audit/dashboard/?practice={practice.group_id}", "Alder Practice"),
        (auditor, f"/audit/?practice={practice.group_id}", f'value="{practice.group_id}"'),
        (provider, "/account/settings/", "Cardiology"),
    ):
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            html = client.get(path).content.decode()
        assert shown in html, path
        declared = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DECLARE")]
        assert declared == [], path
