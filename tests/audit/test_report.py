import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.roles import Role
from audit import checkpoints, export, forms, kinds, services
from audit.formatting import LocalClock, event_date, event_time, neutralize
from audit.forms import DEFAULT_RANGE_DAYS, EARLIEST, LATEST, AuditEventFilter, kind_label
from audit.kinds import BREAK_GLASS_CODES, KINDS, OVERSIGHT_CODES
from audit.models import AuditChain, AuditCheckpoint, AuditEvent
from audit.selectors import Cursor, audit_event_count, audit_event_scope, audit_report_page
from audit.services import AuditWriteError, user_label
from audit.verification import audit_log_verify
from tests.audit.helpers import NOW, chart_viewed, copies_of, record_at
from tests.factories import confirm_identity, make_practice, make_user


def details(response) -> list[str]:
    return [row["details"] for row in response.context["rows"]]


def test_formatting_matches_the_seed():
    when = datetime(2024, 3, 18, 21, 6, 19, tzinfo=UTC)
    eastern = ZoneInfo("America/New_York")
    assert event_date(when, eastern) == "03/18/2024"
    assert event_time(when, eastern) == "05:06:19 PM EDT"
    winter = datetime(2024, 1, 5, 14, 3, 0, tzinfo=UTC)
    assert event_time(winter, eastern) == "09:03:00 AM EST"
    assert event_time(when, ZoneInfo("America/Los_Angeles")) == "02:06:19 PM PDT"


@settings(max_examples=400, deadline=None)
@given(
    seconds=st.integers(min_value=946684800, max_value=4102444800),
    zone=st.sampled_from(
        [
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "America/St_Johns",
            "Pacific/Chatham",
            "UTC",
            "Asia/Kathmandu",
        ]
    ),
)
def test_fast_export_clock_agrees_with_the_report(seconds, zone):
    tz = ZoneInfo(zone)
    when = datetime.fromtimestamp(seconds, tz=UTC)
    assert LocalClock(tz).cells(seconds) == (event_date(when, tz), event_time(when, tz))


