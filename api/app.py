"""The FastAPI application: ``create_app()`` wires settings, database, store and executor.

Errors are mapped to JSON here and only here: ``{"error": {"code", "message", "details"?}}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from analyzer.errors import AnalyzerError
from api.core.config import ServiceSettings, get_service_settings
from api.core.db import Database
from api.core.errors import ServiceError
from api.core.openapi import allowed_methods, install_openapi
from api.core.storage import RecordingStore
from api.models import Call

log = logging.getLogger("callqa.api")
JSON_LIMIT = 10 * 1024 * 1024

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
               413: "payload_too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable"}


def _error(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


class InFlightLimit:
    """ASGI middleware: at most ``limit`` requests are inside the app at once; the others wait at the
    door, holding nothing. A request's database session can hold a connection from its endpoint's
    thread until its answer is serialised, which FastAPI does in another thread from the same pool;
    with more requests inside than the database pool has connections, every thread could be waiting
    for a connection that only a waiting request would give back, and the server stalled until the
    pool's timeout. Recordings (long downloads that hold no session) and static files pass freely."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._gate: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.endswith("/recording") or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.limit)
        async with self._gate:
            await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over the limit while they stream in, before anything is buffered.

    A declared Content-Length over the limit is refused at once; a body without one (chunked) is
    counted as it arrives. Past the limit the app's read fails; whatever the app answers then (FastAPI
    turns a failed multipart read into 400 "error parsing the body") is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, *, upload_limit: int):
        self.app = app
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
        limit = self.upload_limit if ctype.startswith("multipart/") else min(JSON_LIMIT, self.upload_limit)
        declared = headers.get(b"content-length")

        def too_big() -> JSONResponse:  # made only when needed: rendering it was 5% of a small request's CPU
            return _error(413, "request_too_large", f"the request body is over the limit of {limit / 1048576:g} MB "
                          "(CALLQA_MAX_REQUEST_MB); send fewer or smaller files at a time")

        try:
            if declared is not None and int(declared) > limit:
                await too_big()(scope, receive, send)
                return
        except ValueError:
            await _error(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
            return
        seen = 0
        exceeded = started = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            if exceeded:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                if not started and message["type"] == "http.response.start":
                    started = True
                    await too_big()(scope, receive, send)
                return  # the app's own answer to the failed read is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except _TooLarge:
            if not started:
                await too_big()(scope, receive, send)


class _TooLarge(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: ServiceSettings | None = None, *, db: Database | None = None, executor: Any = None,
               clock: Callable[[], datetime] = _now) -> FastAPI:
    """The app; ``clock`` is what time it is for sign-in throttling (tests move it instead of waiting)."""
    settings = settings or get_service_settings()

    app = FastAPI(
        title="callqa",
        version="1.0",
        summary="Call quality and script compliance for sales calls",
        description="Recordings in (upload, folder import, PBX webhook); transcripts, script-stage and objection "
        "verdicts with evidence, scores, reviews and disputes out. Sign in at POST /api/v1/auth/token and send "
        "`Authorization: Bearer <token>`. Every error is `{\"error\": {\"code\", \"message\"}}`.",
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.db = db or Database(settings)
    app.state.store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    app.state.store.remove_abandoned()  # temporary files of uploads a killed server was receiving
    if executor is None:
        if settings.executor == "celery":
            from api.processing.celery_app import CeleryExecutor

            executor = CeleryExecutor(settings, db=app.state.db)
        else:
            from api.processing.local import LocalExecutor

            executor = LocalExecutor(settings)
    app.state.executor = executor

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {**exc.headers, **({"WWW-Authenticate": "Bearer"} if exc.status == 401 else {})}
        return _error(exc.status, exc.code, exc.message, exc.details, headers or None)

    @app.exception_handler(AnalyzerError)
    async def analyzer_error(_: Request, exc: AnalyzerError) -> JSONResponse:
        return _error(422, exc.code, str(exc), getattr(exc, "errors", None) or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"field": "", "message": "invalid request"}
        return _error(422, "validation_error", f"{first['field']}: {first['message']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        message = str(exc.detail)
        if exc.status_code == 405:  # every method of the path, not only those of the first route Starlette tried
            headers["Allow"] = allowed_methods(app, request.scope)
            message = f"{request.method} is not a method of {request.url.path}; it takes {headers['Allow']}"
        elif exc.status_code == 404 and message == "Not Found":
            message = f"no such address: {request.url.path} (the API is described at /docs)"
        return _error(exc.status_code, code, message, headers=headers or None)

    @app.exception_handler(DataError)
    async def unstorable_value(_: Request, exc: DataError) -> JSONResponse:
        # a value no column can hold (a NUL character, a number out of range) that validation let through
        log.warning("value refused by the database: %s", exc.orig)
        return _error(400, "invalid_value", "a value in the request cannot be stored (a NUL character, or a number "
                      "or text out of range); correct it and send again")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return _error(500, "internal_error", "an unexpected error happened; it is in the server log")

    from api.auth.routes import router as auth_router
    from api.calls.routes import router as calls_router
    from api.crm.routes import router as crm_router
    from api.kpi.routes import router as kpi_router
    from api.learning.routes import router as learning_router
    from api.reviews.routes import router as reviews_router
    from api.scripts.routes import router as scripts_router

    app.include_router(auth_router)
    app.include_router(calls_router)
    app.include_router(reviews_router)
    app.include_router(scripts_router)
    app.include_router(learning_router)
    app.include_router(crm_router)
    app.include_router(kpi_router)

    install_openapi(app, public={"/api/v1/auth/token", "/healthz"})

    from api.web import install as install_web_ui

    install_web_ui(app)  # the pages, their static files and the session cookie for the pages' API calls

    @app.get("/healthz", tags=["service"], summary="Liveness and the queue, without sign-in")
    def health() -> dict[str, Any]:
        with app.state.db.sessions() as s:
            counts = dict(s.execute(select(Call.status, func.count()).group_by(Call.status)).all())
        return {"status": "ok", "calls": {k.value if hasattr(k, "value") else k: v for k, v in counts.items()}}

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(BodyLimit, upload_limit=int(settings.max_request_mb * 1024 * 1024))
    pool = app.state.db.engine.pool
    connections = pool.size() + max(0, getattr(pool, "_max_overflow", 0))  # type: ignore[attr-defined]
    app.add_middleware(InFlightLimit, limit=max(1, connections - 2))  # two left for the health check and the executor
    return app

