"""Reads of the audit log: the report page, the export, the patient list."""

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import BooleanField, ExpressionWrapper, F, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Concat

from accounts.models import User
from audit.kinds import OVERSIGHT_CODES
from audit.models import AuditChain, AuditedPatient, AuditEvent
from ehr.policies import AuditScope, audit_scope
from ehr.prepared import Code


def audit_event_scope(*, viewer: User) -> QuerySet[AuditEvent]:
    """Return the events `viewer` may read (none for those who may read none).

    Providers and staff read the events about their own account, except the
    oversight of it (`kinds.OVERSIGHT_CODES`).
    """
    scope = audit_scope(viewer)
    events = AuditEvent.objects.all()
    if scope is AuditScope.ALL:
        return events
    if scope is AuditScope.PRACTICE:
        return events.filter(practice_id=viewer.practice_id)
    if scope is AuditScope.OWN_ACCOUNT:
        return events.filter(account_id=viewer.pk).exclude(
            kind__in=[Code(code) for code in OVERSIGHT_CODES]
        )
    return events.none()


def _patients_in_scope(viewer: User) -> QuerySet | None:
    """Return the (patient_id, patient_name) rows the viewer may look patients up in.

    A practice's patients and the platform's come from `AuditedPatient`, kept
    beside the log; a provider's own are those of the events of their account.
    None for a viewer who may read no log.
    """
    scope = audit_scope(viewer)
    if scope is AuditScope.OWN_ACCOUNT:
        return audit_event_scope(viewer=viewer).exclude(patient_id="")
    if scope is AuditScope.PRACTICE:
        return AuditedPatient.objects.filter(practice_id=viewer.practice_id)
    if scope is AuditScope.ALL:
        return AuditedPatient.objects.all()
    return None


def _by_id(rows) -> list[tuple[str, str]]:
    """One (id, name) per patient id (a platform's practices may share an id), by name."""
    patients = dict(rows)
    return sorted(patients.items(), key=lambda row: (row[1].lower(), row[0]))


ACCOUNT_MATCH_LIMIT = 20


def audit_account_matches(*, viewer: User, text: str) -> list[User]:
    """Return the accounts the report's user filter names, up to ACCOUNT_MATCH_LIMIT + 1.

    The text names an account by its username (whole, any case), its Doctor ID
    (digits), or part of its name ("dorothy", "ludwig", "dorothy lud"). Only
    accounts whose events the viewer can see are looked at: their own
    practice's members and the platform's staff (who act on a practice's
    accounts), or everyone for a platform auditor, or for a provider or nurse,
    who read the events about their own account, only themselves; so naming the
    matches on the page tells no one about anyone they may not look up.
    """
    text = " ".join(text.split())
    scope = audit_scope(viewer)
    if not text or scope is None:
        return []
    named = Q(username__iexact=text) | Q(full_name__icontains=text)
    if text.isascii() and text.isdigit() and len(text) <= 10:  # "²" is a digit, not a number
        named |= Q(provider_profile__doctor_id=int(text))
    accounts = User.objects.annotate(full_name=Concat("first_name", Value(" "), "last_name"))
    if scope is AuditScope.OWN_ACCOUNT:
        # Who reads only events about their own account names only themselves: the
        # platform's staff and their colleagues are no answer of theirs to give.
        accounts = accounts.filter(pk=viewer.pk)
    elif scope is not AuditScope.ALL:
        accounts = accounts.filter(Q(practice_id=viewer.practice_id) | Q(practice__isnull=True))
    return list(
        accounts.filter(named)
        .select_related("provider_profile")
        .order_by("last_name", "first_name", "username")[: ACCOUNT_MATCH_LIMIT + 1]
    )


PATIENT_SEARCH_LIMIT = 20


def audit_patient_search(*, viewer: User, text: str) -> list[tuple[str, str]]:
    """Return up to PATIENT_SEARCH_LIMIT (id, name) of the viewer's patients matching `text`.

    A patient matches when the text is part of the name or the start of the id,
    whatever the case: what the report's patient box suggests as one types.
    """
    rows = _patients_in_scope(viewer)
    text = text.strip()
    if rows is None or not text:
        return []
    found = (
        rows.filter(Q(patient_name__icontains=text) | Q(patient_id__istartswith=text))
        .values_list("patient_id", "patient_name")
        .order_by("patient_name", "patient_id")
        .distinct()[: PATIENT_SEARCH_LIMIT * 2]
    )
    return _by_id(found)[:PATIENT_SEARCH_LIMIT]