@given(st.text(max_size=30))
def test_neutralized_cells_never_start_a_formula(text):
    cell = neutralize(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell.endswith(text)


def test_each_row_links_to_the_history_of_its_own_user_and_patient(
    client, compliance, provider, nurse, practice, log
):
    chart_viewed(nurse, "P-300", "Grace Hopper", NOW - timedelta(hours=2))
    chart_viewed(provider, "P-300", "Grace Hopper", NOW - timedelta(hours=2, minutes=1))
    chart_viewed(nurse, "P/7", "Slash Patient", NOW - timedelta(hours=2, minutes=2))
    client.force_login(compliance)
    rows = client.get("/audit/").context["rows"]
    accounts = {user_label(user): user.pk for user in (provider, nurse, compliance)}
    patients = {"Grace Hopper": "P-300", "Ada Lovelace": "P-200", "Slash Patient": None}
    patients['=HYPERLINK("http://evil","x")'] = "P-100"
    for row in rows:
        patient = patients.get(row["patient"])
        assert row["user_url"] == f"/audit/subject/account/{accounts[row['user']]}/"
        assert row["patient_url"] == (
            f"/audit/subject/patient/{practice.pk}/{patient}/" if patient else None
        )
    users = [row["user"] for row in rows]
    assert len(set(users)) == 3 and len(users) == 8  # each named more than once
    assert [row["patient"] for row in rows].count("Grace Hopper") == 2
    assert "Slash Patient" in [row["patient"] for row in rows]  # an id with a slash: no page


def test_compliance_sees_the_practice_newest_first_in_the_last_7_days(
    client, compliance, provider, log
):
    client.force_login(compliance)
    response = client.get("/audit/")
    assert response.status_code == 200
    assert details(response) == [
        "Signed in as user Carol Okafor",  # force_login above, at NOW
        'Chart viewed for patient =HYPERLINK("http://evil","x")',
        "Chart viewed for patient Ada Lovelace",
        "Signed in as user dorothy Ludwig",
        "Profile updated for user Dori User",
    ]
    seed_row = response.context["rows"][3]
    assert seed_row["user_url"] == f"/audit/subject/account/{provider.pk}/"
    assert {k: v for k, v in seed_row.items() if not k.endswith("_url")} == {
        "date": "03/18/2024",
        "time": "05:06:19 PM EDT",
        "patient": "",
        "user": "496094 (dorothy Ludwig)",
        "type": "Security",
        "action": "Login",
        "details": "Signed in as user dorothy Ludwig",
        "ip": "2605:a601:ac72:c200:d5e7:5fe4:ad72:8204",
    }
    page = response.content.decode()
    assert "Other Practice" not in page and "otherdoc" not in page
    for heading in ("Time", "Patient", "User", "Type", "Action", "Details", "IP"):
        assert '<th scope="col"><a class="sort" href="' in page and f">{heading}</a></th>" in page
    # Newest first is the order by Date/Time, said on its heading.
    assert '<th scope="col" aria-sort="descending">' in page
    assert "5 events · Page 1 · events 1\u20135" in page


def test_auditor_sees_every_practice(client, auditor, log):
    client.force_login(auditor)
    assert "Chart viewed for patient Other Practice Patient" in details(client.get("/audit/"))


def test_provider_sees_only_events_of_their_own_account(client, provider, log):
    client.force_login(provider)
    shown = details(client.get("/audit/"))
    assert "Signed in as user dorothy Ludwig" in shown
    assert all("Dori" not in line for line in shown)


def test_support_agents_see_nothing_and_anonymous_is_sent_to_sign_in(client, agent, log):
    client.force_login(agent)
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/export.csv").status_code == 403
    client.logout()
    assert client.get("/audit/").status_code == 302


def test_username_matches_actor_or_account(client, compliance, log, nurse):
    client.force_login(compliance)
    assert details(client.get("/audit/", {"username": "DORI"})) == [
        "Profile updated for user Dori User"
    ]
    assert details(client.get("/audit/", {"username": "otherdoc"})) == []
    assert details(client.get("/audit/", {"username": "nobody-by-that-name"})) == []


def test_the_user_filter_takes_a_doctor_id_or_part_of_a_name_and_says_whom(
    client, compliance, auditor, provider, other_provider, nurse, log
):
    client.force_login(compliance)
    by_username = details(client.get("/audit/", {"username": "dorothy"}))
    assert by_username  # the seed's sign-in among them
    for typed in ("496094", "ludwig", "Dorothy Lud", "  DOROTHY   ludwig "):
        response = client.get("/audit/", {"username": typed})
        assert details(response) == by_username, typed
        assert response.context["user_matches"] == ["496094 (dorothy Ludwig)"]
        assert "Matches 496094 (dorothy Ludwig)" in response.content.decode()
    # Another practice's staff are not named to an officer, by username or by name.
    for typed in ("otherdoc", str(other_provider.provider_profile.doctor_id)):
        response = client.get("/audit/", {"username": typed})
        assert response.context["user_matches"] == [] and details(response) == []
        assert "Matches no account whose events you can see." in response.content.decode()
    # A platform auditor reads every practice: there they match.
    client.force_login(auditor)
    assert "(Test User)" in client.get("/audit/", {"username": "otherdoc"}).content.decode()
    # A nurse reads only the events about her own account: she names only herself, not
    # the platform's staff or her colleagues, by username or by part of a name.
    client.force_login(nurse)
    for typed in ("auditor", "a", "ludwig", "496094"):
        response = client.get("/audit/", {"username": typed})
        assert response.context["user_matches"] == [], typed
    assert client.get("/audit/", {"username": "dori"}).context["user_matches"] == [
        "dori (Dori User)"
    ]


def test_a_name_too_many_accounts_share_asks_for_more(client, compliance, practice, clock):
    for n in range(21):
        make_user(Role.NURSE, practice=practice, username=f"nurse{n}", last_name="Okonkwo")
    client.force_login(compliance)
    response = client.get("/audit/", {"username": "okonkwo"})
    assert response.status_code == 400
    assert "More than 20 accounts match" in response.content.decode()
    assert client.get("/audit/", {"username": "nurse7"}).status_code == 200


def test_type_and_patient_filters(client, compliance, log):
    client.force_login(compliance)
    response = client.get("/audit/", {"type": "Patient"})
    assert len(details(response)) == 2
    # The type dropdown carries the seed's label, "Account".
    assert '<label for="id_type">Account</label>' in response.content.decode()
    response = client.get("/audit/", {"patient": "P-200"})
    assert details(response) == ["Chart viewed for patient Ada Lovelace"]
    # The whole name, in any case, names the same patient.
    assert details(client.get("/audit/", {"patient": " ada LOVELACE "})) == details(response)
    # A part of the name only one patient's has names that patient, as the box suggests.
    assert details(client.get("/audit/", {"patient": "lovel"})) == details(response)
    # Another practice's patient is no patient of this log, by ID or by name.
    for other in ("P-900", "Other Practice Patient"):
        refused = client.get("/audit/", {"patient": other})
        assert refused.status_code == 400
        assert "No patient in this log has that name or ID" in refused.content.decode()


def test_an_auditor_reads_a_patient_id_in_every_practice_that_holds_it(
    client, auditor, provider, other_provider, practice, other_practice, clock
):
    """A patient id is a practice's own; two practices may hold the same one."""
    chart_viewed(provider, "P-5", "Sam Lee", NOW - timedelta(minutes=3))
    chart_viewed(other_provider, "P-5", "Samuel Lee", NOW - timedelta(minutes=2))
    chart_viewed(other_provider, "P-6", "Ann Other", NOW - timedelta(minutes=1))
    client.force_login(auditor)
    response = client.get("/audit/", {"patient": "P-5"})
    assert details(response) == [
        "Chart viewed for patient Samuel Lee",
        "Chart viewed for patient Sam Lee",
    ]
    # The history link is that of the practice of the patient's newest event.
    assert response.context["patient_history_url"] == (
        f"/audit/subject/patient/{other_practice.pk}/P-5/"
    )
    confirm_identity(client)
    export = read_csv(client.get("/audit/export.csv", {"patient": "P-5"}))
    assert [row[6] for row in export[1:]] == [
        "Chart viewed for patient Samuel Lee",
        "Chart viewed for patient Sam Lee",
    ]
    for group, name in ((practice.group_id, "Sam Lee"), (other_practice.group_id, "Samuel Lee")):
        narrowed = client.get("/audit/", {"patient": "P-5", "practice": group})
        assert details(narrowed) == [f"Chart viewed for patient {name}"]
    # A practice whose log does not hold the id: no rows.
    narrowed = client.get("/audit/", {"patient": "P-6", "practice": practice.group_id})
    assert narrowed.status_code == 200 and details(narrowed) == []


def test_the_history_link_follows_the_practice_filter_and_skips_events_of_no_practice(
    client, auditor, provider, other_provider, practice, other_practice, clock
):
    chart_viewed(provider, "P-5", "Sam Lee", NOW - timedelta(minutes=3))
    chart_viewed(other_provider, "P-5", "Samuel Lee", NOW - timedelta(minutes=2))
    record_at(  # the newest event of the id: a patient of no practice
        NOW - timedelta(minutes=1),
        kind=kinds.PATIENT_CHART_VIEWED,
        acting_user=auditor,
        account=auditor,
        patient_id="P-5",
        patient_name="Nobody's Patient",
        params={"patient": "Nobody's Patient"},
    )
    client.force_login(auditor)
    history = "/audit/subject/patient/{}/P-5/"
    everywhere = client.get("/audit/", {"patient": "P-5"})
    assert len(details(everywhere)) == 3
    assert everywhere.context["patient_history_url"] == history.format(other_practice.pk)
    narrowed = client.get("/audit/", {"patient": "P-5", "practice": practice.group_id})
    assert details(narrowed) == ["Chart viewed for patient Sam Lee"]
    assert narrowed.context["patient_history_url"] == history.format(practice.pk)


def test_an_id_many_practices_hold_is_read_in_one_part(client, auditor, clock):
    """A short id may be every practice's: the page's parts must not multiply by them."""
    practices = [make_practice() for _ in range(forms.PATIENT_PARTS + 2)]
    for n, place in enumerate(practices):
        member = make_user(Role.PROVIDER, practice=place)
        chart_viewed(member, "1", f"Patient {n}", NOW - timedelta(minutes=n + 1))
        record_at(
            NOW - timedelta(minutes=n + 1, seconds=30),
            kind=kinds.BREAK_GLASS_IDENTITY_VIEWED,
            acting_user=member,
            account=member,
            patient_id="1",
            patient_name=f"Patient {n}",
            params={"account": member.display_name, "grant": n + 1},
        )
    client.force_login(auditor)
    client.get("/audit/")
    params = {"patient": "1", "break_glass": "on"}
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/audit/", params)
    events = [q for q in queries.captured_queries if "audit_auditevent" in (q["sql"] or "")]
    assert len(events) <= 2 * len(BREAK_GLASS_CODES) + 2, len(events)
    shown = details(page)
    assert len(shown) == len(practices)
    assert all(line.startswith("Identity details of user") for line in shown)
    assert [row["patient"] for row in page.context["rows"]] == [
        f"Patient {n}" for n in range(len(practices))
    ]
    for order in ("patient", "-patient"):
        sorted_page = client.get("/audit/", {**params, "sort": order})
        assert sorted_page.status_code == 200
        assert sorted(details(sorted_page)) == sorted(shown)
    # Without break-glass only: the chart views too, newest first.
    assert len(details(client.get("/audit/", {"patient": "1"}))) == 2 * len(practices)


def test_a_name_two_patients_share_asks_for_one_of_them(client, compliance, provider, clock):
    chart_viewed(provider, "P-1", "Sam Lee", NOW - timedelta(minutes=1))
    chart_viewed(provider, "P-2", "Sam Lee", NOW - timedelta(minutes=2))
    client.force_login(compliance)
    response = client.get("/audit/", {"patient": "sam lee"})
    assert response.status_code == 400
    assert "Several patients match that (Sam Lee (P-1); Sam Lee (P-2))" in (
        response.content.decode()
    )
    # So does a part of their name.
    assert "Several patients match that (Sam Lee (P-1); Sam Lee (P-2))" in (
        client.get("/audit/", {"patient": "am l"}).content.decode()
    )
    assert details(client.get("/audit/", {"patient": "P-2"})) == [
        "Chart viewed for patient Sam Lee"
    ]


def test_the_patient_box_suggests_the_viewers_patients_only(
    client, compliance, provider, nurse, agent, log
):
    client.force_login(compliance)
    found = client.get("/audit/patients.json", {"q": "a"}).json()["results"]
    assert {"id": "P-200", "name": "Ada Lovelace"} in found
    assert all(p["id"] != "P-900" for p in found)  # another practice's
    assert client.get("/audit/patients.json", {"q": "p-2"}).json()["results"] == [
        {"id": "P-200", "name": "Ada Lovelace"}
    ]
    assert client.get("/audit/patients.json", {"q": "Other Practice"}).json() == {"results": []}
    assert client.get("/audit/patients.json").json() == {"results": []}
    # A provider's own: patients of events of their own account only.
    client.force_login(nurse)
    assert client.get("/audit/patients.json", {"q": "a"}).json() == {"results": []}
    client.force_login(agent)
    assert client.get("/audit/patients.json", {"q": "a"}).status_code == 403


def test_the_patient_box_offers_at_most_twenty(client, compliance, provider, clock):
    for n in range(30):
        chart_viewed(provider, f"P-{n:03}", f"Pat Number {n:03}", NOW - timedelta(minutes=n + 1))
    client.force_login(compliance)
    found = client.get("/audit/patients.json", {"q": "pat number"}).json()["results"]
    assert [p["id"] for p in found] == [f"P-{n:03}" for n in range(20)]  # by name


def test_dates_are_days_in_the_viewers_time_zone(client, compliance, log):
    client.force_login(compliance)
    shown = details(client.get("/audit/", {"date_from": "2024-03-18", "date_to": "2024-03-18"}))
    assert shown == ["Signed in as user dorothy Ludwig"]
    shown = details(client.get("/audit/", {"date_from": "03/09/2024", "date_to": "03/09/2024"}))
    assert shown == ["Signed out user dorothy Ludwig"]


def test_view_last_quick_ranges(client, compliance, log):
    client.force_login(compliance)
    assert len(details(client.get("/audit/", {"last": "day"}))) == 3
    assert len(details(client.get("/audit/", {"last": "week"}))) == 5
    assert len(details(client.get("/audit/", {"last": "month"}))) == 6
    response = client.get("/audit/", {"last": "year", "date_from": "2020-01-01"})
    assert len(details(response)) == 6
    assert 'value="2023-03-21"' in response.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2024-02-30"},
        {"date_from": "yesterday"},
        {"date_to": "1800-01-01"},
        {"date_from": "2024-03-19", "date_to": "2024-03-01"},
        {"date_to": "9999-12-31"},
        {"date_to": "12/31/9999"},
        {"date_from": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_to": "0001-01-01"},
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
        {"date_from": "9999-12-31", "date_to": "0001-01-01"},
        {"date_from": "2024-03-01", "date_to": "2101-01-01"},
        {"type": "Nope"},
        {"last": "decade"},
        {"username": "x" * 151},
        {"patient": "not-in-the-log"},
    ],
)
def test_invalid_filters_show_errors_not_500(client, compliance, log, params):
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/", params)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()
    assert client.get("/audit/export.csv", params).status_code == 400


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "patient",
                "username",
                "type",
                "date_from",
                "date_to",
                "last",
                "page",
                "cursor",
                "sort",
                "n",
            ]
        ),
        st.text(max_size=40),
    )
)
def test_any_filter_input_is_answered_without_a_server_error(client, compliance, params):
    client.force_login(compliance)
    assert client.get("/audit/", params).status_code in (200, 400)


