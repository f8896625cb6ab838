"""Decoding recordings: any format FFmpeg reads (WAV PCM/µ-law/A-law, MP3, OGG/Opus, FLAC, M4A),
8 to 48 kHz, mono or stereo, into float32 channels at 16 kHz."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from analyzer.errors import AudioDecodeError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
SILENCE_DBFS = -55.0
"""A channel whose loudest 100 ms stays under this is treated as silent."""


@dataclass(frozen=True)
class Audio:
    """A decoded recording: ``samples`` has shape (channels, n) at :data:`SAMPLE_RATE`."""

    samples: np.ndarray
    source: str | None = None
    original_rate: int | None = None
    codec: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / SAMPLE_RATE

    def channel(self, index: int) -> np.ndarray:
        return self.samples[index]


def level_dbfs(x: np.ndarray) -> float:
    """Loudest 100 ms RMS level of a signal, in dBFS."""
    if x.size == 0:
        return -120.0
    n = SAMPLE_RATE // 10
    usable = x[: (x.size // n) * n] if x.size >= n else x
    frames = usable.reshape(-1, n) if usable.size >= n else usable.reshape(1, -1)
    rms = float(np.sqrt(np.max(np.mean(frames.astype(np.float64) ** 2, axis=1))))
    return 20 * np.log10(max(rms, 1e-6))


def load_audio(src: str | Path | BinaryIO | bytes | np.ndarray, *, max_duration: float | None = None) -> Audio:
    """Decode a recording. Raises :class:`AudioDecodeError` with a reason a person can act on."""
    if isinstance(src, np.ndarray):
        arr = np.asarray(src, dtype=np.float32)
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise AudioDecodeError("an audio array must be 1-D (mono) or (channels, samples) and not empty")
        return Audio(arr[:2], None, SAMPLE_RATE, "array")
    name = str(src) if isinstance(src, (str, Path)) else getattr(src, "name", None)
    if isinstance(src, (str, Path)):
        p = Path(src)
        if not p.is_file():
            raise AudioDecodeError(f"{p}: no such file")
        if p.stat().st_size == 0:
            raise AudioDecodeError(f"{p}: the file is empty (0 bytes)")
    stream_src: str | BinaryIO = io.BytesIO(src) if isinstance(src, bytes) else (str(src) if isinstance(src, Path) else src)  # type: ignore[assignment]
    label = name or "recording"
    try:
        container = av.open(stream_src, mode="r", metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioDecodeError(f"{label}: not a readable audio file ({_reason(exc)})") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioDecodeError(f"{label}: the file has no audio stream")
        stream = streams[0]
        n_in = stream.codec_context.channels or 1
        layout = "stereo" if n_in >= 2 else "mono"
        n_out = 2 if n_in >= 2 else 1
        rate = stream.codec_context.sample_rate
        codec = stream.codec_context.name
        resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        warnings: list[str] = []
        total = 0
        limit = int(max_duration * SAMPLE_RATE) if max_duration else None
        try:
            for frame in container.decode(stream):
                frame.pts = None
                for out in resampler.resample(frame):
                    a = out.to_ndarray().reshape(-1, n_out)
                    chunks.append(a)
                    total += a.shape[0]
                if limit is not None and total > limit:
                    raise AudioDecodeError(
                        f"{label}: longer than the limit of {(max_duration or 0) / 60:.0f} min "
                        f"(CALLQA_MAX_DURATION); split the recording or raise the limit"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, n_out))
        except AudioDecodeError:
            raise
        except (av.error.FFmpegError, ValueError) as exc:
            if not chunks:
                raise AudioDecodeError(f"{label}: cannot decode the audio ({_reason(exc)})") from None
            warnings.append(f"the recording is damaged or truncated: decoded the first part only ({_reason(exc)})")
    if not chunks:
        raise AudioDecodeError(f"{label}: the audio stream holds no samples")
    data = np.concatenate(chunks, axis=0).T.astype(np.float32) / 32768.0
    if data.shape[1] < SAMPLE_RATE // 10:
        raise AudioDecodeError(f"{label}: the recording is shorter than 0.1 s")
    return Audio(np.ascontiguousarray(data), name, rate, codec, tuple(warnings))


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return str(text).lower()


@dataclass(frozen=True)
class AudioInfo:
    """What a quick look at a recording tells, without decoding all of it."""

    duration: float | None
    channels: int
    sample_rate: int
    codec: str


def probe_audio(src: str | Path, *, seconds: float = 5.0) -> AudioInfo:
    """Check that a file is readable audio by decoding its first ``seconds``; cheap enough for an
    upload handler. Raises :class:`AudioDecodeError` like :func:`load_audio`."""
    p = Path(src)
    if not p.is_file():
        raise AudioDecodeError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise AudioDecodeError(f"{p.name}: the file is empty (0 bytes)")
    try:
        container = av.open(str(p), mode="r", metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioDecodeError(f"{p.name}: not a readable audio file ({_reason(exc)})") from None
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(f"{p.name}: the file has no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or 0
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += frame.samples
                if rate and decoded >= seconds * rate:
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            if not decoded:
                raise AudioDecodeError(f"{p.name}: cannot decode the audio ({_reason(exc)})") from None
        if not decoded:
            raise AudioDecodeError(f"{p.name}: the audio stream holds no samples")
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return AudioInfo(duration, stream.codec_context.channels or 1, rate, stream.codec_context.name)
