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

from contextlib import contextmanager

from django.db import connections


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