ZONES = ["Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Asia/Kathmandu", "UTC"]
# The ends of what a date input can hold and of the range the form allows, then any day.
DAYS = (
    st.sampled_from(
        [
            date.min,
            date.max,
            EARLIEST - timedelta(days=1),
            EARLIEST,
            LATEST,
            LATEST + timedelta(days=1),
        ]
    )
    | st.dates()
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    date_from=st.none() | DAYS,
    date_to=st.none() | DAYS,
    us_style=st.booleans(),
    zone=st.sampled_from(ZONES),
    today=st.dates(min_value=EARLIEST, max_value=LATEST),
)
def test_any_date_range_is_a_valid_range_or_a_form_error(
    db, date_from, date_to, us_style, zone, today
):
    """Every date the inputs accept, year 1 to 9999, in zones 26 hours apart."""
    written = "%m/%d/%Y" if us_style else "%Y-%m-%d"
    data = {
        name: value.strftime(written)
        for name, value in (("date_from", date_from), ("date_to", date_to))
        if value is not None
    }
    filterset = AuditEventFilter(
        data,
        queryset=AuditEvent.objects.all(),
        find_patients=lambda text: [],
        find_accounts=lambda text: [],
        time_zone=ZoneInfo(zone),
        today=today,
    )
    start = date_from or today - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    end = date_to or today
    expected = EARLIEST <= start <= end <= LATEST
    assert filterset.is_valid() is expected, filterset.errors
    if expected:
        first, after_last = filterset.form.range
        assert first.date() == start and after_last.date() == end + timedelta(days=1)
        assert filterset.qs.count() == 0
    else:
        assert filterset.errors


