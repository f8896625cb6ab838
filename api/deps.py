"""FastAPI dependencies: the database session, the current user and role checks.

The application keeps its collaborators on ``app.state`` (settings, database, store, executor),
so tests build an app per database and nothing global is created at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.core.config import ServiceSettings
from api.core.errors import Forbidden, Unauthorized
from api.core.security import token_digest
from api.core.storage import RecordingStore
from api.models import ApiToken, Manager, Role, Team, User

_bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/token")


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.sessions() as session:
        yield session


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_store(request: Request) -> RecordingStore:
    return request.app.state.store


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StoreDep = Annotated[RecordingStore, Depends(get_store)]


def current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives one)")
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == token_digest(credentials.credentials))
    ).first()
    if row is None:
        raise Unauthorized("the token is not valid; sign in again", code="invalid_token")
    token, user = row
    if token.revoked_at is not None or token.expires_at <= datetime.now(UTC):
        raise Unauthorized("the token has expired or was revoked; sign in again", code="token_expired")
    if not user.active:
        raise Unauthorized("this user is deactivated", code="user_inactive")
    return user


UserDep = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> Callable[[User], User]:
    allowed = set(roles)

    def check(user: UserDep) -> User:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs one of the roles {names}; you are {user.role.value}")
        return user

    check.allowed_roles = frozenset(allowed)  # type: ignore[attr-defined]  # read by the auth-matrix test
    return check


ANY_ROLE = tuple(Role)
STAFF = (Role.admin, Role.head_of_sales, Role.quality_controller)
REVIEWERS = (Role.admin, Role.quality_controller)


def visible_manager_ids(session: Session, user: User) -> set[int] | None:
    """Managers whose calls the user may see: None means all of them.

    Admins and quality controllers see every call; a head of sales sees the teams they head (all
    teams when they head none, as in a department with one head); a manager sees only own calls.
    """
    if user.role in (Role.admin, Role.quality_controller):
        return None
    if user.role == Role.manager:
        ids = session.scalars(select(Manager.id).where(Manager.user_id == user.id)).all()
        return set(ids)
    teams = session.scalars(select(Team.id).where(Team.head_user_id == user.id)).all()
    if not teams:
        return None
    return set(session.scalars(select(Manager.id).where(Manager.team_id.in_(teams))).all())
