"""The form renderer: Django's, with the plain <input> widgets rendered in Python.

Django renders every widget through three nested templates (the widget, input.html,
attrs.html); on a page with a few inputs that was a third of the render time.
The <input> widgets are rendered here to the same markup those templates give
(tests/ehr/test_form_renderer.py compares the two); everything else goes
through Django's templates as before.
"""

from django.forms.renderers import DjangoTemplates
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# Widget templates whose whole content is {% include "django/forms/widgets/input.html" %}.
INPUT_TEMPLATES = frozenset(
    f"django/forms/widgets/{name}.html"
    for name in (
        "checkbox", "color", "date", "datetime", "email", "file", "hidden", "number",
        "password", "search", "tel", "text", "time", "url",
    )
)  # fmt: skip


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html: False drops the attribute, True writes its name."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(format_html(" {}", name))
        else:
            parts.append(format_html(' {}="{}"', name, str(value)))
    return "".join(parts)


class FormRenderer(DjangoTemplates):
    def render(self, template_name, context, request=None) -> SafeString:
        if template_name not in INPUT_TEMPLATES:
            return super().render(template_name, context, request)
        widget = context["widget"]
        value = widget["value"]
        markup = format_html('<input type="{}" name="{}"', widget["type"], widget["name"])
        if value is not None:
            markup += format_html(' value="{}"', str(value))
        return mark_safe(markup + _attrs(widget["attrs"]) + ">")  # noqa: S308  (every part escaped above)  # nosec B308 B703