def audit_patient_lookup(*, viewer: User, text: str) -> list[tuple[str, str]]:
    """Return the viewer's patients that `text` names: its id exactly, or else its whole
    name, or else a part of the name (what the box suggests as one types).

    The report's patient filter takes one patient; several results mean the text
    names several (at most a few are returned), and the viewer is asked to pick one.
    """
    rows = _patients_in_scope(viewer)
    text = text.strip()
    if rows is None or not text:
        return []
    columns = ("patient_id", "patient_name")
    by_id = rows.filter(patient_id=text).values_list(*columns)[:5]
    return (
        _by_id(by_id)
        or _by_id(rows.filter(patient_name__iexact=text).values_list(*columns)[:5])
        or audit_patient_search(viewer=viewer, text=text)[:5]
    )


def audit_patient_practices(*, patient_id: str) -> list[int | None]:
    """Return the practices whose logs name the patient (None: events of no practice).

    For a viewer of every practice's log: a patient id is a practice's own, and the
    events of a patient are indexed by practice first (`AuditEventFilter`).
    """
    holders = AuditedPatient.objects.filter(patient_id=patient_id)
    return list(holders.order_by("practice_id").values_list("practice_id", flat=True))


REPORT_COLUMNS = (
    "id",
    "occurred_at",
    "patient_id",
    "patient_name",
    "practice_id",
    "actor_id",
    "actor_label",
    "type",
    "action",
    "details",
    "ip",
)

# How many matching events are counted exactly, and how many a non-default order sorts.
COUNT_LIMIT = 10_000  # beyond it the page says "more than 10,000"
SORT_LIMIT = 10_000  # other orders sort the newest this many matching events

# The report's sort keys: each column it shows, by the value the column shows.
REPORT_SORTS = {
    "time": "occurred_at",  # the Date and Time columns
    "patient": "patient_name",
    "user": "actor_label",  # the label the User column shows: `496094 (dorothy Ludwig)`
    "type": "type",
    "action": "action",
    "details": "details",
    "ip": "ip",
}


@dataclass(frozen=True)
class Sort:
    """A report order: one of REPORT_SORTS, ascending or descending (`-user`)."""

    key: str
    descending: bool

    @classmethod
    def parse(cls, raw: str) -> "Sort | None":
        """Return the order `raw` names (`user`, `-time`), or None for anything else."""
        descending = raw.startswith("-")
        key = raw[1:] if descending else raw
        return cls(key, descending) if key in REPORT_SORTS else None

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_SORT

    def encode(self) -> str:
        return f"-{self.key}" if self.descending else self.key


DEFAULT_SORT = Sort("time", descending=True)  # newest first, served by keyset pages


@dataclass(frozen=True)
class EventCount:
    """How many events match: exact up to COUNT_LIMIT, else only "more than" it."""

    value: int
    exact: bool


