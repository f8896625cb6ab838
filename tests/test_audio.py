"""Decoding what telephony produces, and clear errors for what it should not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzer import AudioDecodeError, load_audio
from analyzer.audio import SAMPLE_RATE, level_dbfs

FORMATS = ["clip_ru.wav", "clip_ru_ulaw.wav", "clip_ru_alaw.wav", "clip_ru.mp3", "clip_ru.ogg", "clip_ru.flac", "clip_ru.m4a"]


@pytest.mark.parametrize("name", FORMATS)
def test_telephony_formats_decode_to_two_channels(data_dir: Path, clip_labels: dict, name: str) -> None:
    audio = load_audio(data_dir / name)
    assert audio.channels == 2
    assert audio.duration == pytest.approx(clip_labels["turns"][-1]["end"], abs=1.0)
    # the manager (left) is silent while only the client speaks, and the other way round
    client_turn = next(t for t in clip_labels["turns"] if t["speaker"] == "client")
    a, b = int((client_turn["start"] + 0.1) * SAMPLE_RATE), int((client_turn["end"] - 0.1) * SAMPLE_RATE)
    assert level_dbfs(audio.samples[1, a:b]) - level_dbfs(audio.samples[0, a:b]) > 20


def test_mono_and_48k(data_dir: Path) -> None:
    mono = load_audio(data_dir / "clip_ru_mono.wav")
    assert mono.channels == 1 and mono.original_rate == 8000
    hi = load_audio(data_dir / "clip_ru_48k.wav")
    assert hi.original_rate == 48000 and hi.duration == pytest.approx(4.0, abs=0.05)


def test_bytes_and_file_objects(data_dir: Path) -> None:
    raw = (data_dir / "clip_ru.mp3").read_bytes()
    assert load_audio(raw).channels == 2
    with open(data_dir / "clip_ru.flac", "rb") as f:
        assert load_audio(f).channels == 2
    assert load_audio(np.zeros(16000, dtype=np.float32)).channels == 1


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.wav", "empty"),
        ("not_audio.wav", "not a readable audio file"),
        ("corrupt.mp3", "audio"),
        ("missing.wav", "no such file"),
    ],
)
def test_bad_input_gets_a_clear_error(data_dir: Path, name: str, reason: str) -> None:
    with pytest.raises(AudioDecodeError) as err:
        load_audio(data_dir / name)
    assert reason in str(err.value)
    assert name in str(err.value)


def test_truncated_file_decodes_what_is_there(data_dir: Path) -> None:
    audio = load_audio(data_dir / "truncated.wav")
    assert 0.5 < audio.duration < 2.0


def test_too_long_is_refused(data_dir: Path) -> None:
    with pytest.raises(AudioDecodeError, match="longer than the limit"):
        load_audio(data_dir / "clip_ru.wav", max_duration=5)
