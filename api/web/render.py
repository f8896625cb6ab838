"""Rendering pages: the Jinja environment, the per-request context (language, user, CSRF, nav)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import AfterValidator, BeforeValidator
from sqlalchemy.orm import Session

from analyzer.sales.periods import DEFAULT_TZ
from api.core.moments import iso_only
from api.deps import SessionDep
from api.models import CallStatus, Role, User
from api.web.auth import LANG_COOKIE, csrf_for, secure_cookies, session_token, web_user
from api.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, pick_language, translate, translator

HERE = Path(__file__).resolve().parent
FLASH_COOKIE = "callqa_flash"

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                  trim_blocks=True, lstrip_blocks=True)


# The pages load nothing from elsewhere and run no inline script; heatmap cells colour themselves inline.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "media-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


# A page's filter form sends "" for "any": that is no filter, not a bad value.
def _row_id(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 2**31 - 1:
        raise ValueError("an id is a whole number from 1 to 2147483647")
    return value


QueryIdOrBlank = Annotated[int | None, BeforeValidator(_blank_is_none), AfterValidator(_row_id), Query()]
QueryStatusOrBlank = Annotated[CallStatus | None, BeforeValidator(_blank_is_none), Query()]
QueryTimeOrBlank = Annotated[datetime | None, BeforeValidator(_blank_is_none), BeforeValidator(iso_only), Query()]


class PageForbidden(Exception):
    """The signed-in user's role cannot open this page."""


NAV: dict[Role, list[tuple[str, str]]] = {
    Role.admin: [("/queue", "nav.queue"), ("/dashboard", "nav.dashboard"), ("/calls", "nav.calls"),
                 ("/scripts", "nav.scripts"), ("/upload", "nav.upload")],
    Role.head_of_sales: [("/dashboard", "nav.dashboard"), ("/calls", "nav.calls"), ("/scripts", "nav.scripts"),
                         ("/upload", "nav.upload")],
    Role.quality_controller: [("/queue", "nav.queue"), ("/calls", "nav.calls"), ("/scripts", "nav.scripts"),
                              ("/upload", "nav.upload")],
    Role.manager: [("/my", "nav.my")],
}
HOME = {Role.admin: "/dashboard", Role.head_of_sales: "/dashboard", Role.quality_controller: "/queue", Role.manager: "/my"}


def language(request: Request) -> str:
    return pick_language(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))


def page_user(request: Request, session: SessionDep) -> User:
    return web_user(session, request)


PageUser = Annotated[User, Depends(page_user)]


def require_role(user: User, *roles: Role) -> None:
    if user.role not in roles:
        raise PageForbidden()


def fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def fmt_time(seconds: float | None) -> str:
    return fmt_duration(seconds)


DISPLAY_TZ = ZoneInfo(DEFAULT_TZ)


def fmt_dt(value: Any) -> str:
    """A moment as the department's clock shows it (Moscow time, as the CRM periods count)."""
    return "—" if value is None else value.astimezone(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M")


_LEARNED = re.compile(r"^(?P<base>.+)\+learned\.(?P<n>\d+)$")


def fmt_version(value: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A script version as a reader sees it: a version learned from the reviews (``1.0+learned.2``,
    the API's name) in words of the reader's language."""
    m = _LEARNED.match(value)
    return value if m is None else translate("version.learned", lang, base=m["base"], n=m["n"])


env.filters.update(score=fmt_score, share=fmt_share, duration=fmt_duration, dt=fmt_dt, ts=fmt_time, version=fmt_version)


def url_with(request: Request, **params: Any) -> str:
    query = dict(request.query_params)
    for k, v in params.items():
        if v is None:
            query.pop(k, None)
        else:
            query[k] = str(v)
    return request.url.path + ("?" + urlencode(query) if query else "")


def render(request: Request, template: str, context: dict[str, Any], *, user: User | None = None,
           status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    lang = language(request)
    token = session_token(request)
    flash = request.cookies.get(FLASH_COOKIE)
    ctx = {
        "request": request, "lang": lang, "t": translator(lang), "user": user,
        "nav": NAV.get(user.role, []) if user else [], "csrf": csrf_for(token) if token and user else "",
        "other_lang": url_with(request, lang=LANGUAGES[1 - LANGUAGES.index(lang)]),
        "flash": unquote(flash) if flash else None, "path": request.url.path, "Role": Role, **context,
    }
    response = HTMLResponse(env.get_template(template).render(ctx), status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    query_lang = request.query_params.get("lang")
    if query_lang in LANGUAGES and query_lang != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, query_lang, max_age=365 * 86400, path="/", samesite="strict",
                            secure=secure_cookies(request))
    response.headers.update(SECURITY_HEADERS)
    response.headers.update(headers or {})
    return response


def redirect(request: Request, url: str, *, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, quote(flash), max_age=60, path="/", httponly=True, samesite="strict",
                            secure=secure_cookies(request))
    return response


def t_for(request: Request) -> Any:
    return translator(language(request))


def session_of(request: Request) -> Session:
    return request.app.state.db.sessions()
