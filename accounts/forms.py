"""Forms of the Account Settings and Staff Account Information pages."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, SetPasswordMixin
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.template.loader import render_to_string
from phonenumber_field.formfields import PhoneNumberField
from phonenumbers import PhoneNumberFormat, example_number, format_number

from accounts import lockout
from accounts.images import clean_image_upload
from accounts.mfa import mfa_device, mfa_enrolled, normalize_code
from accounts.models import ProviderProfile, Specialty, User
from accounts.passkeys import NAME_MAX, PASSKEY, has_passkey
from accounts.phones import PhoneInput, practice_country
from accounts.validators import (
    time_zone_named,
    time_zone_names,
    validate_plain_name,
    validate_username_not_only_digits,
)
from ehr.model_choices import ModelMultipleChoiceField
from ehr.widgets import SuggestionsInput
from outbox.services import mail_enqueue

IMAGE_ACCEPT = "image/png,image/jpeg"


def _phone_field(label: str) -> PhoneNumberField:
    """A phone number field; `_phones_for` sets the country it is read and shown in."""
    return PhoneNumberField(label=label, required=False)


def _time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in time_zone_names()]


class TimeZoneField(forms.ChoiceField):
    """A time zone typed in a box: its name, or a place only one zone is named after."""

    def to_python(self, value):
        text = super().to_python(value).strip()
        return time_zone_named(text) or text if text else text


def _time_zone_field(**kwargs) -> forms.ChoiceField:
    """A time zone typed with suggestions: some 600 names are too many for a menu."""
    return TimeZoneField(
        label="Timezone",
        choices=_time_zone_choices,
        widget=SuggestionsInput(attrs={"placeholder": "A city, such as Chicago"}),
        error_messages={
            "invalid_choice": "Choose a time zone from the list, such as America/Chicago."
        },
        **kwargs,
    )


def _phones_for(form: forms.Form, user: User) -> None:
    """Read and show the form's phone numbers in the user's practice's national format."""
    country = practice_country(user)
    sample = example_number(country)
    example = format_number(sample, PhoneNumberFormat.NATIONAL) if sample else "+1 202 555 0143"
    for field in form.fields.values():
        if isinstance(field, PhoneNumberField):
            field.region = country
            field.widget = PhoneInput(country=country)
            field.error_messages["invalid"] = f"Enter a valid phone number, e.g. {example}."


class WebAddressField(forms.URLField):
    """A web address, http or https only.

    The scheme check replaces URLField's own validator rather than adding a
    second one: two failing validators would show the same error twice.
    """

    default_validators = [URLValidator(schemes=["http", "https"])]


class SignInForm(AuthenticationForm):
    """Django's sign-in form with the product's labels, checking one password of an
    account at a time (`lockout.guesses_in_turn`)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The username or password is not correct.",
    }

    def clean(self):
        with lockout.guesses_in_turn(self.cleaned_data.get("username")):
            try:
                return super().clean()
            except ValidationError as error:
                refused = error  # raised once the turn's failure count has committed
        raise refused


class ResetRequestForm(PasswordResetForm):
    """Django's password reset form, sending through the outbox.

    `save` queues a link for each active account with a password that uses the
    address and returns those accounts. For an address no account uses it
    composes and queues the same mail (token, link, text, sealed outbox row) for
    a stand-in account, then rolls the row back before anything commits, so both
    answers take about the same work (accounts/password_reset.py).
    """

    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    mailed: list[User]

    def get_users(self, email):
        accounts = list(super().get_users(email))
        return accounts or [User(email=email)]  # the stand-in: no primary key

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        """Queue the mail in the outbox: it leaves after the request's transaction commits."""
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        body = render_to_string(email_template_name, context)
        account = context["user"]
        if account.pk is not None:
            mail_enqueue(subject=subject, body=body, recipients=[to_email])
            self.mailed.append(account)
            return
        # The stand-in of an address no account uses: queue the same mail and take it back
        # before anything commits, so the answer costs what a real one does.
        with transaction.atomic():
            mail_enqueue(subject=subject, body=body, recipients=[to_email])
            transaction.set_rollback(True)

    def save(self, **kwargs) -> list[User]:
        self.mailed = []
        super().save(**kwargs)
        return self.mailed


