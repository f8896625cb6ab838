"""Property-based fuzzing of the OpenAPI schema (schemathesis): no request, valid or not, makes the
service answer 5xx. Every operation gets schema-conforming and schema-violating requests, signed in
as the administrator (the role that may call every endpoint), against a fresh SQLite database.

Bounded and repeatable: a few examples per operation and mode, derandomized, no example database.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

EXAMPLES = 15
# signing out would revoke the token every other request is sent with
SKIPPED = {("POST", "/api/v1/auth/logout")}


def test_no_request_makes_the_service_fail(app, people):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    auth = people.h("admin")
    server_errors: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                                 suppress_health_check=list(HealthCheck))
            def call(case) -> None:
                request = f"{case.method} {case.formatted_path} {case.query or ''} {str(case.body)[:200]!r}"
                try:
                    response = case.call(headers=auth)
                except Exception as e:  # the test client re-raises what the app did not handle
                    server_errors.append(f"{request} -> {type(e).__name__}: {str(e)[:300]}")
                    return
                if response.status_code >= 500:
                    server_errors.append(f"{request} -> {response.status_code} {response.text[:300]}")

            try:
                call()
            except Unsatisfiable:  # nothing in this operation can be made invalid (no parameters, no body)
                assert mode == GenerationMode.NEGATIVE, operation.label
    assert operations >= 25
    assert server_errors == [], "\n".join(dict.fromkeys(server_errors))
