"""The report sorted by each column, counted, and paged with its place said."""

from datetime import timedelta

import pytest
from django.db.models import F, Q

from audit import kinds, selectors
from audit.models import AuditEvent
from audit.selectors import REPORT_SORTS, audit_event_scope
from tests.audit.helpers import NOW, record_at
from tests.audit.test_report import read_csv
from tests.factories import confirm_identity


def ids(response) -> list[int]:
    return [row["id"] for row in response.context["page"].rows]


def expected_order(viewer, key: str, descending: bool) -> list[int]:
    """The rows of the default 7 days in the order the key names, ties newest first."""
    rows = list(
        audit_event_scope(viewer=viewer)
        .filter(occurred_at__gte=NOW - timedelta(days=7), occurred_at__lte=NOW)
        .values("id", "occurred_at", REPORT_SORTS[key])
    )
    rows.sort(key=lambda row: (row["occurred_at"], row["id"]), reverse=True)
    if key == "time":
        return [row["id"] for row in (rows if descending else reversed(rows))]
    value = REPORT_SORTS[key]
    rows.sort(key=lambda row: row[value], reverse=descending)  # stable: ties stay newest first
    return [row["id"] for row in rows]


@pytest.mark.parametrize("key", [key for key in REPORT_SORTS if key != "ip"])
@pytest.mark.parametrize("descending", [False, True])
def test_every_column_sorts_both_ways(client, compliance, log, key, descending):
    client.force_login(compliance)
    sort = f"-{key}" if descending else key
    response = client.get("/audit/", {"sort": sort})
    assert response.status_code == 200
    assert ids(response) == expected_order(compliance, key, descending)
    page = response.content.decode()
    heading = "Date" if key == "time" else {"user": "User", "type": "Type"}.get(key)
    assert page.count("aria-sort=") == 1
    direction = "descending" if descending else "ascending"
    assert f'aria-sort="{direction}"' in page
    if heading:
        arrow = "▼" if descending else "▲"
        assert f'{heading} <span aria-hidden="true">{arrow}</span>' in page


def test_sorting_by_user_sorts_by_the_label_the_column_shows(client, compliance, log):
    client.force_login(compliance)
    shown = [row["user"] for row in client.get("/audit/", {"sort": "user"}).context["rows"]]
    assert shown == sorted(shown) and len(set(shown)) > 1
    page = client.get("/audit/", {"sort": "-user"})
    assert [row["user"] for row in page.context["rows"]] == sorted(shown, reverse=True)
    assert "Sorted by User (descending): the label the User column shows." in (
        page.content.decode()
    )


def test_a_quick_range_keeps_the_order(client, compliance, log):
    client.force_login(compliance)
    links = dict(client.get("/audit/", {"sort": "-type"}).context["quick_links"])
    assert links["Month"] == "?sort=-type&last=month"
    assert dict(client.get("/audit/").context["quick_links"])["Month"] == "?last=month"


def test_sorting_by_ip_puts_missing_addresses_last_both_ways(client, compliance, log):
    client.force_login(compliance)
    for sort in ("ip", "-ip"):
        shown = [row["ip"] for row in client.get("/audit/", {"sort": sort}).context["rows"]]
        assert "None" in shown and shown.index("None") > 0
        assert set(shown[shown.index("None") :]) == {"None"}


@pytest.mark.parametrize(
    "sort", ["nope", "-", "--user", "occurred_at", "id", "user; DROP TABLE x", "x" * 500]
)
def test_an_unknown_sort_is_said_and_the_newest_come_first(client, compliance, log, sort):
    client.force_login(compliance)
    default = client.get("/audit/")
    response = client.get("/audit/", {"sort": sort})
    assert response.status_code == 200
    assert ids(response) == ids(default)
    assert "That sort order is not one of the columns" in response.content.decode()


@pytest.fixture
def many(provider, clock):
    """120 sign-ins of the provider, a minute apart, three days ago."""
    base = NOW - timedelta(days=3)
    for i in range(120):
        record_at(
            base + timedelta(minutes=i),
            kind=kinds.SIGNED_IN,
            acting_user=provider,
            account=provider,
            ip=f"192.0.2.{i % 7}",
        )


def indication(response) -> str:
    return response.context["indication"]


