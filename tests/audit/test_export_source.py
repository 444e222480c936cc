"""An export whose replica fails before its first row goes on from the primary, and says so.

The streams here are stand-ins (tests/audit/test_replica.py stops a real standby):
what is checked is the hand-over itself, on either database.
"""

import pytest
from django.db import DatabaseError

from audit import services

HEADER = (b"Date,Time\r\n", 0)


class StandIn:
    """What `connections[alias]` gives the hand-over: its driver's errors, and close()."""

    class Database:
        Error = DatabaseError

    closed = False

    def close(self):
        self.closed = True


@pytest.fixture
def replica(monkeypatch):
    stand_in = StandIn()
    monkeypatch.setattr(services, "connections", {"replica": stand_in})
    return stand_in


def stream(*blocks, fails_after=None):
    """Yield `blocks`; raise as a database would after `fails_after` of them."""
    for n, block in enumerate(blocks):
        if n == fails_after:
            raise DatabaseError("the standby went away")
        yield block
    if fails_after == len(blocks):
        raise DatabaseError("the standby went away")


def handed_over(replica_blocks, primary_blocks, notes):
    return services._primary_before_first_row(
        replica_blocks, "replica", lambda: primary_blocks, notes.append
    )


def test_a_failure_before_the_first_row_goes_on_from_the_primary_once_it_answers(replica):
    notes = []
    primary = stream(HEADER, (b"row 1\r\nrow 2\r\n", 2), (b"row 3\r\n", 1))
    out = handed_over(stream(HEADER, (b"never\r\n", 1), fails_after=1), primary, notes)
    assert next(out) == HEADER  # the header, from the replica
    assert notes == []
    assert next(out) == (b"row 1\r\nrow 2\r\n", 2)  # the primary's header is not sent again
    assert notes == ["the replica failed before the first row"]
    assert list(out) == [(b"row 3\r\n", 1)]
    assert replica.closed and notes == ["the replica failed before the first row"]


def test_a_failure_after_a_row_is_the_streams_failure(replica):
    notes = []
    out = handed_over(
        stream(HEADER, (b"row 1\r\n", 1), fails_after=2), stream(HEADER, (b"x\r\n", 1)), notes
    )
    assert next(out) == HEADER and next(out) == (b"row 1\r\n", 1)
    with pytest.raises(DatabaseError, match="the standby went away"):
        next(out)
    assert notes == []


def test_a_primary_that_fails_too_is_not_said_to_have_served(replica):
    notes = []
    out = handed_over(
        stream(HEADER, fails_after=1), stream(HEADER, (b"row 1\r\n", 1), fails_after=1), notes
    )
    assert next(out) == HEADER
    with pytest.raises(DatabaseError):
        next(out)
    assert notes == []


def test_a_failure_before_anything_was_sent_takes_all_from_the_primary(replica):
    notes = []
    out = handed_over(stream(HEADER, fails_after=0), stream(HEADER, (b"row 1\r\n", 1)), notes)
    assert list(out) == [HEADER, (b"row 1\r\n", 1)]
    assert notes == ["the replica failed before the first row"]
