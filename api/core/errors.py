"""Errors the service raises on purpose; the web layer maps them to JSON in one place (app.py)::

    ServiceError                 500 unless a subclass says otherwise
    ├── BadRequest               400  the request is malformed or names something impossible
    ├── Unauthorized             401  no valid token
    ├── Forbidden                403  the user's role or scope does not allow it
    ├── NotFound                 404
    ├── Conflict                 409  the state does not allow it (e.g. retrying a done call)
    ├── PayloadTooLarge          413
    ├── RangeNotSatisfiable      416  a byte range outside the recording (Content-Range: bytes */size)
    ├── UnprocessableRecording   422  the upload is not a usable recording (empty, not audio, ...)
    ├── RecordingUrlNotAllowed   422  a recording URL that leads inside the network (api/core/netguard.py)
    └── TooManyRequests          429  e.g. too many failed sign-ins (Retry-After: seconds)

Every response body is ``{"error": {"code": "...", "message": "..."}}``: a code for machines and
a sentence for people that says what was wrong and what to do.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ServiceError):
    status = 400
    code = "bad_request"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


class RangeNotSatisfiable(ServiceError):
    status = 416
    code = "range_not_satisfiable"


class UnprocessableRecording(ServiceError):
    status = 422
    code = "recording_unusable"


class RecordingUrlNotAllowed(ServiceError):
    status = 422
    code = "recording_url_not_allowed"


class TooManyRequests(ServiceError):
    status = 429
    code = "too_many_requests"
