"""The Audit Log Report's filters, shared by the page and the CSV export."""

import functools
import itertools
import operator
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils.functional import cached_property
from django_filters import fields as filter_fields
from django_filters.constants import EMPTY_VALUES

from accounts.models import Practice, User
from accounts.selectors import PRACTICE_NAME_LENGTH, is_group_id
from audit.kinds import BREAK_GLASS_CODES, KINDS, OVERSIGHT_CODES, EventType
from audit.selectors import ACCOUNT_MATCH_LIMIT
from ehr.prepared import Code
from ehr.widgets import SuggestionsInput

QUICK_RANGES = {"day": 1, "week": 7, "month": 30, "year": 365}  # days, today included
# An auditor's patient is read a practice at a time when at most this many hold it.
PATIENT_PARTS = 4
DEFAULT_RANGE_DAYS = 7
EARLIEST = date(2000, 1, 1)  # nothing older exists; also keeps date arithmetic in range
LATEST = date(2100, 12, 31)
DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]


def kind_label(code: str) -> str:
    """Name an event kind for a menu: `support_pin.validation_failed` -> `Support PIN: validation failed`."""
    area, _dot, name = code.partition(".")
    area = area.replace("_", " ").capitalize().replace(" pin", " PIN").replace("Mfa", "MFA")
    return f"{area}: {name.replace('_', ' ')}"


KIND_CHOICES = sorted(((code, kind_label(code)) for code in KINDS), key=lambda choice: choice[1])


def _plain(text: str) -> str:
    """A kind's name as words in any case: "Support PIN: viewed" is "support pin viewed"."""
    return " ".join(text.replace(":", " ").split()).casefold()


KIND_BY_LABEL = {_plain(label): code for code, label in KIND_CHOICES}
KIND_NAMES = dict(KIND_CHOICES)
SOME_MATCHES = 4  # names a "several match" message lists


class _KindField(filter_fields.ChoiceField):
    """An event kind typed in a box: its code (what the dashboard's links carry), its name
    (what picking a suggestion puts there), or a part of its
    name that no other kind's has ("unblocked by owner"), in any case. A part that
    several names have ("viewed") is answered with some of them."""

    def to_python(self, value):
        text = super().to_python(value).strip()
        words = _plain(text)
        if not words or text in KINDS or words in KIND_BY_LABEL:
            return KIND_BY_LABEL.get(words, text)
        # Only the kinds this viewer may choose: a part of a name is matched among them.
        matches = [(_plain(label), code) for code, label in self.choices if code]
        matches = [(label, code) for label, code in matches if words in label]
        if len(matches) == 1:
            return matches[0][1]
        if matches:
            names = "; ".join(KIND_NAMES[code] for _label, code in matches[:SOME_MATCHES])
            more = ", and more" if len(matches) > SOME_MATCHES else ""
            raise forms.ValidationError(
                f"{len(matches)} kinds of event match that ({names}{more}). Type more of the name, "
                "or pick one from the list.",
                code="several",
            )
        return text


class CodeFilter(django_filters.ChoiceFilter):
    """One code of a column of codes, written into the query's text (`ehr.prepared.Code`)."""

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        return qs.filter(**{f"{self.field_name}__{self.lookup_expr}": Code(value)})


class KindFilter(CodeFilter):
    field_class = _KindField


def kind_choices() -> list[tuple[str, str]]:
    """The Event box's choices, given as a function: a form copies a list of choices
    deeply for every request (80 pairs, twice), and a function not at all."""
    return KIND_CHOICES


OWN_KIND_CHOICES = [choice for choice in KIND_CHOICES if choice[0] not in OVERSIGHT_CODES]


def own_kind_choices() -> list[tuple[str, str]]:
    """The Event box's choices for someone who reads only their own account's events:
    the oversight of their account is never among them (`audit_event_scope`)."""
    return OWN_KIND_CHOICES


