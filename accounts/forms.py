"""Forms of the Account Settings and Staff Account Information pages."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.core.validators import URLValidator
from phonenumber_field.formfields import PhoneNumberField

from accounts.images import clean_image_upload
from accounts.mfa import normalize_code
from accounts.models import ProviderProfile, Specialty, User
from accounts.validators import time_zone_names

IMAGE_ACCEPT = "image/png,image/jpeg"


def _phone_field(label: str) -> PhoneNumberField:
    return PhoneNumberField(
        label=label,
        required=False,
        error_messages={"invalid": "Enter a valid phone number, e.g. (202) 555-0143."},
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )


class SignInForm(AuthenticationForm):
    """Django's sign-in form with the product's labels."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The username or password is not correct.",
    }


class ProviderProfileForm(forms.ModelForm):
    """The editable fields of the provider Profile tab.

    Names and the Doctor ID are read-only here (the seed: a name change affects
    prescriptions and clinical notes and goes through support).
    """

    time_zone = forms.ChoiceField(label="Timezone", choices=())
    specialties = forms.ModelMultipleChoiceField(
        label="Specialty",
        queryset=Specialty.objects.all(),
        required=False,
        help_text="Hold Ctrl (or Cmd) to choose several.",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    website = forms.URLField(
        label="Website",
        required=False,
        max_length=200,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        error_messages={"invalid": "Enter a web address such as https://example.org."},
    )
    home_phone = _phone_field("Home Phone")
    office_phone = _phone_field("Office Phone")
    cell_phone = _phone_field("Cell Phone")
    profile_picture = forms.FileField(
        label="Profile Picture",
        required=False,
        help_text="Will be attached to patient emails. PNG or JPEG, at most 2 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
    )
    business_logo = forms.FileField(
        label="Practice Business Logo",
        required=False,
        help_text="Will be attached to emails & official forms. PNG or JPEG, at most 2 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": IMAGE_ACCEPT}),
    )

    class Meta:
        model = ProviderProfile
        fields = [
            "specialties",
            "job_title",
            "salutation",
            "suffix",
            "website",
            "home_phone",
            "office_phone",
            "cell_phone",
            "profile_picture",
            "business_logo",
            "display_logo_on_faxes",
        ]
        labels = {
            "job_title": "Job Title",
            "salutation": "Salutation",
            "suffix": "Suffix",
            "display_logo_on_faxes": "Display logo on faxes",
        }
        help_texts = {
            "job_title": "",
            "salutation": "",
            "suffix": "For example MD or DO.",
            "display_logo_on_faxes": "Display business logo on fax cover sheet",
        }

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(name, name) for name in time_zone_names()]
        self.fields["time_zone"].initial = user.time_zone
        self.order_fields(["specialties", "job_title", "time_zone"])

    def clean_profile_picture(self):
        return self._clean_image("profile_picture")

    def clean_business_logo(self):
        return self._clean_image("business_logo")

    def _clean_image(self, name: str):
        value = self.cleaned_data.get(name)
        if value is False or value is None:  # cleared, or nothing uploaded
            return value
        if getattr(value, "_committed", False):  # the stored file, unchanged
            return None
        return clean_image_upload(value)

    def changes(self) -> dict:
        """Return the cleaned values for the service; images are None when unchanged."""
        return dict(self.cleaned_data)


class StaffAccountForm(forms.Form):
    """The editable fields of Staff Account Information."""

    email = forms.EmailField(label="Email address", max_length=254)
    home_phone = _phone_field("Home phone")
    cell_phone = _phone_field("Cell phone")

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.user.pk).exists()
        if taken:
            raise forms.ValidationError("Another account already uses this email address.")
        return email


class ChangePasswordForm(PasswordChangeForm):
    """Django's password change form: the current password, then the new one twice."""


class MfaCodeForm(forms.Form):
    """A code from the authenticator app, or one of the backup codes: the user says which."""

    method = forms.ChoiceField(
        label="Code from",
        choices=[("app", "Authenticator app"), ("backup", "Backup code")],
        initial="app",
        widget=forms.RadioSelect,
    )
    code = forms.CharField(
        label="Code",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )

    def clean(self):
        data = super().clean()
        method, code = data.get("method"), data.get("code")
        if method and code is not None:
            normalized = normalize_code(method, code)
            if normalized is None:
                message = (
                    "Enter the 6 digits your authenticator app shows."
                    if method == "app"
                    else "Enter one of your 8-character backup codes."
                )
                self.add_error("code", message)
            else:
                data["code"] = normalized
        return data


class MfaConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self):
        code = normalize_code("app", self.cleaned_data["code"])
        if code is None:
            raise forms.ValidationError("Enter the 6 digits your authenticator app shows.")
        return code


class MfaRemoveForm(MfaCodeForm):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class ReauthForm(forms.Form):
    """Confirm it is you: the password, and a code when the account has an authenticator."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )


class StaffCreateForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=150)
    last_name = forms.CharField(label="Last name", max_length=150)
    username = forms.CharField(
        label="Username",
        max_length=150,
        validators=[User.username_validator],
        help_text="Letters, digits and @ . + - _ only.",
    )
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(label="Role", choices=())

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("That username is taken.")
        return username

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("Another account already uses this email address.")
        return email
