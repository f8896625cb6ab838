"""Limits on what a request may hold, checked before the work they would make the server do.

:func:`loads_json` parses JSON that arrives inside a request as text (a multipart form field):
nesting is measured on the text first, so ``[[[[...]]]]`` a hundred thousand deep is refused with
a message instead of exhausting the parser's stack. JSON request bodies are parsed by FastAPI and
pydantic, which refuse such nesting themselves.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_JSON_DEPTH = 32
"""Deeper than any document the API takes (metadata is an object, or a list of objects, of values)."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class NestingError(ValueError):
    """A document nested deeper than allowed; the message says how deep and the limit."""


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (never less than the parser would go)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(accumulate(1 if c in "[{" else -1 for c in brackets))


def loads_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads``, refusing before parsing a text nested deeper than ``max_depth`` (NestingError)."""
    depth = json_depth(text)
    if depth > max_depth:
        raise NestingError(f"nested {depth} levels deep (at most {max_depth})")
    return json.loads(text)
