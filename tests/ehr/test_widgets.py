"""Long choices are typed with suggestions (ehr/widgets.py), never drawn as a menu."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from django import forms

from accounts.forms import StaffAccountForm
from audit.forms import AuditEventFilter
from audit.models import AuditEvent
from ehr.widgets import SuggestionsInput
from tests.ehr.project_forms import project_fields

MENU_LIMIT = 30  # more choices than this go in a box that suggests them as one types


def choices_of(field) -> list:
    return [] if isinstance(field, forms.ModelChoiceField) else list(field.choices)


def test_no_menu_of_the_project_lists_more_than_a_few_dozen_choices():
    menus = {
        where: len(choices_of(field))
        for where, field in project_fields().items()
        if isinstance(field, forms.ChoiceField) and isinstance(field.widget, forms.Select)
    }
    assert menus  # the test sees the project's menus
    assert {where: n for where, n in menus.items() if n > MENU_LIMIT} == {}


def test_the_long_choices_of_the_project_are_suggested():
    fields = project_fields()
    for where in (
        "accounts.forms.ProviderProfileForm.time_zone",
        "accounts.forms.StaffAccountForm.time_zone",
        "audit.forms.AuditEventFilter.kind",
    ):
        assert isinstance(fields[where].widget, SuggestionsInput), where
        assert len(choices_of(fields[where])) > MENU_LIMIT, where


class Fruit(forms.Form):
    fruit = forms.ChoiceField(
        choices=[("", "Any"), ("apple", "Apple"), ("pear", 'A "pear" <b>'), ("fig", "fig")],
        widget=SuggestionsInput(attrs={"placeholder": "Any"}),
        required=False,
    )


def test_the_box_draws_its_choices_as_a_list_it_points_to():
    drawn = str(Fruit(initial={"fruit": "pear"})["fruit"])
    assert drawn.startswith(
        '<input type="text" name="fruit" value="pear" autocomplete="off" spellcheck="false" '
        'placeholder="Any" id="id_fruit" list="id_fruit-options">'
    )
    assert drawn.endswith(
        '<datalist id="id_fruit-options">'
        '<option value="apple" label="Apple"></option>'
        '<option value="pear" label="A &quot;pear&quot; &lt;b&gt;"></option>'
        '<option value="fig"></option>'
        "</datalist>"
    )


def test_a_label_that_says_no_more_than_its_value_is_left_out():
    form = forms.Form()
    form.fields["zone"] = forms.ChoiceField(choices=[("UTC", "UTC")], widget=SuggestionsInput)
    assert '<option value="UTC"></option>' in str(form["zone"])


def test_each_box_on_a_page_has_its_own_list():
    class Two(forms.Form):
        first = forms.ChoiceField(choices=[("a", "A")], widget=SuggestionsInput)
        second = forms.ChoiceField(choices=[("b", "B")], widget=SuggestionsInput)

    form = Two(prefix="x")
    assert 'list="id_x-first-options"' in str(form["first"])
    assert '<datalist id="id_x-second-options">' in str(form["second"])


@pytest.mark.django_db
def test_a_value_not_in_the_list_gets_a_message_and_is_not_taken(nurse):
    form = StaffAccountForm({"email": nurse.email, "time_zone": "Atlantis"}, user=nurse)
    assert not form.is_valid()
    assert form.errors["time_zone"] == [
        "Choose a time zone from the list, such as America/Chicago."
    ]


@pytest.mark.django_db
def test_the_event_box_takes_a_kind_and_refuses_anything_else():
    def cleaned(kind):
        events = AuditEventFilter(
            {"kind": kind},
            queryset=AuditEvent.objects.all(),
            find_patients=lambda text: [],
            find_accounts=lambda text: [],
            time_zone=ZoneInfo("America/New_York"),
            today=date(2026, 11, 24),
        )
        return events.form.cleaned_data if events.form.is_valid() else events.form.errors

    assert cleaned("support_pin.viewed")["kind"] == "support_pin.viewed"
    assert cleaned("")["kind"] == ""
    assert cleaned(" support pin: VIEWED ")["kind"] == "support_pin.viewed"  # its name
    assert cleaned("Support PIN viewed")["kind"] == "support_pin.viewed"  # without the colon
    # A part of one name only (as the box's help offers), any case.
    assert cleaned("unblocked by OWNER")["kind"] == "support_pin.validation_unblocked_by_owner"
    # A part of several names: some of them, and what to do.
    several = cleaned("locked")["kind"][0]
    assert several.startswith("12 kinds of event match that (")
    assert "Security: password prompt refused locked" in several and "and more" in several
    assert "Type more of the name, or pick one from the list." in several
    for nothing in ("lockout", "Support PIN viewed twice", "<b>x</b>"):
        assert cleaned(nothing)["kind"] == ["Choose an event from the list, or leave it empty."], (
            nothing
        )