def test_keyset_pages_reach_the_oldest_rows_with_a_fixed_number_of_queries(
    client, compliance, provider, clock, django_assert_max_num_queries
):
    base = NOW - timedelta(days=3)
    for i in range(120):
        record_at(
            base + timedelta(minutes=i),
            kind=kinds.SIGNED_IN,
            acting_user=provider,
            account=provider,
            ip=None,
        )
    client.force_login(compliance)
    client.get("/audit/")  # warm the session and user caches
    # session, user, device, session record, roles, patients, rows, the menu's staff
    # profile, the bounded count: at most nine, whatever the size of the log or the page
    # (tests/audit/test_report_sorting.py pins the exact number).
    with django_assert_max_num_queries(9):
        first = client.get("/audit/")
    page = first.context["page"]
    assert len(first.context["rows"]) == 50 and page.is_first and not page.is_last
    with django_assert_max_num_queries(9):
        last = client.get("/audit/", {"page": "last"})
    assert last.context["page"].is_last
    assert len(last.context["rows"]) == 21  # what two full pages from the newest leave
    older = client.get("/audit/", {"page": "older", "cursor": page.older.encode()})
    newer = client.get("/audit/", {"page": "newer", "cursor": older.context["page"].newer.encode()})
    assert [r["time"] for r in newer.context["rows"]] == [r["time"] for r in first.context["rows"]]
    walked = []
    response = first
    while True:
        walked += response.context["rows"]
        current = response.context["page"]
        if current.is_last:
            break
        response = client.get("/audit/", {"page": "older", "cursor": current.older.encode()})
    in_range = AuditEvent.objects.filter(practice=compliance.practice, occurred_at__year=2024)
    assert len(walked) == in_range.count() == 121  # 120 written + compliance's sign-in
    assert client.get("/audit/", {"page": "older", "cursor": "garbage_1"}).status_code == 200


def page_ids(response) -> list[int]:
    return [row["id"] for row in response.context["page"].rows]


def walk(client, params, first: str, step: str) -> list[int]:
    """Return the ids of every row, page after page from `first` (first or last) on."""
    response = client.get("/audit/", {**params, "page": first})
    pages = []
    for _ in range(100):  # more pages than any test writes; a walk that goes round stops
        page = response.context["page"]
        pages.append(page_ids(response))
        if page.is_last if step == "older" else page.is_first:
            break
        cursor = page.older if step == "older" else page.newer
        response = client.get("/audit/", {**params, "page": step, "cursor": cursor.encode()})
    else:
        pytest.fail(f"{step} pages from the {first} one never ended")
    if step == "newer":
        pages.reverse()
    return [ident for ids in pages for ident in ids]


