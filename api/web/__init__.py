"""The web UI, served by the same FastAPI app: server-rendered pages (Jinja2) with a little
JavaScript, in Russian by default and English with ``?lang=en`` (remembered in a cookie).

``install(app)`` adds the pages, the static files and the cookie bridge that lets the pages' scripts
call the JSON API with the signed-in session (see :mod:`api.web.auth`).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.web.render import HERE, PageForbidden, render, t_for


def install(app: FastAPI) -> None:
    from api.web import dashboard, editor, pages, upload
    from api.web.auth import BadCsrf, CookieBearer, NotSignedIn

    app.include_router(pages.router)
    app.include_router(dashboard.router)
    app.include_router(editor.router)
    app.include_router(upload.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(CookieBearer)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        reason = "&reason=expired" if exc.reason else ""
        response = RedirectResponse(f"/login?next={quote(target)}{reason}", status_code=303)
        if exc.reason:
            response.delete_cookie("callqa_session", path="/")
        return response

    @app.exception_handler(BadCsrf)
    async def bad_csrf(request: Request, exc: BadCsrf) -> HTMLResponse:
        return render(request, "error.html", {"message": t_for(request)("error.csrf")}, status=403)

    @app.exception_handler(PageForbidden)
    async def forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
        return render(request, "error.html", {"message": t_for(request)("error.forbidden")}, status=403)
