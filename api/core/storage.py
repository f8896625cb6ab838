"""Content-addressed store of recordings: ``<root>/ab/cd/abcd...<sha256>``.

A file is written to a temporary name while its hash is computed and renamed into place only
when complete, so a crash never leaves half a recording under a real address, and the same bytes
uploaded twice are stored once. The writer holds an flock on its temporary file until then; a
process killed meanwhile (``kill -9``, a power cut) leaves the file behind without the lock, and
:meth:`RecordingStore.remove_abandoned` (run when an API or worker process starts) deletes only
such files, never one another process or machine sharing the store is still writing. The address of bytes just received is held (a lock) until the
caller has recorded them in the database or refused them, so a refused upload never removes a file
that a concurrent upload of the same bytes refers to. Addresses are hex digests, so no
user-supplied name ever becomes part of a path.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from api.core.errors import BadRequest, PayloadTooLarge, ServiceError, UnprocessableRecording

_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_TEMPORARY = ".upload-"

log = logging.getLogger("callqa.storage")


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    path: Path


class RecordingStore:
    def __init__(self, root: Path, *, max_bytes: int):
        self.root = root
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        if not _SHA.match(sha256):
            raise BadRequest(f"{sha256!r} is not a recording address (64 hex digits)", code="bad_address")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    @contextmanager
    def receive_stream(self, stream: BinaryIO, *, name: str | None = None) -> Iterator[Stored]:
        """:meth:`receive` of a file object, read in chunks."""
        with self.receive(iter(lambda: stream.read(_CHUNK), b""), name=name) as stored:
            yield stored

    @contextmanager
    def receive(self, chunks: Iterable[bytes], *, name: str | None = None) -> Iterator[Stored]:
        """Store the bytes at their address and hold the address until the block ends.

        Raises PayloadTooLarge past the limit and UnprocessableRecording when empty (their messages
        start with ``name`` when given). The caller records its reference to the recording in the
        database inside the block, or calls :meth:`discard` there when it refuses the recording and
        nothing else refers to it. Another request, process or machine receiving the same bytes
        waits at the address meanwhile, so a refused upload never removes a file that a concurrent
        upload of the same bytes is about to refer to; whoever comes second puts the bytes back in
        place if the first removed them.
        """
        with self._temporary() as (fd, tmp):
            try:
                sha, size = self._write(fd, chunks)
            except ServiceError as e:
                if name:
                    e.message = f"{name}: {e.message}"
                raise
            with self._address_lock(sha):
                target = self.path(sha)
                if not target.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
                yield Stored(sha, size, target)

    def discard(self, stored: Stored) -> None:
        """Remove a recording nothing refers to; only inside the :meth:`receive` block that stored it."""
        stored.path.unlink(missing_ok=True)

    def remove_abandoned(self) -> int:
        """Delete the temporary files of writers that were killed; returns how many.

        A file is abandoned when its flock can be taken at once: a live writer holds it until the file
        is in place or removed, and the kernel (or the NFS server) gives it back when the writer dies.
        Run it when a process starts, before it writes to the store itself: on NFS, Linux takes flock
        as a POSIX lock, which a process never conflicts with, so its own live files would look
        abandoned to it."""
        try:
            names = [e.name for e in os.scandir(self.root) if e.name.startswith(_TEMPORARY)]
        except FileNotFoundError:  # nothing stored yet
            return 0
        except OSError as e:  # the store itself is unreadable: storing will say so, with the request that needs it
            log.warning("could not look for abandoned temporary files in %s: %s", self.root, e)
            return 0
        removed = 0
        for name in names:
            path = self.root / name
            try:
                removed += self._remove_if_abandoned(path)
            except OSError as e:  # another user's file, a file system without locks: leave it and start
                log.warning("could not tell whether %s is abandoned: %s", path, e)
        return removed

    def _remove_if_abandoned(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDWR)  # for writing: on NFS an exclusive lock needs it
        except FileNotFoundError:  # its writer finished meanwhile
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EACCES):  # a live writer holds it
                    return False
                raise
            if not _same_file(fd, path):  # removed, or a new file under the name since it was opened
                return False
            size = os.fstat(fd).st_size
            path.unlink()
            log.info("removed %s (%d bytes), left by an upload or download that was killed", path, size)
            return True
        finally:
            os.close(fd)

    @contextmanager
    def _temporary(self) -> Iterator[tuple[int, Path]]:
        """A new temporary file beside the addresses (same file system, so a rename places it),
        locked until the block ends, then closed and gone unless renamed meanwhile."""
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            fd, name = tempfile.mkstemp(dir=self.root, prefix=_TEMPORARY)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, Path(name)):
                break
            # a starting process took it for abandoned between its creation and the lock, and removed it
            os.close(fd)
        tmp = Path(name)
        try:
            yield fd, tmp
        finally:
            tmp.unlink(missing_ok=True)
            os.close(fd)  # gives the flock back

    def _write(self, fd: int, chunks: Iterable[bytes]) -> tuple[str, int]:
        """The bytes written to ``fd`` and synced to disk; their sha256 and size."""
        digest = hashlib.sha256()
        size = 0
        # ``fd`` stays open: on NFS, closing any descriptor of the file would give back its lock
        with open(fd, "wb", closefd=False) as out:
            for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise PayloadTooLarge(
                        f"the recording is larger than the limit of {self.max_bytes / 1048576:g} MB "
                        "(CALLQA_MAX_UPLOAD_MB)",
                        code="recording_too_large",
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise UnprocessableRecording("the recording is empty (0 bytes)", code="recording_empty")
        return digest.hexdigest(), size

    @contextmanager
    def _address_lock(self, sha256: str) -> Iterator[None]:
        """An exclusive lock on the address, one of 4,096 by the first three hex digits: a thread lock
        within this process and an flock on a file under ``.locks`` across processes and machines
        that share the store (on NFS, Linux takes flock as a POSIX lock, which is per process, hence
        the thread lock)."""
        stripe = sha256[:3]
        with _thread_lock(self.root, stripe):
            locks = self.root / ".locks"
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / stripe, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # gives the flock back


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


_THREAD_LOCKS: dict[tuple[Path, str], threading.Lock] = {}


def _thread_lock(root: Path, stripe: str) -> threading.Lock:
    return _THREAD_LOCKS.setdefault((root, stripe), threading.Lock())  # setdefault is atomic under the GIL
