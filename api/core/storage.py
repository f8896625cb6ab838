"""Content-addressed store of recordings: ``<root>/ab/cd/abcd...<sha256>``.

A file is written to a temporary name while its hash is computed and renamed into place only
when complete, so a crash never leaves half a recording under a real address, and the same bytes
uploaded twice are stored once. The address of bytes just received is held (a lock) until the
caller has recorded them in the database or refused them, so a refused upload never removes a file
that a concurrent upload of the same bytes refers to. Addresses are hex digests, so no
user-supplied name ever becomes part of a path.
"""

from __future__ import annotations

import fcntl
import hashlib
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
        try:
            tmp, sha, size = self._write_temporary(chunks)
        except ServiceError as e:
            if name:
                e.message = f"{name}: {e.message}"
            raise
        try:
            with self._address_lock(sha):
                target = self.path(sha)
                if not target.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, target)
                yield Stored(sha, size, target)
        finally:
            tmp.unlink(missing_ok=True)

    def discard(self, stored: Stored) -> None:
        """Remove a recording nothing refers to; only inside the :meth:`receive` block that stored it."""
        stored.path.unlink(missing_ok=True)

    def _write_temporary(self, chunks: Iterable[bytes]) -> tuple[Path, str, int]:
        """The bytes in a temporary file beside the addresses (same file system, so a rename places
        it), synced to disk, with their sha256 and size."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
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
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest(), size

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


_THREAD_LOCKS: dict[tuple[Path, str], threading.Lock] = {}


def _thread_lock(root: Path, stripe: str) -> threading.Lock:
    return _THREAD_LOCKS.setdefault((root, stripe), threading.Lock())  # setdefault is atomic under the GIL