class ProviderProfileForm(forms.ModelForm):
    """The editable fields of the provider Profile tab.

    Names and the Doctor ID are read-only here (the seed: a name change affects
    prescriptions and clinical notes and goes through support).
    """

    time_zone = _time_zone_field()
    specialties = ModelMultipleChoiceField(
        label="Specialty",
        queryset=Specialty.objects.all(),
        required=False,
        help_text="Choose one or more (with a mouse, hold Ctrl or Cmd to add one).",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    website = WebAddressField(
        label="Website",
        required=False,
        max_length=200,
        assume_scheme="https",
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
        self.fields["time_zone"].initial = user.time_zone
        self.order_fields(["specialties", "job_title", "time_zone"])
        _phones_for(self, user)
        # Before validation copies the form's values onto the instance.
        self.stored_phones = _stored_phones(self.instance)

    @property
    def phones_changed(self) -> bool:
        return _phones_differ(self.cleaned_data, self.stored_phones)

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
        clean_code_fields(self, data)
        return data


def clean_code_fields(form: forms.Form, data: dict) -> None:
    """Normalise the code for the device kind chosen, or put a field error on it."""
    method, code = data.get("method"), data.get("code")
    if method and code:
        normalized = normalize_code(method, code)
        if normalized is None:
            message = (
                "Enter the 6 digits your authenticator app shows."
                if method == "app"
                else "Enter one of your 8-character backup codes."
            )
            form.add_error("code", message)
        else:
            data["code"] = normalized


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


class IdentityForm(forms.Form):
    """Confirm it is you: the password, and a code when the account has a second factor.

    Every password prompt inside a session uses this form (or extends it); the
    view checks it with accounts.views.prompts.identity_confirmed.
    """

    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.offers_passkey = False
        if mfa_enrolled(user):
            code_fields = MfaCodeForm()
            self.fields["method"] = code_fields.fields["method"]
            self.fields["code"] = code_fields.fields["code"]
            self.fields["code"].widget.attrs.pop("autofocus", None)
            choices = [("backup", "Backup code")]
            if mfa_device(user) is not None:
                choices.insert(0, ("app", "Authenticator app"))
            if has_passkey(user):
                # First, as the sign-in step offers it; a passkey needs no code.
                choices.insert(0, (PASSKEY, "Passkey or security key"))
                self.offers_passkey = True
                self.fields["code"].required = False
            self.fields["method"].choices = choices
            self.fields["method"].initial = choices[0][0]

    locked = False  # set when the check found the account's prompts locked

    def add_error(self, field, error):
        """Record the error, and give the first field in error the focus when the page loads.

        A prompt may sit low on a long page (the Security tab's sessions): reloaded
        with its error, the page opened at the top and seemed to do nothing.
        """
        super().add_error(field, error)
        focused = any(f.widget.attrs.get("autofocus") for f in self.fields.values())
        name = field if field in self.fields else "password"
        if not focused and name in self.fields:
            self.fields[name].widget.attrs["autofocus"] = True

    @property
    def passkey_button(self) -> bool:
        """Whether this form shows the passkey button (one a page: the default ids' form)."""
        return self.offers_passkey and self.auto_id in {"id_%s", "support-pin-%s"}

    @property
    def http_status(self) -> int:
        """429 while the account's prompts are locked, 400 for any other error, else 200."""
        return 429 if self.locked else 400 if self.errors else 200

    @property
    def asks_for_code(self) -> bool:
        return "code" in self.fields

    def clean(self):
        data = super().clean()
        if self.asks_for_code and data.get("method") == PASSKEY:
            data["code"] = ""  # the passkey was used on the page, not typed
        elif self.asks_for_code and data.get("code"):
            clean_code_fields(self, data)
        elif self.asks_for_code and self.offers_passkey and self.fields["method"].required:
            self.add_error("code", "Enter a code, or use your passkey.")
        return data


class ChangePasswordForm(SetPasswordMixin, IdentityForm):
    """The current password (and a code, where enrolled), then the new one twice.

    Django's own new-password fields and validation; the current password is
    checked through the same gate as every other prompt, not by the form.
    """

    new_password1, new_password2 = SetPasswordMixin.create_password_fields(
        label1="New password", label2="New password confirmation"
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["password"].label = "Current password"
        self.order_fields(["password", "method", "code", "new_password1", "new_password2"])

    def clean(self):
        self.validate_passwords("new_password1", "new_password2")
        self.validate_password_for_user(self.user, "new_password2")
        return super().clean()


# The contact details support uses to verify a caller another way (break-glass shows
# them to the agent) and where resets and security notices go: changing any of them
# asks for the password (and code) as well, or a stolen session could plant its own.
CONTACT_PHONES = ("home_phone", "office_phone", "cell_phone")


def _stored_phones(profile) -> dict[str, str]:
    return {name: str(getattr(profile, name, "") or "") for name in CONTACT_PHONES}


def _phones_differ(data: dict, stored: dict[str, str]) -> bool:
    """Whether a form's cleaned phone numbers differ from the stored ones (E.164 text)."""
    return any(str(data.get(name) or "") != stored[name] for name in CONTACT_PHONES if name in data)


class ContactConfirmation:
    """The password (and code) that a change of contact details needs, and only that.

    Mixed into an `IdentityForm`: its password, method and code fields are optional,
    and `require_identity` asks for them once the form's change is one that needs them.
    """

    what = "the email address or a phone number"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].required = False
        self.fields["password"].label = f"Your password (only to change {self.what})"
        if self.offers_passkey:  # the page's passkey button belongs to its PIN dialog
            choices = [c for c in self.fields["method"].choices if c[0] != PASSKEY]
            self.fields["method"].choices = choices
            self.fields["method"].initial = choices[0][0]
            self.offers_passkey = False
        if self.asks_for_code:
            self.fields["method"].required = self.fields["code"].required = False

    def require_identity(self, data: dict) -> None:
        """Put an error on each missing part of the confirmation a contact change needs."""
        if not data.get("password"):
            self.add_error("password", f"Enter your password to change {self.what}.")
        method = data.get("method")
        if self.asks_for_code and not (method and (data.get("code") or method == PASSKEY)):
            self.add_error("code", f"Enter a code to change {self.what}.")


class StaffAccountForm(ContactConfirmation, IdentityForm):
    """The editable fields of Staff Account Information.

    A new email address is where password resets and security notices go, and the
    phone numbers are how support verifies a caller another way, so changing any of
    them asks for the password (and the code, where enrolled) as well.
    """

    email = forms.EmailField(label="Email address", max_length=254)
    home_phone = _phone_field("Home phone")
    cell_phone = _phone_field("Cell phone")
    time_zone = _time_zone_field(
        required=False,  # left out: unchanged
        help_text="Every date and time is shown to you in this time zone.",
    )

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["time_zone"].initial = user.time_zone
        self.order_fields(["email", "home_phone", "cell_phone", "time_zone"])
        _phones_for(self, user)
        self.stored_phones = _stored_phones(user.staff_profile)

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip()

    @property
    def email_changed(self) -> bool:
        return self.cleaned_data["email"] != self.user.email

    @property
    def contact_changed(self) -> bool:
        return self.email_changed or _phones_differ(self.cleaned_data, self.stored_phones)

    def clean(self):
        data = super().clean()
        if "email" in data and self.contact_changed:
            self.require_identity(data)
        return data

    def changes(self) -> dict:
        changes = {name: self.cleaned_data[name] for name in ("email", "home_phone", "cell_phone")}
        if self.cleaned_data.get("time_zone"):
            changes["time_zone"] = self.cleaned_data["time_zone"]
        return changes


class ContactConfirmForm(ContactConfirmation, IdentityForm):
    """The Profile tab's confirmation, for a provider changing a phone number."""

    what = "a phone number"


class PasskeyNameForm(forms.Form):
    """The name of a passkey or security key about to be added (the owner's label for it)."""

    name = forms.CharField(
        label="Name of the passkey or security key",
        max_length=NAME_MAX,
        help_text="For example: work laptop, or blue security key.",
    )

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())  # one space between words


class StaffCreateForm(forms.Form):
    first_name = forms.CharField(
        label="First name", max_length=150, validators=[validate_plain_name]
    )
    last_name = forms.CharField(label="Last name", max_length=150, validators=[validate_plain_name])
    username = forms.CharField(
        label="Username",
        max_length=150,
        validators=[User.username_validator, validate_username_not_only_digits],
        help_text="ASCII letters (no accents), digits and @ . + - _ only, not digits alone.",
    )
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(label="Role", choices=())

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = roles

    def clean_email(self):
        return self.cleaned_data["email"].strip()