def test_keyset_pages_say_where_they_are(client, compliance, many):
    client.force_login(compliance)
    first = client.get("/audit/")
    assert indication(first) == "121 events · Page 1 · events 1\u201350"
    page = first.context["page"]
    older = client.get("/audit/", {"page": "older", "cursor": page.older.encode(), "n": "2"})
    assert indication(older) == "121 events · Page 2 · events 51\u2013100"
    assert "n=3" in older.content.decode() and "n=1" in older.content.decode()
    # The oldest page holds what the full pages leave over: the pages from either end
    # are the same pages, numbered from the newest.
    last = client.get("/audit/", {"page": "last"})
    assert indication(last) == "121 events · Page 3 · events 101\u2013121"
    third = client.get(
        "/audit/", {"page": "older", "cursor": older.context["page"].older.encode(), "n": "3"}
    )
    assert indication(third) == "121 events · Page 3 · events 101\u2013121"
    assert last.context["page"].rows == third.context["page"].rows
    assert "n=2" in last.content.decode()
    newer = client.get(
        "/audit/", {"page": "newer", "cursor": last.context["page"].newer.encode(), "n": "2"}
    )
    assert indication(newer) == "121 events · Page 2 · events 51\u2013100"
    assert newer.context["page"].rows == older.context["page"].rows
    # An older link numbered from the oldest (a bookmark) still says where it is.
    from_oldest = client.get(
        "/audit/", {"page": "newer", "cursor": last.context["page"].newer.encode(), "n": "-2"}
    )
    assert indication(from_oldest) == "121 events · Page 2 from the oldest"
    # A link without its number (an old bookmark) says only the count.
    bare = client.get("/audit/", {"page": "older", "cursor": page.older.encode()})
    assert indication(bare) == "121 events"
    for junk in ("0", "x", "9" * 20):
        assert client.get("/audit/", {"n": junk}).status_code == 200


def test_the_count_is_exact_up_to_its_bound_then_more_than(client, compliance, many, monkeypatch):
    client.force_login(compliance)
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 121)
    assert indication(client.get("/audit/")).startswith("121 events ·")
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 120)
    assert indication(client.get("/audit/")).startswith("More than 120 events · Page 1")
    last = client.get("/audit/", {"page": "last"})
    assert indication(last) == "More than 120 events · Page 1 from the oldest"


def test_other_orders_page_by_offset_within_the_newest_events(
    client, compliance, many, monkeypatch
):
    client.force_login(compliance)
    everything = list(
        audit_event_scope(viewer=compliance)
        .filter(occurred_at__gte=NOW - timedelta(days=7), occurred_at__lte=NOW)
        .order_by(F("ip").asc(nulls_last=True), "-occurred_at", "-id")
        .values_list("id", flat=True)
    )
    walked = []
    for n in (1, 2, 3):
        response = client.get("/audit/", {"sort": "ip", "n": n})
        walked += ids(response)
        assert f"Page {n} of 3" in indication(response)
    assert walked == everything
    assert indication(client.get("/audit/", {"sort": "ip", "n": "99"})).endswith(
        "Page 3 of 3 · events 101\u2013121"
    )
    assert "All 121 matching events are sorted." in (
        client.get("/audit/", {"sort": "ip"}).content.decode()
    )
    # Past the bound only the newest events are sorted, and the page says so.
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 100)
    monkeypatch.setattr(selectors, "SORT_LIMIT", 100)
    first = client.get("/audit/")
    older = client.get("/audit/", {"page": "older", "cursor": first.context["page"].older.encode()})
    newest = set(ids(first) + ids(older))  # the 100 newest, as the default order pages them
    response = client.get("/audit/", {"sort": "-user", "n": "2"})
    assert indication(response) == "More than 100 events · Page 2 of 2 · events 51\u2013100"
    assert set(ids(response)) < newest
    assert "Only the newest 100 matching events are sorted" in response.content.decode()


def test_query_counts_are_pinned(client, compliance, many, django_assert_num_queries):
    client.force_login(compliance)
    client.get("/audit/")  # warm the session and user caches
    # session, user, device, whether the account has a passkey (signed in with the app,
    # in its grace period), roles, then the bounded count and the page's rows:
    # whatever the size of the log or the page.
    with django_assert_num_queries(7):
        client.get("/audit/")
    with django_assert_num_queries(7):
        client.get("/audit/", {"page": "last"})
    # Sorted: the count, the time of the oldest of the newest events, then the page of
    # the newest events sorted.
    with django_assert_num_queries(8):
        client.get("/audit/", {"sort": "user", "n": "2"})


