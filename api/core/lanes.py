"""Long requests on threads of their own.

FastAPI runs a plain-function endpoint on a shared pool of threads (``CALLQA_API_THREADS`` an API
process, few, since more only take turns holding Python's lock). A re-score of every stored call,
a KPI report over a year, a CRM import or a large upload holds its thread for seconds or minutes;
on that pool they would leave the lists and call pages of everyone else waiting. Endpoints marked
:func:`slow_lane` run on a pool of their own instead (``SLOW_THREADS``), so the quick requests keep
their threads whatever the long ones do.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread

SLOW_THREADS = 4
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = WeakKeyDictionary()

T = TypeVar("T")


def _limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()  # one per event loop (an API process has one; tests make several)
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(SLOW_THREADS)
    return limiter


def slow_lane(endpoint: Callable[..., T]) -> Callable[..., Any]:
    """The endpoint (a plain function), run on the slow lane's threads; FastAPI reads its parameters
    and their types from the function itself."""

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(functools.partial(endpoint, *args, **kwargs), limiter=_limiter())

    return run
