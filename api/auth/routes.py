from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from api.auth import service
from api.auth.passwords import PasswordPolicy
from api.auth.schemas import (
    ManagerCreate,
    ManagerPublic,
    ManagerUpdate,
    PasswordUpdate,
    TeamCreate,
    TeamPublic,
    TeamUpdate,
    TokenPublic,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from api.auth.scope import scope_of
from api.auth.throttle import ThrottlePolicy
from api.core.ids import PathId, QueryId
from api.core.openapi import errors
from api.deps import ANY_ROLE, STAFF, SessionDep, SettingsDep, UserDep, client_address, require
from api.models import Manager, Role, Team, User

router = APIRouter(prefix="/api/v1", tags=["auth, users, teams, managers"])
_admin = Depends(require(Role.admin))


@router.post("/auth/token", response_model=TokenPublic, summary="Sign in: username and password for a bearer token",
             responses=errors(401, 422, 429))
def sign_in(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
) -> TokenPublic:
    token, row, user = service.sign_in(session, username=username, password=password, hours=settings.token_hours,
                                       address=client_address(request), now=request.app.state.clock(),
                                       throttling=ThrottlePolicy.of(settings))
    return TokenPublic(access_token=token, expires_at=row.expires_at, role=user.role)


@router.post("/auth/logout", status_code=204, summary="Revoke the token of this request")
def sign_out(
    session: SessionDep, user: UserDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
) -> None:
    if credentials is not None:
        service.sign_out(session, token=credentials.credentials)


@router.post("/auth/password", status_code=204, summary="Change your own password (every other session is signed out)",
             responses=errors(400))
def change_password(
    session: SessionDep, settings: SettingsDep, body: PasswordUpdate, user: UserDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))],
) -> None:
    assert credentials is not None  # the user was found by it
    service.change_own_password(session, user=user, current_token=credentials.credentials, current=body.current_password,
                                new=body.new_password, passwords=PasswordPolicy.of(settings))


@router.get("/auth/me", response_model=UserPublic)
def me(session: SessionDep, user: Annotated[User, Depends(require(*ANY_ROLE))]) -> dict:
    return service.user_public(session, user)


@router.get("/users", response_model=list[UserPublic], dependencies=[_admin])
def list_users(session: SessionDep) -> list[dict]:
    return [service.user_public(session, u) for u in session.scalars(select(User).order_by(User.id))]


@router.post("/users", response_model=UserPublic, status_code=201, responses=errors(400, 404, 409))
def create_user(session: SessionDep, settings: SettingsDep, body: UserCreate,
                actor: Annotated[User, Depends(require(Role.admin))]) -> dict:
    user = service.create_user(session, actor=actor, **body.model_dump(), passwords=PasswordPolicy.of(settings))
    return service.user_public(session, user)


@router.patch("/users/{user_id:int}", response_model=UserPublic, responses=errors(400, 409))
def update_user(session: SessionDep, settings: SettingsDep, user_id: PathId, body: UserUpdate,
                actor: Annotated[User, Depends(require(Role.admin))]) -> dict:
    user = service.update_user(session, actor=actor, user_id=user_id, changes=body.model_dump(exclude_unset=True),
                               passwords=PasswordPolicy.of(settings))
    return service.user_public(session, user)


@router.get("/teams", response_model=list[TeamPublic], summary="Teams the caller may see (a head of sales: the teams they head)")
def list_teams(session: SessionDep, user: Annotated[User, Depends(require(*STAFF))]) -> list[Team]:
    return list(session.scalars(select(Team).where(scope_of(session, user).teams(Team.id)).order_by(Team.name)))


@router.post("/teams", response_model=TeamPublic, status_code=201, responses=errors(400, 404, 409))
def create_team(session: SessionDep, body: TeamCreate, actor: Annotated[User, Depends(require(Role.admin))]) -> Team:
    return service.create_team(session, actor=actor, name=body.name, head_user_id=body.head_user_id)


@router.patch("/teams/{team_id:int}", response_model=TeamPublic, responses=errors(400, 409))
def update_team(session: SessionDep, team_id: PathId, body: TeamUpdate, actor: Annotated[User, Depends(require(Role.admin))]) -> Team:
    return service.update_team(session, actor=actor, team_id=team_id, changes=body.model_dump(exclude_unset=True))


@router.get("/managers", response_model=list[ManagerPublic], summary="Managers the caller may see")
def list_managers(session: SessionDep, user: UserDep, team_id: QueryId = None) -> list[Manager]:
    query = select(Manager).where(scope_of(session, user).managers(Manager.id)).order_by(Manager.name, Manager.id)
    if team_id is not None:
        query = query.where(Manager.team_id == team_id)
    return list(session.scalars(query))


@router.get("/managers/{manager_id:int}", response_model=ManagerPublic)
def get_manager(session: SessionDep, user: UserDep, manager_id: PathId) -> Manager:
    manager = session.get(Manager, manager_id)
    scope_of(session, user).manager(manager_id, found=manager is not None)
    assert manager is not None
    return manager


@router.post("/managers", response_model=ManagerPublic, status_code=201, responses=errors(400, 404, 409))
def create_manager(
    session: SessionDep, body: ManagerCreate, actor: Annotated[User, Depends(require(Role.admin, Role.head_of_sales))]
) -> Manager:
    return service.create_manager(session, actor=actor, data=body.model_dump())


@router.patch("/managers/{manager_id:int}", response_model=ManagerPublic, responses=errors(400, 409))
def update_manager(
    session: SessionDep, manager_id: PathId, body: ManagerUpdate, actor: Annotated[User, Depends(require(Role.admin, Role.head_of_sales))]
) -> Manager:
    return service.update_manager(session, actor=actor, manager_id=manager_id, changes=body.model_dump(exclude_unset=True))
