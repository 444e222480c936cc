"""Prepared statements for the report's own queries on PostgreSQL.

Django's psycopg cursors spell every value into the SQL text, so the server
parses and plans each query afresh. On the monthly partitioned event log a
report query over two years is planned over every month's partition and its
indexes: planning took most of the time of each of the report's queries
(a bounded count: 8-15 ms planned each time, 2-4 ms prepared; 10,000 events).

Inside `bound_parameters(alias)` the connection's cursors send values as bind
parameters instead (psycopg's server-side binding), so psycopg prepares a
statement it has run five times on the connection (`prepare_threshold`,
settings: DB_PREPARED_STATEMENTS) and the server reuses its plan, pruned to the
months asked for at run time. Only the report's event queries run so: their
SQL is the ORM's plain SELECT, whose parameters the server types from the
columns they are compared with. Elsewhere Django's default stays, because an
untyped parameter (a `Value` in a SELECT list) cannot be bound server-side.
"""

import re
from contextlib import contextmanager

from django.db import connections
from django.db.models import CharField, Expression


@contextmanager
def bound_parameters(alias: str):
    """Send the queries made on `alias` inside the block with bind parameters (PostgreSQL)."""
    db = connections[alias]
    if db.vendor != "postgresql":
        yield
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    db.ensure_connection()
    connection = db.connection
    before = connection.cursor_factory
    connection.cursor_factory = ServerBindingCursor
    try:
        yield
    finally:
        connection.cursor_factory = before


# A code of a closed vocabulary: letters, digits, dots, underscores, spaces. No quote or
# backslash can be in one, so it is written between quotes as it is.
_CODE = re.compile(r"[A-Za-z0-9_. ]{1,64}")


class Code(Expression):
    """A code of a closed set (an event's kind or type), written into the SQL text.

    A prepared statement keeps one generic plan for every value of its parameters,
    and PostgreSQL plans `kind = $1` for an average kind. A kind no month holds
    (break-glass access, in most logs) is then read as if it were common: at
    5,000,000 events, in a month the range covers in part, the generic plan read
    37,709 events through the time index to find none, where the kind's own index
    reads 3 pages. With the code in the text each code has a statement of its own,
    planned from that code's statistics. Only for codes the application defines,
    never typed text: a value outside the vocabulary is refused.
    """

    output_field = CharField()

    def __init__(self, value: str):
        if not isinstance(value, str) or not _CODE.fullmatch(value):
            raise ValueError(f"not a code: {value!r}")
        super().__init__()
        self.value = value

    def __repr__(self) -> str:
        return f"Code({self.value!r})"

    def as_sql(self, compiler, connection):
        return f"'{self.value}'", []