def test_a_username_pages_through_its_acting_and_account_rows_once_each(
    client, compliance, provider, nurse, clock, django_assert_max_num_queries
):
    """The acting user's and the account's rows are read apart and merged page by page.

    Rows where the user both acted and was acted upon are in both halves and shown
    once; rows at the same instant straddle page boundaries.
    """
    base = NOW - timedelta(days=3)
    sides = [(nurse, nurse), (provider, nurse), (nurse, provider), (provider, provider)]
    for i in range(160):
        actor, account = sides[i % 4]
        record_at(
            base + timedelta(minutes=i // 3),  # three events an instant
            kind=kinds.PROFILE_UPDATED,
            acting_user=actor,
            account=account,
            params={"account": account.display_name},
        )
    for i in range(3):  # no one acting: rows of the account's side alone
        record_at(
            base + timedelta(minutes=i, seconds=30),
            kind=kinds.PROFILE_UPDATED,
            acting_user=None,
            account=nurse,
        )
    client.force_login(compliance)
    params = {"username": "dori"}
    expected = list(
        audit_event_scope(viewer=compliance)
        .filter(occurred_at__gte=NOW - timedelta(days=6), occurred_at__lte=NOW)
        .filter(Q(actor=nurse) | Q(account=nurse))
        .order_by("-occurred_at", "-id")
        .values_list("id", flat=True)
    )
    assert len(expected) == 123
    client.get("/audit/", params)  # warm the session and user caches
    # The unfiltered page's eight at most (above), the username's account, the second half.
    with django_assert_max_num_queries(10):
        first = client.get("/audit/", params)
    assert page_ids(first) == expected[:50]
    assert "123 events · Page 1 · events 1\u201350" in first.content.decode()
    assert walk(client, params, "first", "older") == expected
    assert walk(client, params, "last", "newer") == expected
    last = client.get("/audit/", {**params, "page": "last"})
    assert page_ids(last) == expected[100:]  # the pages from the newest: 50, 50 and 23
    # What the page shows is what the export writes.
    confirm_identity(client)
    shown = [row["details"] for row in first.context["rows"]]
    exported = [row[6] for row in read_csv(client.get("/audit/export.csv", params))[1:]]
    assert exported[:50] == shown


@pytest.mark.parametrize(
    ("limit", "value", "exact"), [(3, 3, False), (9, 9, False), (10, 10, True), (50, 10, True)]
)
def test_a_bounded_count_counts_each_event_once_in_the_first_part_holding_it(
    provider, nurse, clock, limit, value, exact
):
    sides = [(nurse, nurse)] * 4 + [(provider, nurse)] * 3 + [(nurse, provider)] * 2
    sides += [(None, nurse)]  # no one acting: in the account's part alone (10 in all)
    sides += [(provider, provider)] * 5  # neither part
    for i, (actor, account) in enumerate(sides):
        record_at(
            NOW - timedelta(minutes=i + 1),
            kind=kinds.PROFILE_UPDATED,
            acting_user=actor,
            account=account,
        )
    events = AuditEvent.objects.all()
    acting = Q(actor_id__in=[nurse.pk])
    parts = [(events.filter(acting), None), (events.filter(account=nurse), acting)]
    count = audit_event_count(parts, between=(NOW - timedelta(days=1), NOW), limit=limit)
    assert (count.value, count.exact) == (value, exact)


def test_break_glass_only_pages_through_every_break_glass_kind_in_order(
    client, compliance, auditor, provider, agent, clock
):
    base = NOW - timedelta(days=3)
    glass = [KINDS[code] for code in BREAK_GLASS_CODES]
    for i in range(70):
        kind = glass[i % len(glass)] if i % 2 else kinds.SIGNED_IN
        record_at(
            base + timedelta(minutes=i // 2),
            kind=kind,
            acting_user=agent,
            account=provider,
            params={
                "account": "x",
                "grant": i,
                "minutes": 30,
                "justification": "call",
                "outcome": "Justified",
                "note": "called back",
            },
        )
    for viewer in (compliance, auditor):
        client.force_login(viewer)
        expected = list(
            audit_event_scope(viewer=viewer)
            .filter(occurred_at__gte=NOW - timedelta(days=6), occurred_at__lte=NOW)
            .filter(kind__startswith="break_glass.")
            .order_by("-occurred_at", "-id")
            .values_list("id", flat=True)
        )
        assert len(expected) == 35
        params = {"break_glass": "on"}
        assert walk(client, params, "first", "older") == expected
        assert walk(client, params, "last", "newer") == expected


SIDES = st.sampled_from(["both", "actor", "account", "neither"])


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    log=st.lists(st.tuples(st.integers(0, 6), SIDES), max_size=25),
    size=st.integers(1, 4),
    first=st.integers(0, 7),
    last=st.integers(0, 7),
    cursor=st.tuples(st.integers(-1, 8), st.integers(0, 30)),
)
def test_merged_parts_page_like_the_single_query(provider, nurse, log, size, first, last, cursor):
    """Pages of the two halves merged are pages of the OR, at every boundary and instant.

    Few instants for many rows (ties broken by id), small pages, a date range that
    may leave rows out on both ends, and cursors inside and outside it.
    """
    start = NOW - timedelta(hours=1)
    minute = timedelta(minutes=1)
    people = {"both": (nurse, nurse), "actor": (nurse, provider)}
    people |= {"account": (provider, nurse), "neither": (provider, provider)}
    template = AuditEvent.objects.order_by("id").last()
    with transaction.atomic():
        AuditEvent.objects.bulk_create(
            copies_of(
                template,
                (
                    {
                        "seq": 10**6 + n,
                        "occurred_at": start + minute * at,
                        "actor_id": people[side][0].pk,
                        "account_id": people[side][1].pk,
                        "practice_id": provider.practice_id,
                        "details": side,
                    }
                    for n, (at, side) in enumerate(log)
                ),
            )
        )
        between = (start + minute * first, start + minute * last)
        events = AuditEvent.objects.filter(practice=provider.practice)
        parts = [events.filter(actor=nurse), events.filter(account=nurse)]
        expected = list(
            events.filter(Q(actor=nurse) | Q(account=nurse))
            .filter(occurred_at__gte=between[0], occurred_at__lt=between[1])
            .order_by("-occurred_at", "-id")
            .values_list("occurred_at", "id")
        )

        def page(direction, at=None):
            result = audit_report_page(
                parts, between=between, direction=direction, cursor=at, size=size
            )
            return result, [(row["occurred_at"], row["id"]) for row in result.rows]

        current, walked = page("first")
        for _ in log:  # a page per row at most; a walk that goes round stops here
            if current.is_last:
                break
            current, rows = page("older", current.older)
            walked += rows
        assert current.is_last and walked == expected
        current, back = page("last")
        for _ in log:
            if current.is_first:
                break
            current, rows = page("newer", current.newer)
            back = rows + back
        assert current.is_first and back == expected
        at = Cursor(
            start + minute * cursor[0], cursor[1] + min((i for _, i in expected), default=0)
        )
        key = (at.occurred_at, at.id)
        assert page("older", at)[1] == [row for row in expected if row < key][:size]
        assert page("newer", at)[1] == [row for row in expected if row > key][-size:]
        transaction.set_rollback(True)


def test_break_glass_codes_are_every_break_glass_kind():
    assert set(BREAK_GLASS_CODES) == {code for code in KINDS if code.startswith("break_glass")}
    assert len(BREAK_GLASS_CODES) == 7


# Export


HEADER = ["Date", "Time", "Patient", "User", "Type", "Action", "Details", "IP"]


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_is_exactly_the_filtered_rows_and_safe_in_a_spreadsheet(client, compliance, log):
    client.force_login(compliance)
    confirm_identity(client)
    page = client.get("/audit/")
    response = client.get("/audit/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="audit-log_2024-03-13_to_2024-03-19.csv"'
    )
    assert "no-store" in response["Cache-Control"]
    rows = read_csv(response)
    assert rows[0] == HEADER
    assert [row[6] for row in rows[1:]] == details(page)
    formula_row = rows[2]
    assert formula_row[2] == '\'=HYPERLINK("http://evil","x")'
    seed = rows[4]
    assert seed == [
        "03/18/2024",
        "05:06:19 PM EDT",
        "",
        "496094 (dorothy Ludwig)",
        "Security",
        "Login",
        "Signed in as user dorothy Ludwig",
        "2605:a601:ac72:c200:d5e7:5fe4:ad72:8204",
    ]
    assert rows[5][7] == "192.0.2.4"


def test_export_neutralizes_every_formula_trigger(client, compliance, provider, clock):
    names = ["=1+1", "+CMD", "-2+3", "@SUM(A1)", "\tTab", "\rReturn", "Plain, with comma"]
    for i, name in enumerate(names):
        chart_viewed(provider, f"P-{i}", name, NOW - timedelta(minutes=i + 1))
    client.force_login(compliance)
    confirm_identity(client)
    rows = read_csv(client.get("/audit/export.csv", {"type": "Patient"}))
    patients = [row[2] for row in rows[1:]]
    assert patients == [
        "'=1+1",
        "'+CMD",
        "'-2+3",
        "'@SUM(A1)",
        "'\tTab",
        "'\rReturn",
        "Plain, with comma",
    ]
    assert all(not row[6].startswith(("=", "+", "-", "@")) for row in rows[1:])


def test_export_declares_the_charset_its_bytes_are_in(client, compliance, provider, clock):
    name = "Zoë Ångström-Øster 王"
    chart_viewed(provider, "P-1", name, NOW - timedelta(minutes=1))
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv", {"type": "Patient"})
    content_type, _sep, charset = response["Content-Type"].partition("; charset=")
    assert (content_type, charset) == ("text/csv", "utf-8")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode(charset))))
    assert [row[2] for row in rows[1:]] == [name]


