"""What a user may see and change: one :class:`Scope` per request, decided here and nowhere else.

Every query, list, export, audit page, re-score and example of the service goes through a scope:

============================  ==========================  =====================================
role                          sees (calls, managers,      may change
                              reviews, disputes, KPIs)
============================  ==========================  =====================================
admin                         everything                  everything
quality controller            every team                  reviews, disputes, retries (any team)
head of sales                 the teams they head         managers, uploads, CRM rows and
                              (nothing when they head     re-scores of those teams only
                              none)
manager                       own calls                   disputes of own calls
the system (CLI, worker,      everything                  everything
PBX webhook secret)
============================  ==========================  =====================================

What a user may not see does not exist for them: a call, manager, team or dispute outside the
scope is "not found" (404), exactly as a missing one, so ids cannot be probed. The script library
is the company's: everyone reads it (managers get feedback against it).

A scope is a frozen value: the ids of the managers and teams it covers (``None``: all of them).
It is read from the database once per request, so a change of team or manager counts at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Select, false, select, true
from sqlalchemy.orm import Session

from api.core.errors import Forbidden, NotFound
from api.models import Call, Manager, Role, Team

_Select = TypeVar("_Select", bound=Select)  # type: ignore[type-arg]  # any Select[...] of a query over calls


class Someone(Protocol):
    """A signed-in user as the scope needs them: a row of ``users`` or anything with its id and role."""

    @property
    def id(self) -> int: ...

    @property
    def role(self) -> Role: ...


@dataclass(frozen=True, slots=True)
class Scope:
    """The managers and teams a user may see, and what they may change among them."""

    user_id: int | None
    role: Role | None
    """None: the system itself (the CLI, a worker, the PBX webhook with its secret)."""
    manager_ids: frozenset[int] | None
    """Managers whose calls, reviews, disputes and KPIs may be read; None: every manager, and calls with none."""
    team_ids: frozenset[int] | None
    """Teams that may be named (a filter, a KPI row); None: every team."""

    @classmethod
    def system(cls) -> Scope:
        return cls(user_id=None, role=None, manager_ids=None, team_ids=None)

    @property
    def everything(self) -> bool:
        return self.manager_ids is None

    # -- reading ----------------------------------------------------------------------------------

    def sees_manager(self, manager_id: int | None) -> bool:
        return self.manager_ids is None or (manager_id is not None and manager_id in self.manager_ids)

    def sees_team(self, team_id: int | None) -> bool:
        return self.team_ids is None or (team_id is not None and team_id in self.team_ids)

    def managers(self, column: Any = Manager.id) -> ColumnElement[bool]:
        """A condition on a column holding a manager id (``Call.manager_id``, ``Deal.manager_id``)."""
        if self.manager_ids is None:
            return true()
        if not self.manager_ids:
            return false()
        return column.in_(sorted(self.manager_ids))  # type: ignore[no-any-return]

    def teams(self, column: Any = Team.id) -> ColumnElement[bool]:
        if self.team_ids is None:
            return true()
        if not self.team_ids:
            return false()
        return column.in_(sorted(self.team_ids))  # type: ignore[no-any-return]

    def calls(self, query: _Select) -> _Select:
        """``query`` (over ``calls``) narrowed to the calls this scope may read."""
        return query if self.manager_ids is None else query.where(self.managers(Call.manager_id))

    def call(self, call_id: int, manager_id: int | None) -> None:
        """NotFound, as for a missing call, unless the call's manager is in scope."""
        if not self.sees_manager(manager_id):
            raise NotFound(f"no call {call_id}", code="call_not_found")

    def manager(self, manager_id: int, found: bool = True) -> None:
        """NotFound, as for a missing manager, unless the manager exists and is in scope."""
        if not found or not self.sees_manager(manager_id):
            raise NotFound(f"no manager {manager_id}", code="manager_not_found")

    def team(self, team_id: int, found: bool = True) -> None:
        if not found or not self.sees_team(team_id):
            raise NotFound(f"no team {team_id}", code="team_not_found")

    # -- changing ---------------------------------------------------------------------------------

    @property
    def manages_all(self) -> bool:
        """May create and change managers, uploads and CRM rows of every team (admins and the system)."""
        return self.role in (None, Role.admin)

    def manages_team(self, team_id: int | None) -> bool:
        """May put a manager into ``team_id`` or change one there."""
        if self.manages_all:
            return True
        return self.role == Role.head_of_sales and team_id is not None and self.team_ids is not None \
            and team_id in self.team_ids

    def require_team(self, team_id: int | None) -> None:
        """Forbidden unless this user may put managers into (or take them out of) ``team_id``."""
        if not self.manages_team(team_id):
            if team_id is None:
                raise Forbidden("a head of sales keeps managers in a team they head: name one of your teams",
                                code="team_required")
            raise NotFound(f"no team {team_id}", code="team_not_found")

    @property
    def own_team(self) -> int | None:
        """The one team a head of sales heads (a new manager goes there when no team is named)."""
        if self.role == Role.head_of_sales and self.team_ids is not None and len(self.team_ids) == 1:
            return next(iter(self.team_ids))
        return None


def scope_of(session: Session, user: Someone | None) -> Scope:
    """The scope of ``user`` (None: the system)."""
    if user is None:
        return Scope.system()
    if user.role in (Role.admin, Role.quality_controller):
        return Scope(user_id=user.id, role=user.role, manager_ids=None, team_ids=None)
    if user.role == Role.manager:
        rows = session.execute(select(Manager.id, Manager.team_id).where(Manager.user_id == user.id)).all()
        scope = Scope(user_id=user.id, role=user.role, manager_ids=frozenset(m for m, _ in rows),
                      team_ids=frozenset(t for _, t in rows if t is not None))
    elif user.role == Role.head_of_sales:
        # the head's teams and their managers in one query; heading no team is seeing no one
        rows = session.execute(select(Team.id, Manager.id).outerjoin(Manager, Manager.team_id == Team.id)
                               .where(Team.head_user_id == user.id)).all()
        scope = Scope(user_id=user.id, role=user.role, manager_ids=frozenset(m for _, m in rows if m is not None),
                      team_ids=frozenset(t for t, _ in rows))
    else:  # a role added later sees nothing until it is given a line above
        scope = Scope(user_id=user.id, role=user.role, manager_ids=frozenset(), team_ids=frozenset())
    return scope
