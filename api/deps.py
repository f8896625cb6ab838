"""FastAPI dependencies: the database session, the current user and role checks.

The application keeps its collaborators on ``app.state`` (settings, database, store, executor),
so tests build an app per database and nothing global is created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, make_transient_to_detached

from api.auth.cache import MISSING, auth_cache
from api.core.config import ServiceSettings
from api.core.errors import Forbidden, Unauthorized
from api.core.security import token_digest
from api.core.storage import RecordingStore
from api.models import ApiToken, Role, User

_bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/token")


# The dependencies are coroutines where they need no I/O: FastAPI runs a plain function in a worker
# thread, and these hops (a thread woken, the GIL and the event loop handed over, a limiter taken)
# were about a fifth of a call detail's CPU in its profile under load.


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for the request. Making one does no I/O (it connects at its first query); closing one
    that still holds a connection does (a rollback), so that happens in a worker thread, as the
    queries did, but not one of the endpoints' threads: a session waiting for one of those to give
    back its connection, while every one of them waits for a connection, would stall the server
    until the pool's timeout. Endpoints that only read take :func:`get_read_session`, whose close
    does no I/O."""
    session = request.app.state.db.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))  # as FastAPI's own exits
        else:
            session.close()



async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """A session for an endpoint that only reads (the call list and detail): each query on its own,
    without a transaction around them. Closing it does no I/O."""
    session = request.app.state.db.read_sessions()
    try:
        yield session
    finally:
        session.close()


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_store(request: Request) -> RecordingStore:
    return request.app.state.store  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
StoreDep = Annotated[RecordingStore, Depends(get_store)]


_USER_COLUMNS = tuple(c.key for c in User.__mapper__.column_attrs)


def current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The token's user. A token that worked is remembered for a few seconds (:class:`api.auth.cache.AuthCache`
    says how stale that can be); its expiry is checked at every request."""
    remembered = _remembered_user(session, credentials)
    if remembered is not None:
        return remembered
    assert credentials is not None
    digest = token_digest(credentials.credentials)
    cache = auth_cache(session)
    generation = cache.generation if cache is not None else 0
    row = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_hash == digest)
    ).first()
    if row is None:
        raise Unauthorized("the token is not valid; sign in again", code="invalid_token")
    token, user = row
    if token.revoked_at is not None or token.expires_at <= datetime.now(UTC):
        raise Unauthorized("the token has expired or was revoked; sign in again", code="token_expired")
    if not user.active:
        raise Unauthorized("this user is deactivated", code="user_inactive")
    if cache is not None:  # only a sign-in that works is remembered
        cache.put(("token", digest), (token.expires_at, {k: getattr(user, k) for k in _USER_COLUMNS}), generation=generation)
    return user


async def _request_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """:func:`current_user` of a request: on the event loop when the token is remembered (no query),
    in a worker thread when the database must be asked."""
    user = _remembered_user(session, credentials)
    return user if user is not None else await run_in_threadpool(_looked_up_user, session, credentials)


def _looked_up_user(session: Session, credentials: HTTPAuthorizationCredentials | None) -> User:
    """:func:`current_user` from the database, its connection given back before the request waits
    for the endpoint's thread: a request never holds a connection while it waits for a thread (with
    every thread waiting for a connection, that stalled the server until the pool's timeout)."""
    user = current_user(session, credentials)
    session.commit()  # a read: nothing to write; the user stays loaded (expire_on_commit=False)
    return user


def _remembered_user(session: Session, credentials: HTTPAuthorizationCredentials | None) -> User | None:
    """The user of a remembered token (no query), or None when the database must say."""
    columns = _remembered_columns(session, credentials)
    return _attached_user(session, columns) if columns is not None else None


def _remembered_columns(session: Session, credentials: HTTPAuthorizationCredentials | None) -> dict[str, object] | None:
    """The user row of a remembered token (no query), or None when the database must say."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives one)")
    cache = auth_cache(session)
    if cache is None:
        return None
    remembered = cache.get(("token", token_digest(credentials.credentials)))
    if remembered is MISSING:
        return None
    expires_at, columns = remembered
    if expires_at <= datetime.now(UTC):
        raise Unauthorized("the token has expired or was revoked; sign in again", code="token_expired")
    return columns  # type: ignore[no-any-return]


def _attached_user(session: Session, columns: dict[str, object]) -> User:
    """The remembered user as a row of this session, as if just loaded (no query; its own object per
    request, so no two sessions share one)."""
    existing = session.identity_map.get(User.__mapper__.identity_key_from_primary_key((columns["id"],)))
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    user = User(**columns)
    make_transient_to_detached(user)
    session.add(user)
    return user


UserDep = Annotated[User, Depends(_request_user)]


@dataclass(frozen=True)
class Viewer:
    """Who asks, for an endpoint that only reads: the user's id and role, no row attached to a
    session. Making and attaching one, and closing the second session that held it (in a thread),
    were a fifth of the CPU of a call list or detail request."""

    id: int
    role: Role


async def _request_viewer(
    session: ReadSessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Viewer:
    """:func:`current_user` of a read-only request, on its own read session (one session a request):
    on the event loop when the token is remembered, in a worker thread when the database must say."""
    columns = _remembered_columns(session, credentials)
    if columns is not None:
        return Viewer(id=columns["id"], role=columns["role"])  # type: ignore[arg-type]
    user = await run_in_threadpool(_looked_up_user, session, credentials)
    return Viewer(id=user.id, role=user.role)


ViewerDep = Annotated[Viewer, Depends(_request_viewer)]


def require(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency: the current user when they have one of ``roles``, else 403."""
    allowed = frozenset(roles)

    async def check(user: UserDep) -> User:  # no I/O: on the event loop, not a worker thread
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
