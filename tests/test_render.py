"""The sample-call renderer: labelled dialogues to stereo telephone audio with turn timings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analyzer import load_audio
from analyzer.audio import SAMPLE_RATE, level_dbfs


def test_dialogue_renders_to_labelled_stereo_telephone_audio(render_dialogue, tmp_path: Path, data_dir: Path) -> None:
    out = render_dialogue(data_dir / "clip_ru.yaml", tmp_path, fmt="ulaw", manager_channel="right")
    labels = json.loads(out.with_name("clip_ru.labels.json").read_text(encoding="utf-8"))
    assert labels["manager_channel"] == "right"
    assert labels["labels"]["objections"][0]["type"] == "price"
    audio = load_audio(out)
    assert audio.channels == 2 and audio.original_rate == 8000
    assert audio.duration == pytest.approx(labels["turns"][-1]["end"], abs=1.5)
    for turn in labels["turns"]:
        a, b = int((turn["start"] + 0.1) * SAMPLE_RATE), int((turn["end"] - 0.1) * SAMPLE_RATE)
        manager, client = level_dbfs(audio.samples[1, a:b]), level_dbfs(audio.samples[0, a:b])
        speaking, silent = (manager, client) if turn["speaker"] == "manager" else (client, manager)
        assert speaking - silent > 15, turn


def test_mono_mixdown_and_bad_text(render_dialogue, tmp_path: Path, data_dir: Path) -> None:
    out = render_dialogue(data_dir / "clip_ru.yaml", tmp_path, fmt="mp3", mono=True)
    assert load_audio(out).channels == 1
    bad = {"id": "bad", "language": "ru", "turns": [{"speaker": "manager", "text": "«—…»"}], "labels": {"stages": []}}
    with pytest.raises(Exception) as err:
        render_dialogue(bad, tmp_path)
    assert "bad" in str(err.value) or "empty" in str(err.value).lower() or "speak" in str(err.value).lower()
    assert np.isfinite(load_audio(out).samples).all()
