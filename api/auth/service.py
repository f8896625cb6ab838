"""Users, tokens, teams and managers: signing in and out, and the changes an admin or head of sales makes."""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.audit import audit
from api.auth import throttle
from api.auth.passwords import PasswordPolicy, check_password
from api.auth.scope import Scope, scope_of
from api.auth.throttle import ThrottlePolicy
from api.core.errors import BadRequest, Conflict, NotFound, TooManyRequests, Unauthorized
from api.core.security import hash_password, new_token, token_digest, verify_password
from api.models import ApiToken, Manager, Role, Team, User


@cache
def _no_one() -> str:
    """A password hash no one has: an unknown username is checked against it, so that signing in as one
    costs the same as a wrong password of a real user (the time of the answer says nothing)."""
    return hash_password(secrets.token_urlsafe(24))


def sign_in(
    session: Session, *, username: str, password: str, hours: float, address: str | None = None,
    now: datetime | None = None, throttling: ThrottlePolicy | None = ThrottlePolicy(),
) -> tuple[str, ApiToken, User]:
    """A new token for a username and password. Failed sign-ins are counted per username and per
    ``address`` (:mod:`api.auth.throttle`); a locked one is refused (429) before any hashing."""
    now = now or datetime.now(UTC)
    keys = throttle.keys(username, address)
    if throttling is not None:
        until = throttle.locked_until(session, keys, now=now)
        if until is not None:
            session.rollback()
            seconds = max(1, math.ceil((until - now).total_seconds()))
            raise TooManyRequests(f"too many failed sign-ins for this username or from this address; try again in "
                                  f"{math.ceil(seconds / 60)} min", code="too_many_sign_ins",
                                  headers={"Retry-After": str(seconds)})
    user = session.scalar(select(User).where(User.username == username))
    right = verify_password(password, user.password_hash if user is not None else _no_one())
    if user is None or not right or not user.active:
        if throttling is not None:
            throttle.record_failure(session, keys, policy=throttling, now=now)
            session.commit()
        raise Unauthorized("wrong username or password", code="bad_credentials")
    if throttling is not None:
        throttle.forget(session, keys[0])
    token = new_token()
    row = ApiToken(user_id=user.id, token_hash=token_digest(token), expires_at=now + timedelta(hours=hours))
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


def _manager_external_id_free(session: Session, scope: Scope, external_id: str | None, *, manager_id: int | None = None) -> None:
    if external_id is None:
        return
    other = session.scalar(select(Manager.id).where(Manager.external_id == external_id))
    if other is not None and other != manager_id:
        if not scope.sees_manager(other):  # taken in another team: which manager is not theirs to know
            raise Conflict(f"another manager already has the external id {external_id!r}", code="manager_external_id_taken")
        raise Conflict(f"manager {other} already has the external id {external_id!r}", code="manager_external_id_taken",
                       details={"manager_id": other})


def _login_free(session: Session, scope: Scope, user_id: int | None, *, manager_id: int | None = None) -> None:
    if user_id is None:
        return
    other = session.scalar(select(Manager.id).where(Manager.user_id == user_id))
    if other is not None and other != manager_id:
        if not scope.sees_manager(other):
            raise Conflict(f"user {user_id} is already the login of another manager", code="login_taken")
        raise Conflict(f"user {user_id} is already the login of manager {other}", code="login_taken",
                       details={"manager_id": other})


def create_user(
    session: Session, *, actor: User | None, username: str, password: str, role: Role, full_name: str = "",
    manager_id: int | None = None, passwords: PasswordPolicy = PasswordPolicy(),
) -> User:
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"a user named {username!r} already exists", code="username_taken")
    check_password(password, username=username, full_name=full_name, policy=passwords)
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


