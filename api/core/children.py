"""Child processes end with their parent: ``callqa serve``'s API and worker processes and ``callqa
worker``'s processes.

A parent killed with ``kill -9`` (or by the OOM killer) cannot stop its children, and orphans go
on: workers claiming calls beside the workers started again in their place, API processes holding
the port a new ``callqa serve`` shares with them. So a child asks the kernel for ``SIGTERM`` when
its parent dies (Linux ``PR_SET_PDEATHSIG``), which stops it the graceful way (a worker finishes
the call in hand, uvicorn the requests in progress). The kernel sends it when the *thread* that
started the child ends, so a parent starts children only from threads that live as long as the
children should. Where there is no such signal, or the parent died before the child asked for it,
:func:`orphaned` tells: a worker asks before claiming each call.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger("callqa.children")

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, *, signum: int = signal.SIGTERM) -> None:
    """Have ``signum`` sent to this process when ``parent`` (the pid the parent passed down) ends,
    and send it now if it has ended already. A handler installed before decides what the signal
    does; without one it ends the process."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        except (OSError, AttributeError) as e:  # no C library to call: orphaned() still tells
            log.warning("cannot ask for a signal at the parent's death: %s", e)
    if orphaned(parent):  # it died before the request above: the kernel will not send it
        os.kill(os.getpid(), signum)


def orphaned(parent: int) -> bool:
    """Whether the process that started this one (pid ``parent``) has ended: this one was given to
    another parent (init or a subreaper)."""
    return os.getppid() != parent
