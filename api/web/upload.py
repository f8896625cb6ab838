"""The upload page: recordings dragged in with their metadata; the page's script sends each file to
``POST /api/v1/calls`` (with upload progress) and polls ``GET /api/v1/calls/{id}`` until it is done."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.auth.scope import scope_of
from api.deps import SessionDep
from api.models import Role
from api.web.pages import managers_for
from api.web.render import PageUser, render, require_role

router = APIRouter(include_in_schema=False)
UPLOADERS = (Role.admin, Role.head_of_sales, Role.quality_controller)


@router.get("/upload")
def upload_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    require_role(user, *UPLOADERS)
    managers = managers_for(session, scope_of(session, user))
    return render(request, "upload.html", {"managers": managers, "max_mb": request.app.state.settings.max_upload_mb}, user=user)
