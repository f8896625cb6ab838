"""Limits on what a request may hold, checked before the work they would make the server do.

:func:`loads_json` parses JSON that arrives inside a request as text (a multipart form field):
nesting is measured on the text first, so ``[[[[...]]]]`` a hundred thousand deep is refused with
a message instead of exhausting the parser's stack, and a string holding half of a UTF-16 pair
(``"\\ud800"``, valid JSON but not text) is refused too: nothing could store or even report it.
JSON request bodies are parsed by FastAPI and pydantic, which refuse both themselves.
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


class NotTextError(ValueError):
    """A JSON string holding a lone surrogate (half of a UTF-16 pair), which no text encoding can hold."""


def json_depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (never less than the parser would go)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    return max(accumulate(1 if c in "[{" else -1 for c in brackets))


def loads_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads``, refusing before parsing a text nested deeper than ``max_depth`` (NestingError),
    and after it one whose strings are not all text (NotTextError)."""
    depth = json_depth(text)
    if depth > max_depth:
        raise NestingError(f"nested {depth} levels deep (at most {max_depth})")
    parsed = json.loads(text)
    try:  # a pair of escapes is one character by now; half of one cannot be encoded
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise NotTextError(f"not Unicode text: {e.object[e.start:e.end].encode('unicode_escape').decode()} is half "
                           "of a UTF-16 pair") from None
    return parsed