def test_export_is_audited_with_filters_and_row_count(client, compliance, provider, log):
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv", {"username": " Dorothy"})
    rows = read_csv(response)
    event = AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED.code).get()
    assert event.actor_id == compliance.pk and event.type == "Report" and event.action == "Export"
    # Fixed words in Details; what was typed, and whom it matched, in data.
    assert event.details == (
        f"Audit log exported: {len(rows) - 1} events (03/13/2024 to 03/19/2024; username filter)"
    )
    assert event.data == {
        "rows": len(rows) - 1,
        "checkpoint": AuditCheckpoint.objects.get().number,
        "username_input": "Dorothy",
        "username_account_id": provider.pk,
    }
    assert len(rows) - 1 == 3
    # The export's own event is not part of the file it describes.
    assert all("Audit log exported" not in row[6] for row in rows)
    # Read to its end: nothing says it stopped.
    assert not AuditEvent.objects.filter(kind__in=STOPPED).exists()


STOPPED = [kinds.AUDIT_EXPORT_FAILED.code, kinds.AUDIT_EXPORT_INTERRUPTED.code]
LOST = "server closed the connection unexpectedly"


@pytest.fixture
def rows_fail_after(monkeypatch):
    """Make the database's rows stop with an error after `n` of them, one block each."""

    def arm(n: int) -> None:
        monkeypatch.setattr(export, "BATCH", 1)
        monkeypatch.setattr(export, "BLOCK", 1)
        name = "_postgres" if connection.vendor == "postgresql" else "_sqlite"
        rows = getattr(export, name)

        def failing(*args):
            blocks = rows(*args)
            for _ in range(n):
                yield next(blocks)
            # Raised where the rows come from: inside the query, the COPY still open.
            blocks.throw(OperationalError(LOST))

        monkeypatch.setattr(export, name, failing)

    return arm


