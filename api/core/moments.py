"""Moments as the API accepts them: ISO 8601 text (``2026-11-02T09:00:00+03:00``, ``2026-11-02``).

Pydantic also takes a number as seconds since 1970, so ``date_to=0.5`` was a moment in January 1970
while the OpenAPI description says a date-time is text: a number is refused with a 422 instead.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form
from pydantic import BeforeValidator

_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def iso_only(value: Any) -> Any:
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("a moment is ISO 8601 text, e.g. 2026-11-02T09:00:00+03:00 or 2026-11-02, not a number")
    return value


Moment = Annotated[datetime, BeforeValidator(iso_only)]
"""A moment in a request body."""


FormMoment = Annotated[datetime | None, BeforeValidator(iso_only), Form()]
"""An optional moment in a form."""
