"""Users, tokens, teams and managers; the short in-process memory of sign-ins (:class:`AuthCache`)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from api.core.audit import audit
from api.core.db import PerDatabase
from api.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from api.core.security import hash_password, new_token, token_digest, verify_password
from api.models import ApiToken, Manager, Role, Team, User

# -- the sign-in cache ------------------------------------------------------------------------

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


def sign_in(session: Session, *, username: str, password: str, hours: float) -> tuple[str, ApiToken, User]:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not verify_password(password, user.password_hash) or not user.active:
        raise Unauthorized("wrong username or password", code="bad_credentials")
    token = new_token()
    row = ApiToken(user_id=user.id, token_hash=token_digest(token), expires_at=datetime.now(UTC) + timedelta(hours=hours))
    session.add(row)
    session.commit()
    return token, row, user


def sign_out(session: Session, *, token: str) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.commit()


def manager_of(session: Session, user: User) -> Manager | None:
    return session.scalar(select(Manager).where(Manager.user_id == user.id))


def user_public(session: Session, user: User) -> dict[str, Any]:
    m = manager_of(session, user)
    return {
        "id": user.id,
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "active": user.active,
        "manager_id": m.id if m else None,
    }


def _commit(session: Session, what: str, *, code: str = "conflict", flush: bool = False) -> None:
    """Commit (or only flush), turning a unique-key clash into a 409 with ``code``.

    The explicit checks before a write give the precise message; this is the guard for a row
    written by someone else in between.
    """
    try:
        session.flush() if flush else session.commit()
    except IntegrityError as e:
        session.rollback()
        raise Conflict(f"{what} already exists or refers to something that does not", code=code) from e


def _team_name_free(session: Session, name: str, *, team_id: int | None = None) -> None:
    other = session.scalar(select(Team.id).where(Team.name == name))
    if other is not None and other != team_id:
        raise Conflict(f"a team named {name!r} already exists (team {other})", code="team_name_taken",
                       details={"team_id": other})


def _manager_external_id_free(session: Session, external_id: str | None, *, manager_id: int | None = None) -> None:
    if external_id is None:
        return
    other = session.scalar(select(Manager.id).where(Manager.external_id == external_id))
    if other is not None and other != manager_id:
        raise Conflict(f"manager {other} already has the external id {external_id!r}", code="manager_external_id_taken",
                       details={"manager_id": other})


def _login_free(session: Session, user_id: int | None, *, manager_id: int | None = None) -> None:
    if user_id is None:
        return
    other = session.scalar(select(Manager.id).where(Manager.user_id == user_id))
    if other is not None and other != manager_id:
        raise Conflict(f"user {user_id} is already the login of manager {other}", code="login_taken",
                       details={"manager_id": other})


def create_user(
    session: Session, *, actor: User | None, username: str, password: str, role: Role, full_name: str = "", manager_id: int | None = None
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user named {username!r} already exists", code="username_taken")
    user = User(username=username, password_hash=hash_password(password), role=role, full_name=full_name)
    session.add(user)
    _commit(session, f"a user named {username!r}", code="username_taken", flush=True)
    if manager_id is not None:
        manager = session.get(Manager, manager_id)
        if manager is None:
            raise NotFound(f"no manager {manager_id}", code="manager_not_found")
        if manager.user_id is not None:
            raise Conflict(f"manager {manager_id} already has a login", code="manager_has_login")
        manager.user_id = user.id
    audit(session, user=actor, action="user.create", entity="user", entity_id=user.id, after={"username": username, "role": role.value})
    _commit(session, f"user {username!r}")
    return user


def update_user(session: Session, *, actor: User, user_id: int, changes: dict[str, Any]) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", code="user_not_found")
    before = {"role": user.role.value, "active": user.active, "full_name": user.full_name}
    if "password" in changes and changes["password"] is not None:
        user.password_hash = hash_password(changes.pop("password"))
        before["password"] = "***"
    changes.pop("password", None)
    for key, value in changes.items():
        if value is not None:
            setattr(user, key, value)
    if user.id == actor.id and (not user.active or user.role != Role.admin) and actor.role == Role.admin:
        raise BadRequest("an administrator cannot demote or deactivate themselves", code="self_demotion")
    audit(session, user=actor, action="user.update", entity="user", entity_id=user.id, before=before,
          after={k: (v.value if isinstance(v, Role) else v) for k, v in changes.items() if v is not None})
    _commit(session, "user")
    return user


def ensure_admin(session: Session, *, username: str, password: str | None) -> str | None:
    """Create the first administrator when there are no users; returns a generated password to show once."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    create_user(session, actor=None, username=username, password=password, role=Role.admin, full_name="Administrator")
    return password if generated else None


