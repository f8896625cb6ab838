"""The API's server processes: ``serve_api("api.main:app", processes=N, ...)``.

One process is uvicorn as it comes. Several processes each get a listening socket of their own,
bound to the same address with ``SO_REUSEPORT``, and the kernel spreads new connections over the
sockets by a hash of the connection's addresses.

Why not uvicorn's ``--workers``: there every process accepts from one shared socket, and whichever
is awake first takes a whole burst of new connections. 50 clients connecting at once were split
30/20 or worse in 5 runs of 8 between two processes, once 42/8. Keep-alive connections stay where
they landed, so the busier process's clients waited longer for every request (p95 470 ms in the
42/8 run; README, "Service"). The hash splits such a burst about evenly (25/25 to 31/19).

The sockets are made and start listening here, in the parent, and each process is given its own;
a process that dies is started again with the same socket. A connection the kernel gives a socket
whose process is starting (at first, or again) waits in its queue instead of being refused or
going elsewhere, so the connections are spread evenly from the start. ``SIGTERM`` or ``SIGINT``
stop every process gracefully (uvicorn finishes the requests in progress), and so does the parent's
death, even by ``kill -9`` (:mod:`api.core.children`): an orphan would keep a share of the port.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from typing import Any

from uvicorn.config import STARTUP_FAILURE  # the app cannot start: starting it again would fail the same way

from api.core.children import die_with_parent

log = logging.getLogger("callqa.serving")

_spawn = multiprocessing.get_context("spawn")
multiprocessing.allow_connection_pickling()  # a socket goes to a process as a duplicated descriptor


def serve_api(app: str, *, host: str, port: int, processes: int = 1, **uvicorn_options: Any) -> None:
    """Serve the ASGI ``app`` ("module:attribute") on ``host:port`` with ``processes`` processes, each
    on its own ``SO_REUSEPORT`` socket when there are several; returns when stopped."""
    import uvicorn

    if processes <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(app, host=host, port=port, workers=processes, **uvicorn_options)
        return
    sockets = [_listening_socket(host, port, backlog=uvicorn_options.get("backlog", 2048)) for _ in range(processes)]
    try:
        _Supervisor(app, sockets, uvicorn_options).run()
    finally:
        for sock in sockets:
            sock.close()


def _listening_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A socket of the group on ``host:port``, listening from now on: the kernel gives it its share of
    new connections even before its process has started, and they wait in its queue meanwhile."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve_one(app: str, sock: socket.socket, options: dict[str, Any], parent: int) -> None:
    """One API process (in a child): uvicorn on its own socket, until stopped or the parent (pid
    ``parent``) dies."""
    import uvicorn

    die_with_parent(parent)  # a SIGTERM, which uvicorn takes for a graceful shutdown

    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])  # exits with STARTUP_FAILURE if the app cannot start


class _Supervisor:
    """Starts a process a socket, starts again one that dies, stops them all on SIGTERM or SIGINT."""

    def __init__(self, app: str, sockets: list[socket.socket], options: dict[str, Any]) -> None:
        self.app = app
        self.sockets = sockets
        self.options = options
        self.processes: list[BaseProcess] = []
        self.stopping = False
        self.signal: int | None = None

    def _start(self, sock: socket.socket) -> BaseProcess:
        process = _spawn.Process(target=_serve_one, args=(self.app, sock, self.options, os.getpid()), name="callqa-api")
        process.start()
        log.info("API process %s started", process.pid)
        return process

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        self.signal = signum

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.processes = [self._start(sock) for sock in self.sockets]
            while not self.stopping:
                time.sleep(0.2)
                for i, process in enumerate(self.processes):
                    if process.is_alive() or self.stopping:
                        continue
                    if process.exitcode == STARTUP_FAILURE:
                        log.error("API process %s could not start the app; stopping (its log says why)", process.pid)
                        self.stopping = True
                        break
                    log.warning("API process %s exited with %s; starting another", process.pid, process.exitcode)
                    self.processes[i] = self._start(self.sockets[i])
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop_all(self, timeout: float = 30.0) -> None:
        if self.signal == signal.SIGINT:  # Ctrl-C: the terminal sent it to the processes too; a second SIGINT
            for process in self.processes:  # would make uvicorn drop the requests in progress, a SIGTERM does not
                process.join(1.0)
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
