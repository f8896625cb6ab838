"""API schemas of sign-in, users, teams and managers; the tables are in :mod:`api.models`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.core.ids import Id
from api.models import Role


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    role: Role


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=200, pattern=r"^[\w.@+-]+$")
    password: str = Field(min_length=1, max_length=200, description="checked by the password policy (weak_password)")
    role: Role
    full_name: str = Field("", max_length=200)
    manager_id: Id | None = Field(None, description="link a manager login to the manager whose calls it owns")


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(None, min_length=1, max_length=200, description="signs the user out everywhere")
    role: Role | None = None
    full_name: str | None = Field(None, max_length=200)
    active: StrictBool | None = None


class PasswordUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    full_name: str
    role: Role
    active: bool
    manager_id: int | None = None


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    head_user_id: Id | None = None


class TeamUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    head_user_id: Id | None = None


class TeamPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    head_user_id: int | None


class ManagerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    external_id: str | None = Field(None, min_length=1, max_length=200, description="PBX extension or CRM user id")
    team_id: Id | None = None
    user_id: Id | None = None


class ManagerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    external_id: str | None = Field(None, min_length=1, max_length=200)
    team_id: Id | None = None
    user_id: Id | None = None
    active: StrictBool | None = None


class ManagerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    external_id: str | None
    team_id: int | None
    user_id: int | None
    active: bool