def exported_then_stopped() -> tuple[AuditEvent, AuditEvent]:
    started, stopped = AuditEvent.objects.filter(
        kind__in=[kinds.AUDIT_EXPORTED.code, *STOPPED]
    ).order_by("id")
    assert started.kind == kinds.AUDIT_EXPORTED.code
    return started, stopped


def test_an_export_that_fails_part_way_records_how_far_it_got(
    client, compliance, log, rows_fail_after
):
    rows_fail_after(2)
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv")
    assert response.status_code == 200 and response["X-Export-Rows"] == "5"
    received = []
    with pytest.raises(OperationalError, match=LOST):
        for block in response.streaming_content:
            received.append(block)
    lines = list(csv.reader(io.StringIO(b"".join(received).decode())))
    assert len(lines) == 1 + 2 + 1
    # The file says so itself: a download that looks finished (HTTP/1.0) is not taken
    # for the whole export.
    assert lines[-1] == [
        "EXPORT INCOMPLETE: it stopped after 2 of 5 events; this file is not the whole "
        "export (the audit log records the failure: audit.export_failed)."
    ]
    started, failed = exported_then_stopped()
    assert started.details.startswith("Audit log exported: 5 events")
    assert (failed.kind, failed.type, failed.action) == (
        kinds.AUDIT_EXPORT_FAILED.code,
        "Report",
        "Export",
    )
    assert failed.details == "Audit log export failed after 2 of 5 events"
    assert failed.data == {"rows": 5, "sent": 2, "export_event": started.pk}
    assert failed.actor_id == failed.account_id == compliance.pk
    assert failed.request_id == started.request_id != ""
    assert audit_log_verify().problem is None


def test_no_row_leaves_when_the_export_cannot_be_recorded(client, compliance, log, monkeypatch):
    client.force_login(compliance)
    confirm_identity(client)

    def refused(**kwargs):
        raise AuditWriteError("the audit chain head is missing")

    monkeypatch.setattr(services, "audit_event_record", refused)
    with pytest.raises(AuditWriteError):
        client.get("/audit/export.csv")


def test_a_failure_that_cannot_be_recorded_still_ends_with_the_exports_own_error(
    client, compliance, log, rows_fail_after, monkeypatch, caplog
):
    rows_fail_after(1)
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv")

    def refused(**kwargs):
        raise AuditWriteError("the audit chain head is missing")

    monkeypatch.setattr(services, "audit_event_record", refused)
    with pytest.raises(OperationalError, match=LOST):
        b"".join(response.streaming_content)
    assert "could not record that audit export" in caplog.text
    assert not AuditEvent.objects.filter(kind__in=STOPPED).exists()


def test_a_download_closed_part_way_is_recorded_as_interrupted(compliance, log, monkeypatch):
    monkeypatch.setattr(export, "BATCH", 1)
    monkeypatch.setattr(export, "BLOCK", 1)
    result = services.audit_log_export(
        acting_user=compliance,
        ip="192.0.2.9",
        events=audit_event_scope(viewer=compliance),
        filters="all dates",
        filter_data={},
        time_zone=ZoneInfo(compliance.time_zone),
    )
    assert result.rows > 2
    content = iter(result.content)
    header, first, second = next(content), next(content), next(content)
    assert header.startswith(b"Date,Time,") and first and second
    content.close()  # what a WSGI server does when the client goes away
    started, interrupted = exported_then_stopped()
    assert interrupted.kind == kinds.AUDIT_EXPORT_INTERRUPTED.code
    assert interrupted.details == (
        f"Audit log export interrupted after 2 of {result.rows} events: the download was closed"
    )
    assert interrupted.data == {"rows": result.rows, "sent": 2, "export_event": started.pk}
    # The query was ended before the event was written: the connection is free.
    assert AuditEvent.objects.order_by("-id").first().pk == interrupted.pk
    assert audit_log_verify().problem is None


