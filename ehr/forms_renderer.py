"""The form renderer: Django's widget templates, with menus and inputs drawn in Python.

Django draws each widget through its template engine, and a `<select>` includes
one more template per option. A menu of the 77 event kinds took about 5 ms of a
report page that otherwise costs a few; the time zone menu, with some 400 zones,
far more. Every page with a filter or a settings form paid it on every request.

`FormRenderer` draws the three templates that nearly every form uses (the
select, its options and the plain input) with the same markup, byte for byte,
and the same escaping as Django's own templates; any other widget template, or
a widget given a template of its own, still goes through the template engine.
`tests/ehr/test_forms_renderer.py` renders every form field of the project and
a set of awkward values both ways and compares them, so a Django upgrade that
changes the markup fails there rather than drifting.
"""

import html
from collections.abc import Callable

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.timezone import template_localtime

SELECT = "django/forms/widgets/select.html"
OPTION = "django/forms/widgets/select_option.html"
INPUT = "django/forms/widgets/input.html"


def _escape(value) -> str:
    """`conditional_escape`, without its lazy wrapper and SafeString (nothing here is kept)."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _text(value) -> str:
    """What `{{ value }}` prints: a time in the current zone, the value localized (a
    number, a date), then escaped."""
    if type(value) is str:
        return _escape(value)
    return _escape(localize(template_localtime(value)))


def _attrs(attrs: dict) -> str:
    """`attrs.html`: each attribute but those set to False, a True one without a value."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {_escape(name)}")
        else:
            parts.append(f' {_escape(name)}="{_escape(value)}"')
    return "".join(parts)


def _option(option: dict) -> str | None:
    if option["template_name"] != OPTION:
        return None
    return (
        f'<option value="{_escape(option["value"])}"{_attrs(option["attrs"])}>'
        f"{_text(option['label'])}</option>\n"
    )


def _select(widget: dict) -> str | None:
    parts = [f'<select name="{_escape(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            drawn = _option(option)
            if drawn is None:
                return None  # an option with a template of its own: the engine draws it all
            parts.append(f"\n  {drawn}")
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


def _input(widget: dict) -> str:
    value = widget["value"]
    shown = "" if value is None else f' value="{_escape(value)}"'
    return (
        f'<input type="{_escape(widget["type"])}" '
        f'name="{_escape(widget["name"])}"{shown}{_attrs(widget["attrs"])}>'
    )


DRAWN: dict[str, Callable[[dict], str | None]] = {SELECT: _select, INPUT: _input}


class FormRenderer(DjangoTemplates):
    """Django's default renderer, drawing selects and inputs without the template engine."""

    def render(self, template_name, context, request=None):
        draw = DRAWN.get(template_name)
        if draw is not None and "widget" in context:
            drawn = draw(context["widget"])
            if drawn is not None:
                return drawn  # Widget._render marks it safe, as it does the engine's output
        return super().render(template_name, context, request=request)
