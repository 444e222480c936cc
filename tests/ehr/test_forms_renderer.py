"""The Python-drawn widgets match Django's own templates, byte for byte."""

import importlib
import inspect
import pkgutil
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import django_filters
import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from ehr.forms_renderer import FormRenderer
from tests.factories import make_practice

APPS = ["accounts", "alerts", "audit", "break_glass", "ehr", "outbox", "support_pin"]
AWKWARD = ["", "plain", 'a "quoted" <b>tag</b> & more', "1", 7, None, "Ünïcode ✓", "=1+2"]


def project_fields():
    """Every form field declared by a form or filter set of the project, by where it lives."""
    found = {}
    for app in APPS:
        package = importlib.import_module(app)
        for info in pkgutil.walk_packages(package.__path__, f"{app}."):
            if ".migrations" in info.name or ".management" in info.name:
                continue
            module = importlib.import_module(info.name)
            for cls_name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module.__name__:
                    continue
                if issubclass(cls, forms.BaseForm):
                    for name, field in cls.base_fields.items():
                        found[f"{cls.__module__}.{cls_name}.{name}"] = field
                elif issubclass(cls, django_filters.FilterSet):
                    for name, declared in cls.base_filters.items():
                        found[f"{cls.__module__}.{cls_name}.{name}"] = declared.field
    return found


def both(widget, name, value, attrs=None):
    """Draw the widget with Django's renderer and with ours (or name the error both raise)."""
    drawn = []
    for renderer in (DjangoTemplates(), FormRenderer()):
        try:
            drawn.append(widget.render(name, value, attrs=attrs, renderer=renderer))
        except (TypeError, ValueError) as error:  # a value the widget itself cannot take
            drawn.append(type(error).__name__)
    return drawn


@pytest.mark.django_db
def test_every_project_field_draws_as_django_does():
    make_practice('Smith & "Sons" <Clinic>')
    make_practice("Ünïcode Care")
    fields = project_fields()
    selects = [name for name, field in fields.items() if isinstance(field.widget, forms.Select)]
    assert len(fields) > 40 and len(selects) > 5  # the walk found the project's forms
    for where, field in fields.items():
        choices = [value for value, _label in getattr(field, "choices", [])][:3]
        for value in [*AWKWARD, *choices]:
            theirs, ours = both(field.widget, "field", value, attrs={"id": "id_field"})
            assert ours == theirs, where


@pytest.mark.parametrize("value", [*AWKWARD, ["a", "b"], date(2026, 3, 8), True, False])
def test_awkward_selects_and_inputs(value):
    timezone.activate(ZoneInfo("Asia/Kolkata"))
    try:
        drawn_alike(value)
    finally:
        timezone.deactivate()


def drawn_alike(value):
    widgets = [
        forms.Select(
            choices=[
                ("", "---"),
                ("a", mark_safe("<i>safe</i>")),  # nosec B308: a fixed test literal
                ("b", gettext_lazy("Lazy & translated")),
                (3, 4000),
                (4, date(2026, 3, 8)),  # the engine localizes a label that is not text
                (5, datetime(2024, 1, 2, 3, 4, tzinfo=UTC)),  # ... in the current zone
                ('x"y', "<script>"),
                ("Group & <one>", [("g1", "One"), ("g2", 'Two "2"')]),
            ],
            attrs={"class": 'a "b"', "required": True, "disabled": False, "data-n": 5},
        ),
        forms.SelectMultiple(choices=[("a", "A"), ("b", "B"), ("c", "C")]),
        forms.NullBooleanSelect(),
        forms.TextInput(attrs={"placeholder": "<Name>", "autofocus": True, "hidden": False}),
        forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        forms.NumberInput(),
        forms.EmailInput(),
        forms.PasswordInput(render_value=True),
        forms.HiddenInput(),
        forms.CheckboxInput(),
    ]
    for widget in widgets:
        theirs, ours = both(widget, 'n"a<m>e', value, attrs={"id": "id_x"})
        assert ours == theirs, type(widget).__name__


def test_an_option_with_a_template_of_its_own_goes_through_the_engine():
    class Marked(forms.Select):
        option_template_name = "django/forms/widgets/radio_option.html"

    theirs, ours = both(Marked(choices=[("a", "A")]), "x", "a")
    assert ours == theirs and "<input" in ours


def test_the_renderer_is_the_project_default(settings):
    assert settings.FORM_RENDERER == "ehr.forms_renderer.FormRenderer"
