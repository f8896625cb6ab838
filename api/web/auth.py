"""Signing in to the web UI: the API's own bearer token, kept in an HttpOnly, SameSite=Strict cookie.

The CSRF token of a session is an HMAC of its (secret, unreadable to scripts) bearer token, so it
needs no storage: pages put it in every POST form and in a ``<meta>`` for scripts, and a POST is
accepted only with it. Before sign-in, the login form has its own random double-submit token.

:class:`CookieBearer` lets the pages' scripts call the JSON API (``/api/v1``) with the session
cookie: a safe request (GET, HEAD) gets the cookie's token as its ``Authorization`` header; any
other needs the CSRF token in ``X-CSRF-Token`` as well, so another site can never write through it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from fastapi import Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from api.core.errors import ServiceError
from api.deps import current_user
from api.models import User

SESSION_COOKIE = "callqa_session"
LOGIN_CSRF_COOKIE = "callqa_login_csrf"
LANG_COOKIE = "callqa_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotSignedIn(Exception):
    """The page needs a signed-in user; the UI answers with a redirect to the sign-in page."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class BadCsrf(Exception):
    """A POST form without the session's CSRF token."""


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"callqa-csrf", hashlib.sha256).hexdigest()[:40]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def session_token(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def web_user(session: Session, request: Request) -> User:
    """The signed-in user of a page request, or :class:`NotSignedIn`."""
    token = session_token(request)
    if not token:
        raise NotSignedIn()
    try:
        return current_user(session, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))
    except ServiceError as e:
        raise NotSignedIn(e.code) from None


def check_csrf(request: Request, submitted: str | None) -> None:
    token = session_token(request)
    if not token or not submitted or not hmac.compare_digest(submitted, csrf_for(token)):
        raise BadCsrf()


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https"


class CookieBearer:
    """ASGI middleware: the session cookie authenticates the pages' own calls to ``/api/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/api/"):
            headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
            names = {k.lower() for k, _ in headers}
            if b"authorization" not in names and b"x-callqa-secret" not in names:
                token = _cookie(headers, SESSION_COOKIE)
                if token and self._allowed(scope["method"], headers, token):
                    headers.append((b"authorization", f"Bearer {token}".encode("latin-1")))
                    scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)

    @staticmethod
    def _allowed(method: str, headers: list[tuple[bytes, bytes]], token: str) -> bool:
        if method in SAFE_METHODS:
            return True
        sent = next((v.decode("latin-1") for k, v in headers if k.lower() == b"x-csrf-token"), "")
        return bool(sent) and hmac.compare_digest(sent, csrf_for(token))


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(v.decode("latin-1"))
            except Exception:
                continue
            if name in jar:
                return jar[name].value or None
    return None
