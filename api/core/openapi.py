"""The OpenAPI description says what the API answers: every error status a route can give, with the
error body, and form fields as a form can send them.

FastAPI documents a route's success and its own ``422``; the rest is added here, in one pass over
the routes when the app is built:

- every error answer has the body ``{"error": {"code", "message", "details"?}}`` (:class:`ErrorBody`);
- ``401`` for every route behind sign-in, ``403`` where a role is required, ``404`` where the path names
  an object, ``400`` and ``413`` where a body is sent, ``422`` where anything is validated; a route
  names the rest itself (``responses=errors(400, 409)``);
- a ``405`` lists in ``Allow`` the methods of every route of the path (Starlette names only the first
  route it tried), see :func:`allowed_methods`.

A multipart or urlencoded field cannot be null (a form sends text), so the "or null" FastAPI writes
for an optional form field is left out of those bodies.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field
from starlette.routing import Match
from starlette.types import Scope

_DESCRIPTIONS = {
    400: "the request cannot be done as asked (e.g. `invalid_value`: a text with a NUL character); `message` says "
         "why and what to do",
    401: "no valid token: sign in (`unauthorized`, `invalid_token`, `token_expired`, `user_inactive`)",
    403: "your role does not allow this (`forbidden`)",
    404: "no such object, or one you may not see (`*_not_found`)",
    409: "the state does not allow it, or it exists already (`*_taken`, `*_exists`, `call_not_done`, ...)",
    413: "the body is over the limit (`request_too_large`: CALLQA_MAX_REQUEST_MB)",
    415: "the body's Content-Type is not one this route takes (`unsupported_media_type`)",
    416: "the range is outside the recording (`range_not_satisfiable`)",
    422: "a parameter or field is not valid (`validation_error`: `details` names each field), or the content "
         "cannot be used (`recording_unusable`, `crm_format_error`)",
    429: "too many attempts (`too_many_sign_ins`): wait the seconds in Retry-After",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    416: {"Content-Range": {"description": "bytes */<size of the recording>", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds until the next attempt may be made", "schema": {"type": "string"}}},
}


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, for programs: e.g. call_not_found")
    message: str = Field(description="for people: what was wrong and what to do")
    details: Any = Field(None, description="e.g. the fields a validation error names")


class ErrorBody(BaseModel):
    error: ErrorDetail


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the error statuses a route gives besides those inferred (see the module)."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def _inferred(route: APIRoute) -> set[int]:
    dependant = route.dependant
    codes = {401}  # sign-in itself names its own answers
    if _requires_role(dependant):
        codes.add(403)
    if dependant.path_params:
        codes.add(404)
    if route.body_field is not None or {"POST", "PATCH"} & (route.methods or set()):
        codes.add(413)
    if route.body_field is not None:
        codes.add(400)  # a body that is not JSON (or not a form) at all
    if dependant.path_params or dependant.query_params or dependant.header_params or route.body_field is not None:
        codes.add(422)
    return codes


def _requires_role(dependant: Any) -> bool:
    return any(getattr(d.call, "allowed_roles", None) is not None or _requires_role(d) for d in dependant.dependencies)


def declare_errors(app: FastAPI, *, public: set[str]) -> None:
    """Add every error status a route answers to its responses (before the schema is first built);
    ``public``: the paths that need no sign-in."""
    for route in (r for top in app.routes for r in _flatten(top)):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        codes = set(_inferred(route)) if route.path not in public else set()
        codes |= {int(c) for c in route.responses if str(c).isdigit() and int(c) >= 400}
        for code in sorted(codes):
            declared = route.responses.pop(str(code), None) or route.responses.get(code) or {}
            route.responses[code] = declared
            declared.setdefault("model", ErrorBody)
            declared.setdefault("description", _DESCRIPTIONS.get(code, "an error"))
            if code in _HEADERS:
                declared.setdefault("headers", _HEADERS[code])
            # FastAPI made the fields of the responses a route was created with; these are added after
            route.response_fields[code] = create_model_field(name=f"Response_{code}_{route.unique_id}", type_=ErrorBody,
                                                             mode="serialization")


def install_openapi(app: FastAPI, *, public: set[str]) -> None:
    """Declare the errors and build the schema with form fields that are never null."""
    declare_errors(app, public=public)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description,
                                 routes=app.routes)
            for component in _form_bodies(schema):
                for prop in component.get("properties", {}).values():
                    _drop_null(prop)
            for path in schema.get("paths", {}).values():  # FastAPI's own 422 body is not what this API sends
                for operation in path.values():
                    if isinstance(operation, dict) and "422" in operation.get("responses", {}):
                        content = operation["responses"]["422"].setdefault("content", {}).setdefault("application/json", {})
                        content["schema"] = {"$ref": "#/components/schemas/ErrorBody"}
            schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
            schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _form_bodies(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    components = schema.get("components", {}).get("schemas", {})
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
            for media, body in content.items():
                if media in ("multipart/form-data", "application/x-www-form-urlencoded"):
                    ref = body.get("schema", {}).get("$ref", "")
                    target = components.get(ref.rsplit("/", 1)[-1]) if ref else body.get("schema")
                    if target:
                        found.append(target)
    return found


def _drop_null(prop: dict[str, Any]) -> None:
    options = prop.get("anyOf")
    if options:
        kept = [o for o in options if o.get("type") != "null"]
        if len(kept) == 1:
            del prop["anyOf"]
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
    if prop.get("default", "") is None:
        del prop["default"]


def allowed_methods(app: FastAPI, scope: Scope) -> str:
    """The methods of every route whose path matches (for a 405's Allow header)."""
    methods: set[str] = set()
    for route in app.router.routes:
        for inner in _flatten(route):
            match, _ = inner.matches({**scope, "method": "__none__"})
            if match != Match.NONE and getattr(inner, "methods", None):
                methods |= set(inner.methods)
    return ", ".join(sorted(methods))


def _flatten(route: Any) -> list[Any]:
    inner = getattr(route, "original_router", None)
    if inner is not None:
        return [r for sub in inner.routes for r in _flatten(sub)]
    return [route]
