"""Where reads go: the primary, or, for reports and exports, a streaming replica.

PostgreSQL's own streaming replication keeps a hot standby in step with the
primary (DATABASE_REPLICA_URL, docs/audit.md). The Audit Log Report, the
dashboard and the exports' rows read from it, so a multi-million-row export
never competes with sign-ins and PIN validations; everything else reads from
and writes to the primary.

Routing is explicit, not guessed. A read goes to the replica only where code
asks for it, with `.using(read_replica())` on a queryset (or `connections[...]`
for a raw cursor), in the few views that serve reports:

    events = selectors.audit_event_scope(viewer=request.user).using(read_replica())

A router that sent every read of some models to the replica would also send
reads that decide something (who is signed in, what they may see, whether a
PIN is locked) to data that may be a moment old; and a scope set around a whole
view would catch the lazily loaded user and the session too. `PrimaryRouter`
is the project's database router: it sends everything not marked so to the
primary, every write included, whatever database an object was read from, and
migrates only the primary (the standby replays the primary's schema).

A replica that is down never breaks a page: `read_replica()` answers the
primary instead and logs a warning. One that stops after that check, while the
page reads it, fails the page's query; a view that reads the replica is wrapped
in `replica_fallback`, which then runs it again on the primary (a warning in the
log, no error page). An export, whose rows must be exactly those its audit
event counts, also waits until the replica has replayed what the primary has
committed (`replica_after_writes`), and reads the primary when the replica is
too far behind; a replica lost while the export counts or before its first row
leaves it on the primary too (`audit.services.audit_log_export`).
"""

import contextvars
import logging
import time
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"  # the alias ehr/settings.py gives the replica, when there is one
POLL_SECONDS = 0.02  # between two looks at the replica's replay position


class PrimaryRouter:
    """Send every read and write to the primary unless a query names its database.

    Only `.using(read_replica())` (or a raw cursor on its alias) reaches the
    replica. Django would otherwise read an object's relations, and save it,
    through the database it was loaded from; here a row read from the replica
    and then changed is written to the primary.
    """

    def db_for_read(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replica holds the primary's very rows

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


def replica_alias() -> str | None:
    """Return the replica's alias, or None when reports read the primary."""
    alias = getattr(settings, "REPORTING_DATABASE", DEFAULT_DB_ALIAS)
    return None if alias == DEFAULT_DB_ALIAS else alias


# Inside `replica_fallback`: whether read_replica() handed out the replica, and whether
# the view runs again on the primary after the replica failed.
_handed_out: contextvars.ContextVar[bool] = contextvars.ContextVar("replica_handed_out")
_primary_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "replica_primary_only", default=False
)


def read_replica() -> str:
    """Return the alias a report reads from: the replica if it answers, else the primary.

    One `SELECT 1` on the replica tells; a replica that is stopped, unreachable
    or refusing connections costs at most its connect timeout (2 s by default)
    and a warning in the log, never the page. A replica that stops after it
    answered is the business of `replica_fallback`, around the view.
    """
    alias = replica_alias()
    if alias is None or _primary_only.get():
        return DEFAULT_DB_ALIAS
    if not _answers(alias):
        return DEFAULT_DB_ALIAS
    if _handed_out.get(None) is not None:  # inside replica_fallback
        _handed_out.set(True)
    return alias


def _answers(alias: str) -> bool:
    """Whether the replica answers `SELECT 1`; if not, drop its connection and log a warning."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        _discard(alias)
        logger.warning("read replica %r unavailable, reading from the primary: %s", alias, error)
        return False
    return True


def replica_fallback(view):
    """Run `view` again on the primary if the replica fails while the view reads it.

    `read_replica()` checks the replica once, before the view's queries; a
    standby that stops, restarts or drops its connections after that fails the
    next query with an OperationalError (or InterfaceError, on a connection
    already closed). Such an error from the replica, in a view that was handed
    the replica, is logged as a warning, the replica's connection is dropped,
    and the view runs once more with `read_replica()` answering the primary: the
    user gets the page, from the primary, instead of a server error. Any other
    error, and any error from the primary, goes on as it came.

    Only for views that write nothing before their last read of the replica
    (the report, the dashboard): the first run's writes would be made twice.
    A streamed export has already answered when its rows are read; it has its
    own rule (`audit.services.audit_log_export`).
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        alias = replica_alias()
        if alias is None or _primary_only.get():
            return view(request, *args, **kwargs)
        handed_out = _handed_out.set(False)
        try:
            return view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as error:
            if not (_handed_out.get() and replica_failed(alias)):
                raise
            _discard(alias)
            logger.warning(
                "read replica %r failed during %s, answering from the primary: %s",
                alias,
                request.path,
                error,
            )
        finally:
            _handed_out.reset(handed_out)
        primary_only = _primary_only.set(True)
        try:
            return view(request, *args, **kwargs)
        finally:
            _primary_only.reset(primary_only)

    return wrapped


