"""The session engine: Django's database sessions on `accounts.UserSession`, keys hashed.

Django's database backend keeps the session key, the value of the browser's
cookie, in clear: anyone who can read that table (a backup, a read replica, an
SQL injection) could take over every signed-in session. This store keeps only
`stored_key(key)` and looks each request's session up by hashing what the
cookie presents. It uses Django's documented extension point for a custom
session model (`get_model_class()`) and implements the session backend
interface (load, exists, save, delete, cycle_key) over it:

- `save` writes only the session's own data and last-seen time; who signed in
  from where is written by accounts/auth_events.py, and `expire_date` is fixed
  when the row is created, which makes SESSION_MAX_HOURS an absolute cap.
- A row ended from elsewhere (`ended_at` set) or past its expiry never loads:
  the browser arrives signed out, and `record` still tells the middleware why.
- `cycle_key` (a new key after sign-in or a password change) moves a signed-in
  session to its new key with its history and its expiry, never one that was
  ended meanwhile.
- `clear_expired` (`manage.py clearsessions`) records the end of signed-in
  sessions that reached their limit without their browser coming back.
"""

import hashlib
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.exceptions import SessionInterrupted
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from accounts.models import UserSession


def stored_key(session_key: str) -> str:
    """Return the first 160 bits of SHA-256 in hex: 40 characters, Django's column width.

    Keys are 32 random characters; 160 bits keep lookups collision-free and the
    hash impossible to reverse.
    """
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def _user_id(data: dict) -> int | None:
    try:
        return int(data[SESSION_KEY])
    except (KeyError, TypeError, ValueError):
        return None


class SessionStore(DatabaseSessionStore):
    _record: UserSession | None = None

    @classmethod
    def get_model_class(cls):
        return UserSession

    @property
    def record(self) -> UserSession | None:
        """Return the row the cookie named, loaded with the session: live, ended or expired."""
        self._get_session()  # loads once per request
        return self._record

    def load(self) -> dict:
        self._record = self.model.objects.filter(session_key=stored_key(self.session_key)).first()
        row = self._record
        if row is None or row.ended_at is not None or row.expire_date <= timezone.now():
            self._session_key = None  # as Django's store does: the next save starts a new one
            return {}
        return self.decode(row.session_data)

    def exists(self, session_key) -> bool:
        return self.model.objects.filter(session_key=stored_key(session_key)).exists()

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        now = timezone.now()
        fields = {
            "session_data": self.encode(data),
            "user_id": _user_id(data),
            "last_seen_at": now,
        }
        key = stored_key(self.session_key)
        using = router.db_for_write(self.model)
        if must_create:
            age = timedelta(seconds=self.get_session_cookie_age())
            try:
                with transaction.atomic(using=using):
                    self.model.objects.using(using).create(
                        session_key=key, created_at=now, expire_date=now + age, **fields
                    )
            except IntegrityError:
                raise CreateError from None
            return None
        live = self.model.objects.using(using).filter(session_key=key, ended_at__isnull=True)
        if not live.update(**fields):
            raise UpdateError  # ended elsewhere during this request, or gone
        return None

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key=stored_key(session_key)).delete()

    def cycle_key(self) -> None:
        """Move the session to a new key; a signed-in one keeps its sign-in time and cap.

        A signed-in session that was ended elsewhere while this request ran is
        not brought back under a new key: the request is refused instead.
        """
        loaded = self.record if self.session_key else None
        with transaction.atomic(using=router.db_for_write(self.model)):
            before = (
                self.model.objects.select_for_update()
                .filter(session_key=stored_key(self.session_key), ended_at__isnull=True)
                .first()
                if self.session_key
                else None
            )
            if loaded is not None and loaded.user_id is not None and before is None:
                raise SessionInterrupted("The session was ended while this request ran.")
            super().cycle_key()
            if before is not None and before.user_id is not None:
                self.model.objects.filter(session_key=stored_key(self.session_key)).update(
                    ip=before.ip,
                    user_agent=before.user_agent,
                    created_at=before.created_at,
                    expire_date=before.expire_date,
                )

    @classmethod
    def clear_expired(cls) -> None:
        from accounts.auth_events import sessions_clear_expired

        sessions_clear_expired()

    # The asynchronous interface runs the same code (Django's would skip the hashing).
    async def aload(self) -> dict:
        return await sync_to_async(self.load)()

    async def aexists(self, session_key) -> bool:
        return await sync_to_async(self.exists)(session_key)

    async def asave(self, must_create: bool = False) -> None:
        return await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        return await sync_to_async(self.delete)(session_key)

    async def acycle_key(self) -> None:
        return await sync_to_async(self.cycle_key)()

    @classmethod
    async def aclear_expired(cls) -> None:
        return await sync_to_async(cls.clear_expired)()
