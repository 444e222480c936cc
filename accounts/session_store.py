"""Database sessions stored under a SHA-256 hash of their key.

Django's database backend keeps the session key, the value of the browser's
cookie, in clear in `django_session`: anyone who can read that table (a backup,
a read replica, an SQL injection) could take over every signed-in session. Here
the table holds only the hash; the cookie still carries the key, and each
request looks its session up by hashing what it presents. The hash is also
what `accounts.UserSession.key_hash` holds, so a session ended remotely is
deleted from the store at once.
"""

import hashlib

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


def stored_key(session_key: str | None) -> str | None:
    """The first 160 bits of SHA-256, in hex: 40 characters, the width of Django's column.

    The keys are 32 random characters; 160 bits keep lookups collision-free and the
    hash impossible to reverse.
    """
    return hashlib.sha256(session_key.encode()).hexdigest()[:40] if session_key else session_key


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self):
        return self._with_stored_key(super()._get_session_from_db)

    async def _aget_session_from_db(self):
        raw = self._session_key
        self._session_key = stored_key(raw)
        try:
            return await super()._aget_session_from_db()
        finally:
            self._session_key = raw if self._session_key is not None else None

    def _with_stored_key(self, read):
        raw = self._session_key
        self._session_key = stored_key(raw)
        try:
            return read()
        finally:
            # The parent clears the key when no session matches; keep that outcome.
            self._session_key = raw if self._session_key is not None else None

    def exists(self, session_key):
        return super().exists(stored_key(session_key))

    async def aexists(self, session_key):
        return await super().aexists(stored_key(session_key))

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    async def acreate_model_instance(self, data):
        instance = await super().acreate_model_instance(data)
        instance.session_key = stored_key(instance.session_key)
        return instance

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key=stored_key(session_key)).delete()

    async def adelete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        await self.model.objects.filter(session_key=stored_key(session_key)).adelete()
