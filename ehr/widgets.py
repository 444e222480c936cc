"""Form widgets of the project."""

from functools import lru_cache

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


class SuggestionsInput(forms.TextInput):
    """A text box that offers its field's choices as one types, through a `<datalist>`.

    For a choice among hundreds (the time zones) or dozens (the event kinds), where a
    menu is slow to draw and slower to use: typing part of a name narrows the list.
    The field still checks the value against its choices. Each suggestion shows its
    label where the label says more than the value.
    """

    template_name = "ehr/widgets/suggestions.html"

    def __init__(self, attrs=None, *, by_label: bool = False):
        super().__init__({"autocomplete": "off", "spellcheck": "false", **(attrs or {})})
        self.choices = ()  # set by the ChoiceField that uses the widget
        # Suggest the labels themselves, for a field that takes a label as well as its
        # value: picking one then puts words in the box, not a code.
        self.by_label = by_label

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget = context["widget"]
        widget["list_id"] = widget["attrs"]["list"] = f"{widget['attrs'].get('id', name)}-options"
        shown = (
            (str(label), "") if self.by_label else (str(choice), "" if label == choice else label)
            for choice, label in ((str(choice), str(label)) for choice, label in self.choices)
            if choice != ""  # a filter's "All ..." choice: the empty box says it
        )
        widget["options"] = _options(tuple(shown))
        return context


@lru_cache(maxsize=64)
def _options(suggestions: tuple[tuple[str, str], ...]) -> SafeString:
    """The `<option>`s of a list of suggestions, written once per list and process.

    The lists are the same on every page (the time zones, the event kinds): written
    by a template loop, the 600 time zones took some 2.4 ms of every account page.
    """
    return format_html_join(
        "",
        '<option value="{}"{}></option>',
        (
            (value, format_html(' label="{}"', label) if label else "")
            for value, label in suggestions
        ),
    )