def replica_failed(alias: str) -> bool:
    """Whether the last database error came from the replica's connection.

    Django flags a connection on which an error occurred that may have made it
    unusable (`errors_occurred`, what its own health check reads before it
    reuses a connection); a failed connect sets it too. It is cleared on a
    successful connect, commit or rollback.
    """
    return connections[alias].errors_occurred


@dataclass(frozen=True)
class ReadSource:
    """Where an export reads its rows, and why not the replica when one is configured."""

    alias: str
    fallback: str = ""  # why the primary although there is a replica; "" otherwise

    @property
    def name(self) -> str:
        return "primary" if self.alias == DEFAULT_DB_ALIAS else "replica"


def replica_after_writes(*, timeout: float | None = None) -> ReadSource:
    """Return the replica once it has replayed everything the primary has committed so far.

    The primary's WAL insert position is read now (every transaction already
    committed, synchronously or not, wrote its commit record before it), then the
    replica's replay position is polled until it reaches it. The primary instead,
    with the reason, when the replica does not get there within `timeout`
    seconds (DATABASE_REPLICA_WAIT_SECONDS), cannot be reached, or is not a
    standby at all. Without a replica: the primary, no reason.
    """
    alias = replica_alias()
    if alias is None:
        return ReadSource(DEFAULT_DB_ALIAS)
    if timeout is None:
        timeout = settings.DATABASE_REPLICA_WAIT_SECONDS
    target = primary_position()
    deadline = time.monotonic() + timeout
    try:
        with connections[alias].cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_last_wal_replay_lsn()::text")
                replayed = cursor.fetchone()[0]
                if replayed is None:
                    return _primary(alias, "the replica is not a standby")
                if lsn_value(replayed) >= target:
                    return ReadSource(alias)
                if time.monotonic() >= deadline:
                    behind = target - lsn_value(replayed)
                    return _primary(
                        alias, f"the replica was {behind} bytes behind after {timeout:g} s"
                    )
                time.sleep(POLL_SECONDS)
    except DatabaseError as error:
        _discard(alias)
        logger.warning("read replica %r unavailable, reading from the primary: %s", alias, error)
        return ReadSource(DEFAULT_DB_ALIAS, "the replica could not be reached")


def primary_position() -> int:
    """Return the primary's WAL position that covers every transaction committed so far.

    The insert position, not the write or flush position: under
    `synchronous_commit = off` a commit is visible before its record is written.
    An insert position at the very start of a WAL page points past the page's
    header, which no record ends at (the replica reports the end of the last
    record it replayed); that header is taken off, or an idle primary would make
    the wait run out although the replica has everything.
    """
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT lsn::text, (pg_walfile_name_offset(lsn)).file_offset,"
            " current_setting('wal_block_size')::int"
            " FROM pg_current_wal_insert_lsn() AS lsn"
        )
        lsn, segment_offset, block_size = cursor.fetchone()
    return page_start_adjusted(lsn_value(lsn), segment_offset, block_size)


# Page header sizes (PostgreSQL's SizeOfXLogLongPHD and SizeOfXLogShortPHD on 64-bit
# builds): the first page of a WAL segment has the long header, every other page the short.
LONG_PAGE_HEADER = 40
SHORT_PAGE_HEADER = 24


def page_start_adjusted(position: int, segment_offset: int, block_size: int) -> int:
    """Return `position` moved back to its page's start when it sits just past the header."""
    if segment_offset == LONG_PAGE_HEADER:
        return position - LONG_PAGE_HEADER
    if segment_offset % block_size == SHORT_PAGE_HEADER:
        return position - SHORT_PAGE_HEADER
    return position


def lsn_value(text: str) -> int:
    """Return a PostgreSQL LSN (`16/B374D848`) as the number of bytes it stands for."""
    high, _sep, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _primary(alias: str, reason: str) -> ReadSource:
    logger.warning("read replica %r not used for an export: %s", alias, reason)
    return ReadSource(DEFAULT_DB_ALIAS, reason)


def _discard(alias: str) -> None:
    """Close a connection that failed, so the next use connects afresh."""
    try:
        connections[alias].close()
    except DatabaseError:
        logger.debug("closing the failed connection to %r failed too", alias, exc_info=True)