def audit_event_count(
    parts: Sequence[tuple[QuerySet[AuditEvent], Q | None]],
    *,
    between: tuple[datetime, datetime],
    limit: int | None = None,
) -> EventCount:
    """Count the events of the union of `parts` in `between`, stopping at `limit` + 1.

    `SELECT COUNT(*) FROM (SELECT ... LIMIT limit + 1)`: the database stops reading
    the filter's index after that many rows, unsorted, so the count costs the same
    in a log of millions of events as in one of ten thousand. Several parts (a
    username's two sides, `AuditEventFilter.count_parts`) each read at most
    `limit` + 1 rows from their own index, in one statement; each part comes with
    the rows of it that an earlier part holds (`seen`), which it reads but does not
    count, so each event is counted once, in the first part that holds it. The sum
    is exact when it is at most `limit`: a part cut off at `limit` + 1 rows adds, to
    what the parts before it counted whole, at least as many rows as they did not
    already hold, so the sum is then above `limit`.
    """
    limit = COUNT_LIMIT if limit is None else limit
    start, end = between
    pieces, params = [], []
    for n, (part, seen) in enumerate(parts):
        firsts = part.filter(occurred_at__gte=start, occurred_at__lt=end).order_by()
        if seen is None:
            firsts, counted = firsts.values("id"), "COUNT(*)"
        else:
            firsts = firsts.annotate(seen=ExpressionWrapper(seen, BooleanField())).values("seen")
            counted = f"COUNT(*) - COUNT(CASE WHEN p{n}.seen THEN 1 END)"
        try:
            sql, part_params = firsts[: limit + 1].query.sql_with_params()
        except EmptyResultSet:
            continue  # the ORM knows it matches nothing (a username naming no account)
        pieces.append(f"(SELECT {counted} FROM ({sql}) p{n})")  # noqa: S608  # nosec B608
        params.extend(part_params)
    found = 0
    if pieces:
        with connections[parts[0][0].db].cursor() as cursor:
            # The ORM's own SQL for each part; values as parameters.
            cursor.execute(f"SELECT {' + '.join(pieces)}", params)  # nosec B608
            found = cursor.fetchone()[0]
    return EventCount(min(found, limit), exact=found <= limit)


def _union(querysets: Sequence[QuerySet], columns: list[str]) -> tuple[str, list] | None:
    """Return the SQL and parameters of the UNION of `querysets`' `columns`, or None if all are empty.

    Each query keeps its own ORDER BY and LIMIT inside a subquery of its own (SQLite
    allows neither on a bare member of a UNION). A query the ORM knows matches
    nothing (`actor_id IN ()`, a username that names no account) is left out.
    """
    pieces, params = [], []
    for n, queryset in enumerate(querysets):
        try:
            sql, part_params = queryset.query.sql_with_params()
        except EmptyResultSet:
            continue
        picked = ", ".join(f"p{n}.{column}" for column in columns)
        pieces.append(f"SELECT {picked} FROM ({sql}) p{n}")  # noqa: S608  # nosec B608
        params.extend(part_params)
    if not pieces:
        return None
    return " UNION ".join(pieces), params  # the ORM's own SQL for each part; values as parameters


@dataclass(frozen=True)
class SortedPage:
    rows: list[dict]
    number: int  # 1, 2, 3 ...
    pages: int  # pages of the sorted events (at least 1)


