"""The API's routes, for the tables of tests that walk every route (who may call it, what it shows)."""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.models import Role

API = "/api/v1"


def _roles(dependant) -> set[frozenset[Role]]:
    """The role sets of every require(...) check in a dependency tree."""
    found = set()
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "allowed_roles", None)
        if roles is not None:
            found.add(roles)
        found |= _roles(dep)
    return found


def role_sets(route: APIRoute) -> set[frozenset[Role]]:
    """The role sets a route's require(...) checks allow (empty: any signed-in user)."""
    return _roles(route.dependant)


def walk(routes: list[BaseRoute]) -> list[APIRoute]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.16x keeps them as a branch)
            found.extend(walk(route.original_router.routes))
    return found


def api_routes(app) -> list[tuple[str, str, APIRoute]]:
    """(method, concrete path, route) for every API operation; path ids become 1, other parameters 'x'."""
    out = []
    for route in walk(app.routes):
        if not route.path.startswith(API):
            continue
        path = route.path_format
        for param in route.dependant.path_params:
            path = path.replace("{" + param.name + "}", "1" if param.field_info.annotation is int else "x")
        out.extend((m, path, route) for m in sorted(route.methods - {"HEAD"}))
    return out