def update_user(
    session: Session, *, actor: User, user_id: int, changes: dict[str, Any], passwords: PasswordPolicy = PasswordPolicy(),
) -> User:
    """Change a user's role, name, activity or password. Decided before anything changes: an
    administrator cannot demote or deactivate themselves (so one always remains). A new password signs
    the user out everywhere (every token revoked) and forgets the username's failed sign-ins."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}", code="user_not_found")
    changes = {k: v for k, v in changes.items() if v is not None}
    role, active = changes.get("role", user.role), changes.get("active", user.active)
    if user.id == actor.id and (role != Role.admin or not active):  # so an administrator always remains
        raise BadRequest("an administrator cannot demote or deactivate themselves; another administrator can",
                         code="self_demotion")
    password = changes.pop("password", None)
    if password is not None:
        check_password(password, username=user.username, full_name=changes.get("full_name", user.full_name), policy=passwords)
    before = {k: (v.value if isinstance(v, Role) else v) for k, v in
              {"role": user.role, "active": user.active, "full_name": user.full_name}.items() if k in changes}
    for key, value in changes.items():
        setattr(user, key, value)
    after = {k: (v.value if isinstance(v, Role) else v) for k, v in changes.items()}
    if password is not None:
        user.password_hash = hash_password(password)
        _sign_out_everywhere(session, user.id)
        throttle.forget(session, throttle.keys(user.username, None)[0])
        before["password"], after["password"] = "***", "changed; every session signed out"
    audit(session, user=actor, action="user.update", entity="user", entity_id=user.id, before=before, after=after)
    _commit(session, "user")
    return user


def change_own_password(session: Session, *, user: User, current_token: str, current: str, new: str,
                        passwords: PasswordPolicy = PasswordPolicy()) -> None:
    """A user changes their own password: the current one is asked for; every other session is signed out."""
    if not verify_password(current, user.password_hash):
        raise BadRequest("the current password is wrong", code="wrong_password")
    if new == current:
        raise BadRequest("the new password is the current one", code="same_password")
    check_password(new, username=user.username, full_name=user.full_name, policy=passwords)
    user.password_hash = hash_password(new)
    _sign_out_everywhere(session, user.id, keep=token_digest(current_token))
    audit(session, user=user, action="user.password", entity="user", entity_id=user.id,
          after={"password": "changed; every other session signed out"})
    _commit(session, "user")


def _sign_out_everywhere(session: Session, user_id: int, *, keep: str | None = None) -> None:
    query = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if keep is not None:
        query = query.where(ApiToken.token_hash != keep)
    session.execute(query.values(revoked_at=datetime.now(UTC)).execution_options(synchronize_session=False))


def ensure_admin(session: Session, *, username: str, password: str | None) -> str | None:
    """Create the first administrator when there are no users; returns a generated password to show once."""
    if session.scalar(select(User.id).limit(1)) is not None:
        return None
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        create_user(session, actor=None, username=username, password=password, role=Role.admin, full_name="Administrator")
    except BadRequest as e:
        raise BadRequest(f"CALLQA_ADMIN_PASSWORD: {e.message}", code=e.code) from None
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
    """A new manager; a head of sales adds one to a team they head (theirs when they head one and name none)."""
    scope = scope_of(session, actor)
    if data.get("team_id") is None and not scope.manages_all and scope.own_team is not None:
        data = {**data, "team_id": scope.own_team}
    scope.require_team(data.get("team_id"))
    _check_refs(session, data)
    _manager_external_id_free(session, scope, data.get("external_id"))
    _login_free(session, scope, data.get("user_id"))
    manager = Manager(**data)
    session.add(manager)
    _commit(session, "a manager with this external id or login", code="manager_taken", flush=True)
    audit(session, user=actor, action="manager.create", entity="manager", entity_id=manager.id, after=data)
    _commit(session, "a manager with this external id or login", code="manager_taken")
    return manager


def update_manager(session: Session, *, actor: User, manager_id: int, changes: dict[str, Any]) -> Manager:
    """Rename, move or re-link a manager: a head of sales only one of their teams, and only into another of them."""
    manager = session.get(Manager, manager_id)
    scope = scope_of(session, actor)
    scope.manager(manager_id, found=manager is not None)
    assert manager is not None
    scope.require_team(manager.team_id)
    changes = {k: v for k, v in changes.items() if v is not None or k in ("external_id", "team_id", "user_id")}
    if "team_id" in changes:
        scope.require_team(changes["team_id"])
    _check_refs(session, changes)
    _manager_external_id_free(session, scope, changes.get("external_id"), manager_id=manager_id)
    _login_free(session, scope, changes.get("user_id"), manager_id=manager_id)
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
