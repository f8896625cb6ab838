"""The short in-process memory of sign-ins and scopes (:class:`AuthCache`), and what makes it forget."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from api.core.db import PerDatabase
from api.models import ApiToken, Manager, Team, User

MISSING: Any = object()
"""What :meth:`AuthCache.get` returns for a key it does not hold (``None`` is a value: "every manager")."""


class AuthCache:
    """A few seconds' memory of which user a bearer token belongs to and which managers a user may
    see, so that a request needs no query for either (they were 3 of a request's 5-6 queries).

    How stale it can be. Every ORM write in this process to users, teams, managers or existing
    tokens, through any session on this engine, clears it when the session commits (the listeners
    below): a logout, a new role, a deactivation or a team change takes effect at once in the process
    that made it, before its response is sent. A write this process cannot see (another uvicorn
    worker, the CLI, SQL typed into the database) takes effect here once the entry is ``ttl`` seconds
    old: so a token signed out in one worker keeps working in the others for at most ``ttl`` seconds,
    and a role or team change reaches them within the same bound. A token's expiry is checked at every
    request against the expiry time read with it, so an expired token is refused on time everywhere.

    A value read from the database is stored only if nothing was cleared while it was being read
    (the generation), so a read that raced a commit cannot bring the old value back for ``ttl``.
    Bounded: past ``max_entries`` the oldest entry goes (all live ``ttl``, so it is the first to expire).
    """

    def __init__(self, *, ttl: float = 5.0, max_entries: int = 10_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        found = self._entries.get(key)
        if found is None or found[0] <= time.monotonic():
            return MISSING
        return found[1]

    def put(self, key: Hashable, value: Any, *, generation: int) -> None:
        """Remember ``value`` if the cache was not cleared since ``generation`` was read."""
        with self._lock:
            if generation != self.generation:
                return
            self._entries.pop(key, None)
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


_caches: PerDatabase[AuthCache] = PerDatabase()


def enable_auth_cache(engine: Engine, *, ttl: float = 5.0, max_entries: int = 10_000, also: Engine | None = None) -> AuthCache:
    """Sessions on ``engine`` (and on ``also``, the same database with other options) remember
    sign-ins for ``ttl`` seconds (the app does this for its database)."""
    return _caches.enable(engine, lambda: AuthCache(ttl=ttl, max_entries=max_entries), also=also)


def auth_cache(session: Session) -> AuthCache | None:
    """The cache of the session's database, or None when it has none (then every lookup is a query)."""
    return _caches.of(session)


_CHANGED = "callqa.auth_changed"


@event.listens_for(Session, "after_flush")
def _note_auth_writes(session: Session, _flush: UOWTransaction) -> None:
    # a new token changes nothing cached; a new user, team or manager can (a manager in a head's team)
    if any(isinstance(o, (User, Team, Manager)) for o in session.new) or any(
        isinstance(o, (User, Team, Manager, ApiToken)) for o in (*session.dirty, *session.deleted)
    ):
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_auth_writes(state: ORMExecuteState) -> None:
    if not state.is_select and (state.is_update or state.is_delete or state.is_insert):
        mapper = state.bind_mapper
        if mapper is not None and issubclass(mapper.class_, (User, Team, Manager, ApiToken)):
            state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _forget_after_auth_writes(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        cache = auth_cache(session)
        if cache is not None:
            cache.clear()