@pytest.mark.postgres_only
def test_a_large_download_closed_part_way_ends_its_copy_and_records_it(
    compliance, log, monkeypatch
):
    """The database is still sending when the download closes: the COPY is cancelled.

    The cancel aborts the export's transaction; closing must roll it back and send
    nothing else into it, or close() raises instead and the session is left broken.
    """
    # The rows are copies made in bulk, not a chain the signer would sign (it walks
    # them first and refuses, as test_chains.py shows); only the stream is tested here.
    monkeypatch.setattr(checkpoints, "extension_problem", lambda *signed_so_far: None)
    with connection.cursor() as cursor:
        # 100,000 copies of one event behind the chain's back (the append-only guard
        # allows inserts), and the head moved past them so the export includes them.
        head = AuditChain.objects.get(practice_id=compliance.practice_id)
        columns = [c for c in services.EVENT_COLUMNS if c != "seq"]
        cursor.execute(
            f"INSERT INTO audit_auditevent (seq, {', '.join(columns)}) "  # noqa: S608  (fixed column names)
            f"SELECT %s + n, {', '.join('e.' + c for c in columns)} "
            "FROM audit_auditevent e, generate_series(1, 100000) n "
            "WHERE e.chain_id = %s AND e.seq = %s",
            [head.seq, head.pk, head.seq],
        )
        cursor.execute(
            "UPDATE audit_auditchain SET seq = %s WHERE id = %s", [head.seq + 100000, head.pk]
        )
    result = services.audit_log_export(
        acting_user=compliance,
        ip=None,
        events=audit_event_scope(viewer=compliance),
        filters="all dates",
        filter_data={},
        time_zone=ZoneInfo(compliance.time_zone),
    )
    content = iter(result.content)
    next(content), next(content), next(content)
    content.close()  # raises if the cleanup ran a statement in the aborted transaction
    started, interrupted = exported_then_stopped()
    assert interrupted.kind == kinds.AUDIT_EXPORT_INTERRUPTED.code
    assert interrupted.data["export_event"] == started.pk
    assert 0 < interrupted.data["sent"] < result.rows


def test_export_of_an_unknown_username_is_the_header_only(client, compliance, log):
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get("/audit/export.csv", {"username": "nobody-by-that-name"})
    assert response.status_code == 200 and response["X-Export-Rows"] == "0"
    assert read_csv(response) == [HEADER]


def test_export_filename_carries_only_validated_dates(client, compliance, log):
    client.force_login(compliance)
    confirm_identity(client)
    response = client.get(
        "/audit/export.csv", {"username": 'x"; filename=evil.exe', "last": "month"}
    )
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="audit-log_2024-02-19_to_2024-03-19.csv"'
    )
    assert read_csv(response) == [HEADER]


def test_an_account_owner_does_not_read_the_oversight_of_their_account(
    client, compliance, provider, log
):
    """Alerts about them, the officer's notes, their history being read, a grant's review."""
    record_at(
        NOW - timedelta(hours=3), kind=kinds.PROFILE_UPDATED, acting_user=provider, account=provider
    )
    oversight = [
        (kinds.ALERT_RAISED, {"alert": 7, "summary": "Support PIN viewed 40 times in a day"}),
        (kinds.ALERT_ACKNOWLEDGED, {"alert": 7, "note": "Interviewing her on Monday"}),
        (kinds.AUDIT_ACCOUNT_HISTORY_VIEWED, {"rows": 12, "period": "03/12/2024 to 03/19/2024"}),
        (kinds.BREAK_GLASS_REVIEWED, {"grant": 3, "outcome": "Justified", "note": "ok"}),
    ]
    for n, (kind, params) in enumerate(oversight):
        record_at(
            NOW - timedelta(hours=2, minutes=n),
            kind=kind,
            acting_user=compliance,
            account=provider,
            params=params,
        )
    client.force_login(provider)
    own = details(client.get("/audit/"))
    assert "Profile updated for user dorothy Ludwig" in own
    assert not [
        line for line in own if "Alert #7" in line or "history" in line or "reviewed" in line
    ]
    confirm_identity(client)
    exported = "\n".join(row[6] for row in read_csv(client.get("/audit/export.csv")))
    assert "Interviewing her" not in exported and "Alert #7" not in exported
    client.force_login(compliance)
    theirs = details(client.get("/audit/", {"username": "dorothy"}))
    assert sum("Alert #7" in line for line in theirs) == 2
    assert any("Interviewing her on Monday" in line for line in theirs)


def test_the_event_box_offers_an_account_owner_no_oversight_kind(client, compliance, provider):
    """The kinds left out of an owner's log are not suggested to them, nor taken when typed."""
    client.force_login(provider)
    page = client.get("/audit/").content.decode()
    assert f'value="{kind_label(kinds.PROFILE_UPDATED.code)}"' in page
    for code in OVERSIGHT_CODES:
        assert f'value="{kind_label(code)}"' not in page
    refused = client.get("/audit/", {"kind": "alert: acknowledged"})
    assert refused.status_code == 400
    assert "Choose an event from the list" in refused.content.decode()
    # A part of a name is matched among the owner's kinds only: "acknowledged" names
    # one kind for the officer (the alert's) and none for the owner.
    assert client.get("/audit/", {"kind": "acknowledged"}).status_code == 400
    # "history" names two kinds for the officer and one for the owner (the patient's).
    assert client.get("/audit/", {"kind": "history"}).status_code == 200
    client.force_login(compliance)
    page = client.get("/audit/").content.decode()
    assert all(f'value="{kind_label(code)}"' in page for code in OVERSIGHT_CODES)
    assert client.get("/audit/", {"kind": "alert: acknowledged"}).status_code == 200
    assert client.get("/audit/", {"kind": "acknowledged"}).status_code == 200
    several = client.get("/audit/", {"kind": "history"})
    assert several.status_code == 400 and "2 kinds of event match that" in (
        several.content.decode()
    )


def test_the_event_box_shows_a_kinds_name_and_every_link_carries_its_code(client, compliance, log):
    client.force_login(compliance)
    for typed in ("support_pin.viewed", "Support PIN: viewed", "support pin viewed"):
        page = client.get("/audit/", {"kind": typed}).content.decode()
        assert 'value="Support PIN: viewed"' in page.split('id="id_kind"')[0].rsplit("<input", 1)[1]
        links = re.findall(r'href="(\?[^"]*)"', page)
        assert links and all("kind=support_pin.viewed" in link for link in links if "kind=" in link)
        assert sum("kind=" in link for link in links) >= 4  # the quick ranges among them
