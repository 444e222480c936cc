"""Menus of model rows are read with one plain query (ehr/model_choices.py)."""

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Specialty
from accounts.roles import Role
from audit.dashboard_views import DashboardForm
from ehr.model_choices import OneQueryChoiceIterator
from tests.ehr.project_forms import project_fields
from tests.factories import make_practice, make_user


def test_every_model_menu_of_the_project_reads_in_one_query():
    menus = {
        where: field
        for where, field in project_fields().items()
        if isinstance(field, forms.ModelChoiceField)  # and ModelMultipleChoiceField
    }
    assert len(menus) >= 3  # the dashboard's and the report's practice, the specialties
    slow = [
        where
        for where, field in menus.items()
        if not issubclass(field.iterator, OneQueryChoiceIterator)
    ]
    assert slow == []


@pytest.mark.django_db
def test_a_menu_reads_its_rows_once_and_lists_them_in_order(django_assert_num_queries):
    make_practice("Zephyr Clinic")
    make_practice("Alder Practice")
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    form = DashboardForm(None, viewer=auditor)
    with django_assert_num_queries(1):
        drawn = str(form["practice"])
        assert str(form["practice"]) == drawn  # drawn again from the same rows
    names = [drawn.index(name) for name in ("All practices", "Alder Practice", "Zephyr Clinic")]
    assert names == sorted(names)
    # A fresh form reads afresh: a practice added since shows.
    make_practice("Birch Health")
    assert "Birch Health" in str(DashboardForm(None, viewer=auditor)["practice"])


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_no_page_with_a_menu_opens_a_server_side_cursor(client):
    practice = make_practice("Alder Practice")
    Specialty.objects.get_or_create(name="Cardiology")
    auditor = make_user(Role.PLATFORM_AUDITOR, username="auditor")
    provider = make_user(Role.PROVIDER, practice=practice, username="provider")
    for user, path, menu in (
        (auditor, "/audit/dashboard/", "Alder Practice"),
        (auditor, "/audit/", "Alder Practice"),
        (provider, "/account/settings/", "Cardiology"),
    ):
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            html = client.get(path).content.decode()
        assert menu in html, path
        declared = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DECLARE")]
        assert declared == [], path
