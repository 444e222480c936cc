from django import forms

from break_glass import conf
from break_glass.services import REVIEW_OUTCOMES


class BreakGlassOpenForm(forms.Form):
    justification = forms.CharField(
        label="Why is this access needed?",
        min_length=conf.MIN_JUSTIFICATION,
        max_length=2000,
        help_text=(
            f"At least {conf.MIN_JUSTIFICATION} characters. The account's owner and the "
            "practice's compliance officers receive this text at once."
        ),
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={
            "min_length": f"Write at least {conf.MIN_JUSTIFICATION} characters on why this "
            "access is needed."
        },
    )
    minutes = forms.IntegerField(
        label="For how many minutes",
        min_value=1,
        max_value=conf.MAX_MINUTES,
        initial=15,
        help_text=f"At most {conf.MAX_MINUTES}.",
        error_messages={
            "required": "Say for how many minutes the access is needed.",
            "invalid": f"Enter a whole number of minutes, from 1 to {conf.MAX_MINUTES}.",
            "min_value": f"Enter a whole number of minutes, from 1 to {conf.MAX_MINUTES}.",
            "max_value": f"Enter a whole number of minutes, from 1 to {conf.MAX_MINUTES}.",
        },
    )


class BreakGlassReviewForm(forms.Form):
    outcome = forms.ChoiceField(
        label="Outcome",
        choices=[(outcome.value, outcome.label) for outcome in REVIEW_OUTCOMES],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose whether the access was justified."},
    )
    note = forms.CharField(
        label="Note",
        min_length=conf.MIN_REVIEW_NOTE,
        max_length=2000,
        help_text=(
            f"At least {conf.MIN_REVIEW_NOTE} characters: what you checked (the caller, the "
            "agent's actions) and what follows."
        ),
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Write what you checked.",
            "min_length": f"Write at least {conf.MIN_REVIEW_NOTE} characters on what you checked.",
        },
    )
