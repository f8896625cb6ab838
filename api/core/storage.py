"""Content-addressed store of recordings: ``<root>/ab/cd/abcd...<sha256>``.

A file is written to a temporary name while its hash is computed and renamed into place only
when complete, so a crash never leaves half a recording under a real address, and the same bytes
uploaded twice are stored once. Addresses are hex digests, so no user-supplied name ever becomes
part of a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from api.core.errors import BadRequest, PayloadTooLarge, UnprocessableRecording

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

    def put_stream(self, stream: BinaryIO) -> Stored:
        return self.put_chunks(iter(lambda: stream.read(_CHUNK), b""))

    def put_chunks(self, chunks: Iterable[bytes]) -> Stored:
        """Store the bytes; raises PayloadTooLarge past the limit and UnprocessableRecording when empty."""
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
            sha = digest.hexdigest()
            target = self.path(sha)
            if target.is_file():
                tmp.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
            return Stored(sha, size, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
