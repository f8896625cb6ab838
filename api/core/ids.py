"""Row ids as the API accepts them: positive and within the database's INTEGER column.

PostgreSQL's INTEGER is 32 bits and SQLite's 64; an id outside the common range can name no row,
so it is refused up front with a 422 instead of overflowing in the database driver.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ID = 2**31 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A row id in a request body."""

PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A row id in the URL path."""

QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
"""An optional row id filter in the query string."""
