"""URL converters for ids, registered once when this module is first imported.

Django's `int` converter takes any run of digits; a 25-digit id then reaches
the database, which answers with an overflow error (a 500 on PostgreSQL and
SQLite alike). Ids here are database keys: at most 18 digits, always below the
64-bit signed maximum, so anything longer is simply not a URL of this site (404).
"""

from django.urls import register_converter


class ObjectId:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class PatientId:
    """A patient's id as the audit log holds it: 1 to 64 characters (the column's length),
    none of them a control character. Django's `str` takes any, and a NUL sent to
    PostgreSQL is an error (a 500); such an address is simply not a page here (404)."""

    regex = "[^/\\x00-\\x1f\\x7f]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class StoredSessionKey:
    """A session as the Security tab names it: the 40 hex digits it is stored under."""

    regex = "[0-9a-f]{40}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ObjectId, "id")
register_converter(PatientId, "patient_id")
register_converter(StoredSessionKey, "stored_session_key")