class PracticeByGroupIdOrName:
    """A practice typed in a box: its Group ID (what picking a suggestion puts there), its
    whole name, or a part of its name that no other practice's has, whatever the case.
    A platform may have thousands of practices, too many for a menu; the box asks
    `audit_practices` as one types."""

    def to_python(self, value):
        text = str(value or "").strip()
        if not text or is_group_id(text):
            return super().to_python(text)
        if "\x00" in text or len(text) > PRACTICE_NAME_LENGTH:
            named = []  # no practice's name: not worth asking the database
        else:
            named = list(self.queryset.filter(name__iexact=text)[:2])
            if not named:
                named = list(self.queryset.filter(name__icontains=text)[:2])
        if len(named) > 1:
            raise forms.ValidationError(
                "Several practices have that in their name. Type more of it, or the Group "
                "ID, or pick the practice from the list.",
                code="several",
            )
        if not named:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return named[0]


class PracticeField(PracticeByGroupIdOrName, forms.ModelChoiceField):
    pass


class _PracticeFilterField(PracticeByGroupIdOrName, filter_fields.ModelChoiceField):
    pass


class PracticeFilter(django_filters.ModelChoiceFilter):
    field_class = _PracticeFilterField


PRACTICE_BOX = {
    "label": "Practice",
    "queryset": Practice.objects.all(),
    "to_field_name": "group_id",
    "required": False,
    "widget": forms.TextInput(
        attrs={
            "list": "practice-options",
            "autocomplete": "off",
            "spellcheck": "false",
            "placeholder": "All practices",
        }
    ),
    "help_text": "Part of the name, or the Group ID.",
    "error_messages": {
        "invalid_choice": "No practice has that name or Group ID. Type part of the name "
        "and pick the practice from the list."
    },
}


class SuggestionQuery(forms.Form):
    """The text a suggesting box sends as one types (`static/js/suggest.js`)."""

    q = forms.CharField(max_length=200, required=False)  # a CharField refuses NUL too


class AuditFilterForm(forms.Form):
    """Cross-field rules: the date range, quick ranges, defaults in the viewer's zone."""

    def __init__(
        self,
        *args,
        time_zone: ZoneInfo,
        today: date,
        find_patients: Callable[[str], list[tuple[str, str]]],
        find_accounts: Callable[[str], list[User]],
        **kwargs,
    ):
        self.time_zone = time_zone
        self.today = today
        self.find_patients = find_patients
        self.find_accounts = find_accounts
        self.matched_accounts: list[User] = []
        super().__init__(*args, **kwargs)

    def clean_username(self) -> str:
        """Look up the accounts the text names (username, Doctor ID or part of the name).

        Text that names no account gives no rows, never an error: an error would
        tell apart names that exist from names that do not.
        """
        typed = self.cleaned_data.get("username") or ""
        if typed.strip():
            found = self.find_accounts(typed)
            if len(found) > ACCOUNT_MATCH_LIMIT:
                raise forms.ValidationError(
                    f"More than {ACCOUNT_MATCH_LIMIT} accounts match. Type more of the name, "
                    "or the username or Doctor ID."
                )
            self.matched_accounts = found
        return typed

    def clean_patient(self) -> str:
        """Return the id of the one patient the text names (its id, or its whole name)."""
        typed = (self.cleaned_data.get("patient") or "").strip()
        if not typed:
            return ""
        found = self.find_patients(typed)
        if not found:
            raise forms.ValidationError(
                "No patient in this log has that name or ID, or a name with that in it."
            )
        if len(found) > 1:
            names = "; ".join(f"{name} ({pid})" for pid, name in found[:SOME_MATCHES])
            raise forms.ValidationError(
                f"Several patients match that ({names}). Type more of the name, pick one "
                "from the list, or type the patient ID."
            )
        return found[0][0]

    def clean(self):
        data = super().clean()
        last = data.get("last")
        if last:
            data["date_to"] = self.today
            data["date_from"] = self.today - timedelta(days=QUICK_RANGES[last] - 1)
        if self.errors:
            return data
        start = data.get("date_from") or self.today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        end = data.get("date_to") or self.today
        for name, value in (("date_from", start), ("date_to", end)):
            if not EARLIEST <= value <= LATEST:
                self.add_error(
                    name, f"Choose a date between {EARLIEST:%m/%d/%Y} and {LATEST:%m/%d/%Y}."
                )
        if start > end:
            self.add_error("date_to", "The end date is before the start date.")
        data["date_from"], data["date_to"] = start, end
        if self.errors:
            # No range for dates out of bounds: the day after 12/31/9999 does not exist.
            return data
        # The range in UTC: from the start of the first day to the start of the day
        # after the last one, both in the viewer's own time zone.
        self.range = (
            datetime.combine(start, time.min, tzinfo=self.time_zone),
            datetime.combine(end + timedelta(days=1), time.min, tzinfo=self.time_zone),
        )
        return data