def create_team(session: Session, *, actor: User, name: str, head_user_id: int | None) -> Team:
    _check_head(session, head_user_id)
    _team_name_free(session, name)
    team = Team(name=name, head_user_id=head_user_id)
    session.add(team)
    _commit(session, f"a team named {name!r}", code="team_name_taken", flush=True)
    audit(session, user=actor, action="team.create", entity="team", entity_id=team.id, after={"name": name, "head_user_id": head_user_id})
    _commit(session, f"a team named {name!r}", code="team_name_taken")
    return team


def update_team(session: Session, *, actor: User, team_id: int, changes: dict[str, Any]) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team {team_id}", code="team_not_found")
    changes = {k: v for k, v in changes.items() if v is not None or k == "head_user_id"}  # null name: unchanged
    if "head_user_id" in changes:
        _check_head(session, changes["head_user_id"])
    if changes.get("name") is not None:
        _team_name_free(session, changes["name"], team_id=team_id)
    before = {"name": team.name, "head_user_id": team.head_user_id}
    for key, value in changes.items():
        setattr(team, key, value)
    audit(session, user=actor, action="team.update", entity="team", entity_id=team.id, before=before, after=changes)
    _commit(session, f"a team named {team.name!r}", code="team_name_taken")
    return team


def _check_head(session: Session, user_id: int | None) -> None:
    if user_id is None:
        return
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", code="user_not_found")
    if user.role not in (Role.head_of_sales, Role.admin):
        raise BadRequest(f"user {user_id} is a {user.role.value}; a team is headed by a head_of_sales", code="not_a_head")


def create_manager(session: Session, *, actor: User, data: dict[str, Any]) -> Manager:
    _check_refs(session, data)
    _manager_external_id_free(session, data.get("external_id"))
    _login_free(session, data.get("user_id"))
    manager = Manager(**data)
    session.add(manager)
    _commit(session, "a manager with this external id or login", code="manager_taken", flush=True)
    audit(session, user=actor, action="manager.create", entity="manager", entity_id=manager.id, after=data)
    _commit(session, "a manager with this external id or login", code="manager_taken")
    return manager


def update_manager(session: Session, *, actor: User, manager_id: int, changes: dict[str, Any]) -> Manager:
    manager = session.get(Manager, manager_id)
    if manager is None:
        raise NotFound(f"no manager {manager_id}", code="manager_not_found")
    changes = {k: v for k, v in changes.items() if v is not None or k in ("external_id", "team_id", "user_id")}
    _check_refs(session, changes)
    _manager_external_id_free(session, changes.get("external_id"), manager_id=manager_id)
    _login_free(session, changes.get("user_id"), manager_id=manager_id)
    before = {k: getattr(manager, k) for k in changes}
    for key, value in changes.items():
        setattr(manager, key, value)
    audit(session, user=actor, action="manager.update", entity="manager", entity_id=manager.id, before=before, after=changes)
    _commit(session, "a manager with this external id or login", code="manager_taken")
    return manager


def _check_refs(session: Session, data: dict[str, Any]) -> None:
    if data.get("team_id") is not None and session.get(Team, data["team_id"]) is None:
        raise NotFound(f"no team {data['team_id']}", code="team_not_found")
    if data.get("user_id") is not None:
        user = session.get(User, data["user_id"])
        if user is None:
            raise NotFound(f"no user {data['user_id']}", code="user_not_found")
        if user.role != Role.manager:
            raise BadRequest(f"user {user.id} is a {user.role.value}; only a manager login can own calls", code="not_a_manager")


def manager_by_external_id(session: Session, external_id: str, *, create: bool = True) -> Manager | None:
    """The manager a PBX or import names by extension/CRM id; created on first sight."""
    manager = session.scalar(select(Manager).where(Manager.external_id == external_id))
    if manager is None and create:
        manager = Manager(name=external_id, external_id=external_id)
        session.add(manager)
        session.flush()
    return manager
