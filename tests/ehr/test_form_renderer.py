"""The Python <input> rendering gives exactly the markup of Django's widget templates."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.utils.safestring import mark_safe
from hypothesis import given
from hypothesis import strategies as st

from ehr.form_renderer import INPUT_TEMPLATES, FormRenderer

WIDGETS = [
    forms.TextInput,
    forms.HiddenInput,
    forms.PasswordInput,
    forms.EmailInput,
    forms.NumberInput,
    forms.URLInput,
    forms.SearchInput,
    forms.TelInput,
    forms.ColorInput,
    forms.DateInput,
    forms.DateTimeInput,
    forms.TimeInput,
    forms.CheckboxInput,
    forms.FileInput,
]

attr_values = st.one_of(
    st.booleans(), st.none(), st.integers(), st.text(max_size=20), st.just('"><script>')
)
attr_names = st.sampled_from(["class", "maxlength", "required", "data-x", "aria-label", "<b>"])


def both(widget, value, attrs=None):
    return (
        widget.render("field", value, attrs=attrs, renderer=DjangoTemplates()),
        widget.render("field", value, attrs=attrs, renderer=FormRenderer()),
    )


@pytest.mark.parametrize("widget_class", WIDGETS)
@pytest.mark.parametrize(
    "value", [None, "", "plain", 'quote " & <tag>', mark_safe("<b>safe</b>"), 42, True]
)
def test_every_input_widget_renders_as_django_does(widget_class, value):
    django_markup, ours = both(widget_class(attrs={"class": "x", "required": True}), value)
    assert ours == django_markup


@given(attrs=st.dictionaries(attr_names, attr_values, max_size=5), value=st.text(max_size=30))
def test_any_attributes_and_value(attrs, value):
    django_markup, ours = both(forms.TextInput(), value, attrs)
    assert ours == django_markup


def test_the_templates_it_replaces_are_still_just_input_html():
    """If Django changes a widget template, this renderer must change with it."""
    renderer = DjangoTemplates()
    for name in INPUT_TEMPLATES:
        source = renderer.engine.get_template(name).template.source.strip()
        assert source == '{% include "django/forms/widgets/input.html" %}', name


def test_other_widgets_still_use_the_templates():
    select = forms.Select(choices=[("a", "A")]).render("s", "a", renderer=FormRenderer())
    assert select.startswith('<select name="s">') and "selected" in select


def test_the_site_uses_it(settings):
    from django.forms.renderers import get_default_renderer

    assert settings.FORM_RENDERER == "ehr.form_renderer.FormRenderer"
    assert isinstance(get_default_renderer(), FormRenderer)
