"""Form widgets of the project."""

from django import forms


class SuggestionsInput(forms.TextInput):
    """A text box that offers its field's choices as one types, through a `<datalist>`.

    For a choice among hundreds (the time zones) or dozens (the event kinds), where a
    menu is slow to draw and slower to use: typing part of a name narrows the list.
    The field still checks the value against its choices. Each suggestion shows its
    label where the label says more than the value.
    """

    template_name = "ehr/widgets/suggestions.html"

    def __init__(self, attrs=None):
        super().__init__({"autocomplete": "off", "spellcheck": "false", **(attrs or {})})
        self.choices = ()  # set by the ChoiceField that uses the widget

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget = context["widget"]
        widget["list_id"] = widget["attrs"]["list"] = f"{widget['attrs'].get('id', name)}-options"
        widget["suggestions"] = [
            (choice, "" if str(label) == str(choice) else label)
            for choice, label in self.choices
            if choice != ""  # a filter's "All ..." choice: the empty box says it
        ]
        return context
