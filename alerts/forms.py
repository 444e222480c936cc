from django import forms

from alerts.models import Rule


class AlertFilterForm(forms.Form):
    rule = forms.ChoiceField(
        label="Rule",
        required=False,
        choices=[("", "All rules"), *Rule.choices],
        error_messages={"invalid_choice": "Choose one of the rules in the list."},
    )
    # The page of acknowledged alerts; set by the list's own links, not shown as a field.
    page = forms.IntegerField(
        required=False,
        min_value=1,
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "Page must be a whole number, such as 2.",
            "min_value": "Page must be 1 or more.",
        },
    )


class AlertAcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="Note",
        max_length=2000,
        help_text="What you checked and what follows (for example: called the agent's "
        "manager; sessions ended).",
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Write a note on what you checked before acknowledging the alert.",
            "max_length": "Keep the note under 2,000 characters.",
        },
    )
