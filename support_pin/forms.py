"""Forms of the PIN prompts and the support console."""

from django import forms

from accounts.forms import IdentityForm
from support_pin.services import InvalidPinFormat, app_pin_weakness, normalize_pin

PIN_HELP = "Exactly 4 digits, 0-9."


class PinField(forms.CharField):
    """4 ASCII digits; spaces around them ignored; anything else a field error."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": r"\s*[0-9]{4}\s*"}
            ),
        )
        super().__init__(strip=False, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return value
        try:
            return normalize_pin(value)
        except InvalidPinFormat:
            raise forms.ValidationError(
                "Enter exactly 4 digits (0-9).", code="invalid_pin"
            ) from None


class PasswordPromptForm(IdentityForm):
    """The "Enter Your Password" prompt before a PIN is shown (and a code, where enrolled)."""


class AppPinForm(PasswordPromptForm):
    """View/Edit of the App Unlock PIN: the password, and a new PIN to set it."""

    new_app_pin = PinField(
        label="New App Unlock PIN",
        required=False,
        help_text=(
            "Leave empty to only view it. "
            + PIN_HELP
            + " Not one digit four times (1111) and not a run (1234, 4321)."
        ),
    )

    def clean_new_app_pin(self) -> str:
        pin = self.cleaned_data["new_app_pin"]
        weakness = app_pin_weakness(pin) if pin else None
        if weakness is not None:
            raise forms.ValidationError(
                f"This PIN is too easy to guess: {weakness}. Choose another 4 digits.",
                code="weak_pin",
            )
        return pin


class ConsoleSearchForm(forms.Form):
    q = forms.CharField(
        label="Find account",
        max_length=150,
        help_text="Username, email, Doctor ID, or name.",
    )


class ConsoleValidateForm(forms.Form):
    account = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    pin = PinField(label="Support PIN the caller gives", help_text=PIN_HELP)


def pin_prompt_forms(user) -> dict:
    """The two PIN prompts the account pages open as dialogs, with ids of their own."""
    return {
        "support_pin_prompt": PasswordPromptForm(user=user, auto_id="support-pin-%s"),
        "app_pin_prompt": AppPinForm(user=user, auto_id="app-pin-%s"),
    }
