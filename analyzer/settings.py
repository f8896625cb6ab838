"""Analyzer settings: environment variables prefixed ``CALLQA_`` or a ``.env`` file.

Built by :func:`get_settings` (not at import time) so tests and callers can override any field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cache_home() -> Path:
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "callqa"


class AnalyzerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLQA_", env_file=".env", extra="ignore")

    model: str = Field(
        "embedded",
        description="'embedded' (bundled multilingual base), a faster-whisper size (small, medium, "
        "large-v3, turbo...) or a local directory with a CTranslate2 Whisper model",
    )
    allow_download: bool = Field(False, description="let a model size be downloaded from the hub")
    model_cache_dir: Path = Field(default_factory=lambda: _cache_home() / "models")
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field("default", description="int8 on CPU, float16 on CUDA unless set")
    cpu_threads: int = Field(0, ge=0, description="0: one per core")
    beam_size: int = Field(5, ge=1, le=10)
    batch_size: int = Field(8, ge=0, le=64, description="0: each channel on its own; N: both channels batched N windows at a time")
    vad: bool = True
    vocabulary_hint: Literal["off", "hotwords", "prompt"] = Field(
        "off", description="pass the script's vocabulary to the recogniser (see benchmarks)"
    )
    language: str | None = Field(None, description="language code; detected when not set")
    manager_channel: Literal["left", "right"] = "left"
    mono_split: Literal["voice", "pitch"] = Field(
        "voice", description="mono recordings: speakers told apart by voice embeddings (CAM++), or by pitch and words only"
    )
    script: str | None = Field(None, description="script id or path; default: the language's default")
    scripts_dirs: list[Path] = Field(default_factory=list, description="extra folders of scripts")
    max_duration: float = Field(4 * 3600, gt=0, description="longest recording accepted, seconds")


def get_settings(**overrides: object) -> AnalyzerSettings:
    return AnalyzerSettings(**overrides)  # type: ignore[arg-type]