def audit_sorted_page(
    parts: Sequence[QuerySet[AuditEvent]],
    *,
    between: tuple[datetime, datetime],
    sort: Sort,
    number: int,
    size: int,
    sorted_count: int,
) -> SortedPage:
    """Return page `number` of the newest SORT_LIMIT events of `parts`, in the order `sort` says.

    The newest SORT_LIMIT matching events (a range scan of each part's index,
    newest first, as the default order reads them) are sorted by the column,
    ties newest first and then by id (so every page is stable), and paged by
    OFFSET within them. `sorted_count` is how many they are (the bounded
    count); a number past the last page shows the last.
    """
    pages = max(1, -(-sorted_count // size))
    number = min(max(number, 1), pages)
    column = F(REPORT_SORTS[sort.key])
    if sort.key == "time":
        order = (
            [column.desc(), F("id").desc()] if sort.descending else [column.asc(), F("id").asc()]
        )
    else:
        first = column.desc(nulls_last=True) if sort.descending else column.asc(nulls_last=True)
        order = [first, F("occurred_at").desc(), F("id").desc()]
    offset = (number - 1) * size
    newest = _among_newest(parts, between, SORT_LIMIT)
    if newest is None:
        return SortedPage(rows=[], number=number, pages=pages)
    rows = list(
        AuditEvent.objects.using(parts[0].db)
        .filter(newest, occurred_at__gte=_newest_since(parts, between, SORT_LIMIT))
        .order_by(*order)
        .values(*REPORT_COLUMNS)[offset : offset + size]
    )
    return SortedPage(rows=rows, number=number, pages=pages)


def _newest_since(
    parts: Sequence[QuerySet[AuditEvent]], between: tuple[datetime, datetime], limit: int
) -> datetime:
    """Return a time no later than the oldest of the newest `limit` events of `parts`.

    The union's `limit`-th newest event is at least as new as each part's own, so the
    latest of those bounds it (or the range's start, for a part with fewer events).
    With it the sorted page's query names the months it reads: on PostgreSQL's monthly
    partitions an id alone names none, and each id was looked up in every month's
    index (1.8 s a page at 5,000,000 events). One index range per part.
    """
    start, end = between
    since = start
    for part in parts:
        nth = list(
            part.filter(occurred_at__gte=start, occurred_at__lt=end)
            .order_by("-occurred_at", "-id")
            .values_list("occurred_at", flat=True)[limit - 1 : limit]
        )
        if nth and nth[0] > since:
            since = nth[0]
    return since


def _among_newest(
    parts: Sequence[QuerySet[AuditEvent]], between: tuple[datetime, datetime], limit: int
) -> RawSQL | None:
    """Return a filter: the event is one of the newest `limit` of the union of `parts` in
    `between` (None: the ORM knows they match nothing).

    One part is one index range, newest first, stopped at `limit`. Several (a
    username's two sides, the break-glass kinds) are each read so, then their
    union is ordered and cut at `limit` again: asked as one OR, the database
    would read every row any side matches, or walk the practice's whole time
    index, before it found the newest. (Merging the parts' positions in Python,
    as the default order does with its 51 rows, costs a third of a second here
    for 10,000 rows: SQLite's datetimes are parsed one by one.)

    On PostgreSQL the filter matches the pair (id, occurred_at), not the id alone:
    on its monthly partitions the time names the one month each row is looked up
    in as the query runs, where an id alone was looked up in every month the
    query's range reaches (at 5,000,000 events, 100,000 index pages read for
    10,000 rows against 40,000, and 25 ms of a 130 ms page). SQLite keeps one
    table and matches the id.
    """
    start, end = between
    newest = [
        part.filter(occurred_at__gte=start, occurred_at__lt=end)
        .order_by("-occurred_at", "-id")
        .values("id", "occurred_at")[:limit]
        for part in parts
    ]
    if len(newest) == 1:
        try:
            sql, params = newest[0].query.sql_with_params()
        except EmptyResultSet:
            return None
    else:
        union = _union(newest, ["id", "occurred_at"])
        if union is None:
            return None
        union_sql, union_params = union
        sql = f"SELECT u.id, u.occurred_at FROM ({union_sql}) u ORDER BY u.occurred_at DESC, u.id DESC LIMIT %s"  # noqa: S608  # nosec B608
        params = [*union_params, limit]
    database = connections[parts[0].db]
    quote = database.ops.quote_name
    t = quote(AuditEvent._meta.db_table)
    if database.vendor == "postgresql":
        matched = f"({t}.{quote('id')}, {t}.{quote('occurred_at')}) IN ({sql})"
    else:
        # One table, no months to name; SQLite reads a pair's list twice (84 ms against
        # 52 for the id's at 1,000,000 events).
        matched = f"{t}.{quote('id')} IN (SELECT n.id FROM ({sql}) n)"  # noqa: S608  # nosec B608
    return RawSQL(matched, params, output_field=BooleanField())  # noqa: S611  # nosec B611  (the ORM's SQL; values as parameters)


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: (occurred_at, id) of a row."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.occurred_at.timestamp():.6f}_{self.id}"

    @classmethod
    def decode(cls, raw: str | None) -> "Cursor | None":
        from datetime import UTC

        if not raw or len(raw) > 40:
            return None
        stamp, _sep, ident = raw.partition("_")
        try:
            return cls(datetime.fromtimestamp(float(stamp), tz=UTC), int(ident))
        except (ValueError, OverflowError, OSError):
            return None


@dataclass(frozen=True)
class ReportPage:
    rows: list[dict]
    newer: Cursor | None  # cursor for the page of newer rows, if any
    older: Cursor | None  # cursor for the page of older rows, if any
    is_first: bool
    is_last: bool


def audit_report_page(
    parts: Sequence[QuerySet[AuditEvent]],
    *,
    between: tuple[datetime, datetime],
    direction: str,
    cursor: Cursor | None,
    size: int,
) -> ReportPage:
    """Return one page of the union of `parts` in `between`, newest first, by keyset pagination.

    Every page, the oldest included, costs one index range scan of `size + 1`
    rows per part: no OFFSET, no COUNT, whatever the size of the log. Each part
    is read on its own, in the page's order, and the parts' rows are merged here,
    a row that several parts match once (`AuditEventFilter.parts`).
    between: (start, end), start included, end not.
    direction: "first", "last", "older" (than cursor) or "newer" (than cursor).
    """
    if direction in {"older", "newer"} and cursor is None:
        direction = "first"
    ascending = direction in {"newer", "last"}
    ordering = ("occurred_at", "id") if ascending else ("-occurred_at", "-id")
    start, end = between
    # One lower and one upper bound on occurred_at, the tighter of the date range's
    # and the cursor's: the index scan starts from the bound it is given, and SQLite
    # uses only one of several (the first, when it cannot tell which is tighter),
    # so with both it would step over every row from the end of the range to the
    # cursor. The id settles rows at the cursor's very instant.
    bounds = Q(occurred_at__gte=start, occurred_at__lt=end)
    if direction == "older" and cursor.occurred_at < end:
        bounds = Q(occurred_at__gte=start, occurred_at__lte=cursor.occurred_at) & (
            Q(occurred_at__lt=cursor.occurred_at) | Q(id__lt=cursor.id)
        )
    elif direction == "newer" and cursor.occurred_at >= start:
        bounds = Q(occurred_at__gte=cursor.occurred_at, occurred_at__lt=end) & (
            Q(occurred_at__gt=cursor.occurred_at) | Q(id__gt=cursor.id)
        )
    pages = [
        list(part.filter(bounds).values(*REPORT_COLUMNS).order_by(*ordering)[: size + 1])
        for part in parts
    ]
    fetched: list[dict] = []
    for row in heapq.merge(*pages, key=_position, reverse=not ascending):
        if fetched and fetched[-1]["id"] == row["id"]:
            continue  # the same row from another part: equal positions come together
        fetched.append(row)
        if len(fetched) > size:
            break
    more = len(fetched) > size
    rows = fetched[:size]
    if ascending:
        rows.reverse()
    if not rows:
        return ReportPage([], None, None, True, True)
    first_row, last_row = rows[0], rows[-1]
    has_newer = {"first": False, "last": more, "older": True, "newer": more}[direction]
    has_older = {"first": more, "last": False, "older": more, "newer": True}[direction]
    return ReportPage(
        rows=rows,
        newer=Cursor(first_row["occurred_at"], first_row["id"]) if has_newer else None,
        older=Cursor(last_row["occurred_at"], last_row["id"]) if has_older else None,
        is_first=not has_newer,
        is_last=not has_older,
    )


def _position(row: dict) -> tuple[datetime, int]:
    return row["occurred_at"], row["id"]


# Freezing a read at a checkpoint: see covered_by. Fixed table and column names only.
# PostgreSQL: the ids of the events past their chain's position, each (chain, seq) looked
# up on its own behind OFFSET 0. unnest(ARRAY(...)) rather than generate_series(...)
# itself: the planner guesses 10 rows for it instead of 1,000 a chain.
_PAST_IDS = (
    'SELECT x."id" FROM "{c}" c CROSS JOIN LATERAL unnest(ARRAY(SELECT generate_series('
    'COALESCE((%s::jsonb ->> c."id"::text)::bigint, 0) + 1,'
    ' (SELECT MAX(m."seq") FROM "{t}" m WHERE m."chain_id" = c."id")))) s(seq)'
    ' CROSS JOIN LATERAL (SELECT x."id" FROM "{t}" x'
    ' WHERE x."chain_id" = c."id" AND x."seq" = s.seq OFFSET 0) x'
)
_PAST_POSITION = {
    # The events past their chain's position, as a list SQLite builds once per query.
    "sqlite": (
        '"{t}"."id" NOT IN (SELECT e."id" FROM "{c}" c JOIN "{t}" e ON e."chain_id" = c."id"'
        ' WHERE e."seq" > COALESCE(json_extract(%s, \'$."\' || c."id" || \'"\'), 0))'
    ),
    # An id below the smallest of theirs, or else not one of theirs.
    "postgresql": (
        '("{t}"."id" < (SELECT COALESCE(MIN(p."id"), 9223372036854775807) FROM ('  # noqa: S608  # nosec B608  (fixed names)
        + _PAST_IDS
        + ') p) OR "{t}"."id" <> ALL(ARRAY('
        + _PAST_IDS
        + ")))"
    ),
}


def covered_by(positions: dict[int, int]) -> RawSQL:
    """A filter: events at or before `positions` ({chain id: seq}) in their chains.

    The positions travel as one JSON parameter, whatever the number of chains.
    Looking each row's position up in it costs about 0.5 s a million rows on
    PostgreSQL and 2 s on SQLite (which parses the JSON for every row), so both
    forms first find, through the (chain, seq) index, the events past their
    chain's position: the few written since the checkpoint.
    - SQLite: the event is not one of them.
    - PostgreSQL: the event's id is below all of theirs, or else not one of
      theirs (only the newest rows get that far). Each chain's seqs past its
      position, up to its highest, are listed and looked up one by one: PostgreSQL
      cannot estimate how few they are, and for `NOT IN` or a join hashes the
      whole log instead (0.7 s a million rows, once for the count and once for
      the rows). The filter reads nothing of the row but its id, so a count
      under it can be answered from an index that holds the id (the report's
      (occurred_at, id) and (practice, occurred_at, id)), without the table.
    Every event has a chain (a foreign key) and ids are unique, so both say
    what the lookup says.
    """
    vendor = "postgresql" if connection.vendor == "postgresql" else "sqlite"
    sql = _PAST_POSITION[vendor].format(t=AuditEvent._meta.db_table, c=AuditChain._meta.db_table)
    document = json.dumps({str(chain_id): seq for chain_id, seq in positions.items()})
    return RawSQL(sql, [document] * sql.count("%s"), output_field=BooleanField())  # noqa: S611  # nosec B611  (fixed SQL; the positions are a parameter)


# The history of one account or one patient ("who touched this account or patient")

SUBJECT_LIMIT = 1000  # events one history page lists (and prints); the export holds all


def audit_subject_account(*, viewer: User, account_id: int) -> User | None:
    """Return the account whose history `viewer` may read, or None (not found, or not theirs).

    Platform auditors read anyone's. A compliance officer reads their own
    practice's members' and the platform's staff's (who act on the practice's
    accounts: the same accounts the report's user filter names), and of those
    only the events of their own practice (`audit_subject_parts`).
    """
    scope = audit_scope(viewer)
    accounts = User.objects.select_related("provider_profile")
    if scope is AuditScope.PRACTICE:
        accounts = accounts.filter(Q(practice_id=viewer.practice_id) | Q(practice__isnull=True))
    elif scope is not AuditScope.ALL:
        return None
    return accounts.filter(pk=account_id).first()


def audit_subject_patient(
    *, viewer: User, practice_id: int, patient_id: str
) -> AuditedPatient | None:
    """Return the practice's patient whose history `viewer` may read, or None."""
    scope = audit_scope(viewer)
    if scope is AuditScope.PRACTICE and practice_id != viewer.practice_id:
        return None
    if scope not in {AuditScope.PRACTICE, AuditScope.ALL}:
        return None
    return (
        AuditedPatient.objects.select_related("practice")
        .filter(practice_id=practice_id, patient_id=patient_id)
        .first()
    )


def audit_subject_sides(
    *,
    account: User | None = None,
    patient: AuditedPatient | None = None,
    include_actions: bool = False,
) -> list[Q]:
    """Return the conditions any of which makes an event one about `account` or `patient`.

    Events about an account are those whose account concerned is it (whoever
    acted: the owner, a colleague, a support agent, the system); with
    `include_actions`, also the events it acted in, about anyone. Each side is
    one index's range, read apart on the page (as the report's username is).
    """
    if account is not None:
        sides = [Q(account_id=account.pk)]
        if include_actions:
            sides.append(Q(actor_id=account.pk))
        return sides
    if patient is None:
        raise ValueError("an account or a patient")
    return [Q(practice_id=patient.practice_id, patient_id=patient.patient_id)]