def any_of(sides: list[Q]) -> Q:
    return functools.reduce(operator.or_, sides)


class AuditEventFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(
        label="Patient's Name",
        max_length=200,
        method="filter_patient",
        widget=forms.TextInput(
            attrs={
                "list": "patient-options",
                "autocomplete": "off",
                "placeholder": "Name or patient ID",
                "spellcheck": "false",
            }
        ),
    )
    username = django_filters.CharFilter(
        label="Username",
        max_length=150,
        method="filter_username",
        help_text="A username, a Doctor ID or part of a name.",
    )
    # "Account": the seed's label for this dropdown; its choices are the Type column's.
    type = CodeFilter(
        label="Account",
        choices=EventType.choices,
        empty_label="All types",
        help_text="The event's type, as in the Type column.",
    )
    date_from = django_filters.DateFilter(
        label="From",
        method="filter_nothing",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = django_filters.DateFilter(
        label="To",
        method="filter_nothing",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    break_glass = django_filters.BooleanFilter(
        label="Break-glass only",
        method="filter_break_glass",
        widget=forms.CheckboxInput,
    )
    # One exact kind (the dashboard's bars link here); served by the (practice, kind) index.
    # Typed with suggestions: a menu of 80 kinds is slow to draw and to read through.
    kind = KindFilter(
        label="Event",
        choices=kind_choices,
        empty_label="All events",
        widget=SuggestionsInput(attrs={"placeholder": "All events"}, by_label=True),
        help_text="Type part of its name, such as PIN generated, or pick it from the list.",
        error_messages={"invalid_choice": "Choose an event from the list, or leave it empty."},
    )
    # Narrows a platform auditor's log to one practice; no one else has it (`__init__`).
    practice = PracticeFilter(**PRACTICE_BOX)
    last = django_filters.ChoiceFilter(
        label="View Last",
        choices=[(key, key.title()) for key in QUICK_RANGES],
        method="filter_nothing",
    )

    class Meta:
        form = AuditFilterForm
        fields = [
            "patient",
            "username",
            "type",
            "kind",
            "practice",
            "break_glass",
            "date_from",
            "date_to",
            "last",
        ]

    def __init__(
        self,
        data,
        *,
        queryset,
        find_patients: Callable[[str], list[tuple[str, str]]],
        find_accounts: Callable[[str], list[User]],
        time_zone: ZoneInfo,
        today: date,
        chooses_practice: bool = False,
        sees_oversight: bool = True,
        patient_practices: Callable[[str], list[int | None]] | None = None,
    ):
        """`find_patients(text)` returns the viewer's patients the text names (id, name);
        `find_accounts(text)` the accounts the user filter's text names.

        Only a viewer who `chooses_practice` (a platform auditor) has the Practice
        filter; a viewer who does not `sees_oversight` (of their own account only) is
        not offered the kinds of events about it that are left out of their log. For anyone else a practice in the address is ignored, never looked up:
        an answer that differed by whether it exists would tell other practices' names.

        `patient_practices(patient_id)`, for a viewer of every practice's log, returns
        the practices whose logs name the patient (None for events of no practice).
        The events of a patient are indexed by practice first, so a patient across
        practices is read as one part per practice holding it, never by scanning the
        log for the id (at 5,000,000 events: 1.97 s a page).
        """
        self.patient_practices = patient_practices
        self._form_kwargs = {
            "time_zone": time_zone,
            "today": today,
            "find_patients": find_patients,
            "find_accounts": find_accounts,
        }
        super().__init__(data, queryset=queryset)
        if not chooses_practice:
            del self.filters["practice"]
        if not sees_oversight:
            self.filters["kind"].extra["choices"] = own_kind_choices

    @property
    def form(self):
        if not hasattr(self, "_form"):
            Form = self.get_form_class()
            self._form = Form(self.data, prefix=self.form_prefix, **self._form_kwargs)
        return self._form

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        start, end = self.form.range
        return queryset.filter(occurred_at__gte=start, occurred_at__lt=end)

    @cached_property
    def parts(self) -> list[QuerySet]:
        """Return querysets whose union is the filtered events, each served by one index.

        The date range is left out: the report bounds each page itself, from the
        range and its cursor (`audit_report_page`). A filter that matches any of
        several things (the username: the acting user or the account acted upon;
        break-glass only: any of its kinds) is one OR in `qs`, which the database
        answers by reading every row any side matches before it can sort them (for
        a username over two years, every event of that user). Here each side is a
        part of its own, a range scan of its own index newest first, and the
        report merges the parts' pages.
        """
        return self._split(["username", "break_glass", "patient"])

    @cached_property
    def count_parts(self) -> list[tuple[QuerySet, Q | None]]:
        """Return querysets whose union is the filtered events, for the bounded count,
        each with the rows of it that an earlier one holds (None: none do).

        Only the username is split: asked as one OR, its two sides are read through
        a bitmap of both indexes and then row by row from the table, where each
        side alone is read from its index only (at 5,000,000 events a username's
        count took 85 ms as one OR and 49 ms as two parts). The account's side
        marks the rows the acting user's side holds too (the index ends with the
        acting user), so the two counts add up with no set of ids built to drop
        the rows both hold: at 10,000,000 events a user's month, 8,264 events, took
        6.5 ms as a union of ids and 2.1 as marked counts. The break-glass kinds
        stay one OR: a part each costs more than one bitmap of their ranges.
        """
        parts = self._split(["username"])
        if len(parts) == 1:
            return [(parts[0], None)]
        acting, _account = self.username_sides()
        return [(parts[0], None), (parts[1], acting)]

    def _split(self, split: list[str]) -> list[QuerySet]:
        sides_of = {
            "username": self.username_sides,
            "break_glass": self.break_glass_sides,
            "patient": self.patient_sides,
        }
        events = self.queryset.all()
        sides = []
        for name, value in self.form.cleaned_data.items():
            if value and name in split:
                sides.append(sides_of[name]())
            else:
                events = self.filters[name].filter(events, value)
        return [events.filter(*choice) for choice in itertools.product(*sides)]

    def filter_nothing(self, queryset, name, value):
        return queryset  # dates are applied together in filter_queryset

    def filter_break_glass(self, queryset, name, value):
        return queryset.filter(any_of(self.break_glass_sides())) if value else queryset

    def break_glass_sides(self) -> list[Q]:
        return [Q(kind=Code(code)) for code in BREAK_GLASS_CODES]

    def filter_patient(self, queryset, name, value):
        return queryset.filter(any_of(self.patient_sides()))

    def patient_sides(self) -> list[Q]:
        """Return the patient's events in each practice holding it (see `__init__`).

        One side per practice when a few hold the id; when more do (a short id like
        "1" may be every practice's), one side for all of them, which reads each
        practice's range of the index and sorts what it found: the report's parts
        multiply (break-glass alone makes seven), and a page must stay a few queries.
        """
        patient = self.form.cleaned_data["patient"]
        if self.patient_practices is None:
            return [Q(patient_id=patient)]
        holders = self.patient_holders
        if not holders:
            return [Q(pk__in=[])]
        if len(holders) <= PATIENT_PARTS:
            return [Q(practice_id=pk, patient_id=patient) for pk in holders]
        within = Q(practice_id__in=[pk for pk in holders if pk is not None])
        if None in holders:
            within |= Q(practice_id__isnull=True)
        return [within & Q(patient_id=patient)]

    @cached_property
    def patient_holders(self) -> list[int | None]:
        """The practices whose logs hold the filter's patient, within the Practice filter."""
        holders = self.patient_practices(self.form.cleaned_data["patient"])
        chosen = self.form.cleaned_data.get("practice")
        if chosen is not None:
            holders = [pk for pk in holders if pk == chosen.pk]
        return holders

    def filter_username(self, queryset, name, value):
        return queryset.filter(any_of(self.username_sides()))

    def username_sides(self) -> list[Q]:
        """Return the sides a username matches: the acting user, the account acted upon."""
        ids = self.username_account_ids()
        return [Q(actor_id__in=ids), Q(account_id__in=ids)]

    def username_account_ids(self) -> list[int]:
        """Return the ids of the accounts the user filter names (resolved when the form was
        cleaned, so both sides of the filter use an index)."""
        return [account.pk for account in self.form.matched_accounts]

    def describe(self) -> str:
        """Return the filters in fixed words, for the Details of the export's event.

        Nothing typed appears here, or a username could make Details read like other
        activity; what was typed goes into the event's data (`describe_data`).
        """
        data = self.form.cleaned_data
        parts = [f"{data['date_from']:%m/%d/%Y} to {data['date_to']:%m/%d/%Y}"]
        if data.get("username"):
            parts.append("username filter")
        if data.get("type"):
            parts.append(f"type {EventType(data['type']).label}")
        if data.get("patient"):
            parts.append("patient filter")
        if data.get("kind"):
            parts.append(f"event {data['kind']}")  # a code from KINDS, never typed text
        if data.get("practice"):
            parts.append("practice filter")
        if data.get("break_glass"):
            parts.append("break-glass only")
        return "; ".join(parts)

    def describe_data(self) -> dict[str, str | int | None]:
        """Return what was typed into the filters, labelled as input, and what it matched.

        A typed username is kept only when it names an account (it is then that
        account's username); otherwise only that it matched nobody, since text
        typed into the wrong box can be a password.
        """
        data = self.form.cleaned_data
        facts: dict[str, str | int | None] = {}
        if data.get("username"):
            ids = self.username_account_ids()
            facts["username_input"] = data["username"] if ids else None
            facts["username_account_id"] = ids[0] if len(ids) == 1 else None
            if len(ids) > 1:
                facts["username_accounts"] = len(ids)
        if data.get("patient"):
            facts["patient_id"] = data["patient"]
        if data.get("practice"):
            facts["practice_id"] = data["practice"].pk
        return facts


SUBJECT_PERIODS = {"30": 30, "90": 90}  # the history page's quick periods, in days
SUBJECT_DEFAULT_DAYS = 30


def day_range(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the instants from the start of `start` to the start of the day after `end`, in `tz`."""
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
    )


class SubjectHistoryForm(forms.Form):
    """The period of an account's or a patient's history, and whether to add what it did."""

    date_from = forms.DateField(
        label="From",
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    date_to = forms.DateField(
        label="To",
        required=False,
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    last = forms.ChoiceField(
        label="Last",
        required=False,
        choices=[("", "---")] + [(key, f"{key} days") for key in SUBJECT_PERIODS],
    )
    include_actions = forms.BooleanField(
        label="Also what this account did",
        required=False,
        help_text="Add the events this account acted in, about anyone.",
    )

    def __init__(self, *args, time_zone: ZoneInfo, today: date, **kwargs):
        self.time_zone = time_zone
        self.today = today
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        if data.get("last"):
            data["date_to"] = self.today
            data["date_from"] = self.today - timedelta(days=SUBJECT_PERIODS[data["last"]] - 1)
        start = data.get("date_from") or self.today - timedelta(days=SUBJECT_DEFAULT_DAYS - 1)
        end = data.get("date_to") or self.today
        for name, value in (("date_from", start), ("date_to", end)):
            if not EARLIEST <= value <= LATEST:
                self.add_error(
                    name, f"Choose a date between {EARLIEST:%m/%d/%Y} and {LATEST:%m/%d/%Y}."
                )
        if start > end:
            self.add_error("date_to", "The end date is before the start date.")
        data["date_from"], data["date_to"] = start, end
        if not self.errors:
            self.range = day_range(start, end, self.time_zone)
        return data

    def period(self) -> str:
        """The period in fixed words, for the page and the events that record it."""
        data = self.cleaned_data
        return f"{data['date_from']:%m/%d/%Y} to {data['date_to']:%m/%d/%Y}"