def test_exports_take_a_sort_and_stay_newest_first(client, compliance, log):
    client.force_login(compliance)
    confirm_identity(client)
    plain = read_csv(client.get("/audit/export.csv"))
    response = client.get("/audit/export.csv", {"sort": "user", "n": "2"})
    assert response.status_code == 200
    # The same rows in the same order (less the first export's own event, now in range).
    assert [row for row in read_csv(response) if "exported" not in row[6]] == plain
    fhir = client.get("/audit/export.fhir.json", {"sort": "-ip"})
    assert fhir.status_code == 200 and b"".join(fhir.streaming_content)
    assert AuditEvent.objects.filter(kind=kinds.AUDIT_EXPORTED_FHIR.code).count() == 1


def test_a_username_sorted_reads_both_sides_once_each(
    client, compliance, provider, nurse, clock, monkeypatch
):
    """The acting user's and the account's newest rows, their union cut at the bound."""
    sides = [(nurse, nurse), (provider, nurse), (nurse, provider), (provider, provider)]
    for i in range(80):
        actor, account = sides[i % 4]
        record_at(
            NOW - timedelta(days=3) + timedelta(minutes=i // 3),
            kind=kinds.PROFILE_UPDATED,
            acting_user=actor,
            account=account,
            ip=f"192.0.2.{i % 9}",
            params={"account": account.display_name},
        )
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 50)
    monkeypatch.setattr(selectors, "SORT_LIMIT", 50)
    client.force_login(compliance)
    newest = list(
        audit_event_scope(viewer=compliance)
        .filter(Q(actor=nurse) | Q(account=nurse), occurred_at__lte=NOW)
        .order_by("-occurred_at", "-id")
        .values("id", "ip")[:50]
    )
    newest.sort(key=lambda row: row["ip"])  # stable: ties stay newest first
    walked = []
    for n in (1, 2):
        response = client.get("/audit/", {"username": "dori", "sort": "ip", "n": n})
        walked += ids(response)
    assert indication(response) == "More than 50 events · Page 1 of 1 · events 1\u201350"
    assert walked[:50] == [row["id"] for row in newest]


def test_a_username_is_counted_once_per_event_and_at_its_bound(
    client, compliance, provider, nurse, clock, monkeypatch
):
    """Both sides of a username are counted as one union: an event by the user on their own
    account is one event, and the bound holds across the sides."""
    sides = [(nurse, nurse), (provider, nurse), (nurse, provider), (provider, provider)]
    for i in range(40):
        actor, account = sides[i % 4]
        record_at(
            NOW - timedelta(days=2) + timedelta(minutes=i),
            kind=kinds.PROFILE_UPDATED,
            acting_user=actor,
            account=account,
            params={"account": account.display_name},
        )
    client.force_login(compliance)
    assert indication(client.get("/audit/", {"username": "dori"})).startswith("30 events ·")
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 29)
    assert indication(client.get("/audit/", {"username": "dori"})).startswith(
        "More than 29 events ·"
    )
    monkeypatch.setattr(selectors, "COUNT_LIMIT", 30)
    response = client.get("/audit/", {"username": "dori", "break_glass": "on"})
    assert response.status_code == 200 and response.context["page"].rows == []


@pytest.mark.parametrize("sort", ["", "user", "-ip"])
@pytest.mark.parametrize("break_glass", ["", "on"])
def test_a_username_that_names_nobody_shows_no_events_in_any_order(
    client, compliance, log, sort, break_glass
):
    client.force_login(compliance)
    params = {"username": "nobody-by-that-name", "sort": sort, "break_glass": break_glass}
    response = client.get("/audit/", params)
    assert response.status_code == 200
    assert response.context["page"].rows == []
    assert "Matches no account whose events you can see." in response.content.decode()


@pytest.mark.postgres_only  # PostgreSQL prepares statements
@pytest.mark.parametrize("params", [{}, {"page": "last"}, {"break_glass": "on"}])
def test_the_reports_event_queries_are_prepared_and_nothing_else(client, compliance, log, params):
    from django.db import connection

    client.force_login(compliance)
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    for _ in range(7):
        assert client.get("/audit/", params).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert prepared, "the report's queries were not prepared"
    for statement in prepared:
        assert '"audit_auditevent"' in statement and "$1" in statement, statement
    # The session, the user and the account lookups keep Django's own cursors.
    after = client.get("/audit/", {"username": "dori", **params})
    assert after.status_code == 200 and after.context["user_matches"]
