from django import forms

from break_glass import conf


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
    )
