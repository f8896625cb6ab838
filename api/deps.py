"""FastAPI dependencies: the database session, the current user and role checks.

The application keeps its collaborators on ``app.state`` (settings, database, store, executor),
so tests build an app per database and nothing global is created at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
from api.models import ApiToken, Role, User

_bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/token")


def get_session(request: Request) -> Iterator[Session]:
    """A session for the request, closed after the response."""
    with request.app.state.db.sessions() as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for an endpoint that only reads (the call list and detail): each query on its own,
    without a transaction around them."""
    with request.app.state.db.read_sessions() as session:
        yield session


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_store(request: Request) -> RecordingStore:
    return request.app.state.store  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StoreDep = Annotated[RecordingStore, Depends(get_store)]


def current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The token's user; a token signed out, expired or of a deactivated user is refused at once."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives one)")
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_digest(credentials.credentials))
    ).first()
    if row is None:
        raise Unauthorized("the token is not valid; sign in again", code="invalid_token")
    token, user = row
    if token.revoked_at is not None or token.expires_at <= datetime.now(UTC):
        raise Unauthorized("the token has expired or was revoked; sign in again", code="token_expired")
    if not user.active:
        raise Unauthorized("this user is deactivated", code="user_inactive")
    return user


def _read_user(
    session: ReadSessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """:func:`current_user` on the read session of a read-only request (one session a request)."""
    return current_user(session, credentials)


UserDep = Annotated[User, Depends(current_user)]
ViewerDep = Annotated[User, Depends(_read_user)]
"""The user of an endpoint that only reads (with :data:`ReadSessionDep`)."""


def require(*roles: Role) -> Callable[[User], User]:
    """A dependency: the current user when they have one of ``roles``, else 403."""
    allowed = frozenset(roles)

    def check(user: UserDep) -> User:
        return ensure_role(user, allowed)

    check.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the auth-matrix test
    return check


def ensure_role(user: User, allowed: Iterable[Role]) -> User:
    allowed = frozenset(allowed)
    if user.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"this needs one of the roles {names}; you are {user.role.value}")
    return user


def client_address(request: Request) -> str | None:
    """The address a request came from (behind a reverse proxy, uvicorn's ``--forwarded-allow-ips`` makes
    it the client's, from X-Forwarded-For)."""
    return request.client.host if request.client else None


ANY_ROLE = tuple(Role)
STAFF = (Role.admin, Role.head_of_sales, Role.quality_controller)
REVIEWERS = (Role.admin, Role.quality_controller)
