"""The real Whisper model (embedded base, int8) on short telephone clips."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from analyzer.results import Word
from analyzer.segments import Segment
from analyzer.transcription import WHISPER_LANGUAGES, collapse_loops


def _turn_of(labels: dict, t: float) -> str | None:
    for turn in labels["turns"]:
        if turn["start"] - 0.5 <= t <= turn["end"] + 0.5:
            return turn["speaker"]
    return None


def test_stereo_call_verdicts_roles_and_times(analyzer, data_dir: Path, clip_labels: dict) -> None:
    report = analyzer.analyze(data_dir / "clip_ru.wav")
    assert report.language == "ru"
    assert not report.transcript.roles_inferred
    stages = {s.id: s for s in report.stages}
    for sid in ("greeting", "introduction", "time_check"):
        assert stages[sid].status == "passed", (sid, report.transcript.utterances)
    greeting = stages["greeting"].evidence
    assert greeting is not None and greeting.speaker == "manager"
    assert greeting.start == pytest.approx(clip_labels["turns"][0]["start"], abs=1.0)
    assert [o.type for o in report.objections] == ["price"]
    assert report.objections[0].client.speaker == "client"
    # every utterance sits inside a labelled turn of the same speaker
    for u in report.transcript.utterances:
        assert _turn_of(clip_labels, (u.start + u.end) / 2) == u.speaker, u
    # words keep their timings and probabilities
    words = [w for u in report.transcript.utterances for w in u.words]
    assert words and all(0.0 <= w.probability <= 1.0 and w.end >= w.start for w in words)


def test_manager_channel_is_a_per_call_override(analyzer, data_dir: Path) -> None:
    right = analyzer.analyze(data_dir / "clip_ru_manager_right.wav", manager_channel="right")
    assert {s.id: s.status for s in right.stages}["greeting"] == "passed"
    wrong = analyzer.analyze(data_dir / "clip_ru_manager_right.wav")  # default: left
    assert {s.id: s.status for s in wrong.stages}["greeting"] == "missed"


def test_compressed_format_gives_the_same_verdicts(analyzer, data_dir: Path) -> None:
    a = analyzer.analyze(data_dir / "clip_ru.mp3")
    assert {s.id: s.status for s in a.stages}["introduction"] == "passed"
    assert [o.type for o in a.objections] == ["price"]


def test_mono_roles_are_inferred_from_the_script(analyzer, data_dir: Path) -> None:
    report = analyzer.analyze(data_dir / "clip_ru_mono.wav")
    assert report.transcript.roles_inferred
    assert any("inferred" in w for w in report.warnings)
    first_manager = next(u for u in report.transcript.utterances if u.speaker == "manager")
    assert "добрый" in first_manager.text.lower()
    assert {s.id: s.status for s in report.stages}["greeting"] == "passed"


def test_silence_gives_an_empty_transcript_not_invented_text(analyzer, data_dir: Path) -> None:
    report = analyzer.analyze(data_dir / "silence.wav", language="ru")
    assert report.transcript.utterances == ()
    assert any("silent" in w or "no speech" in w for w in report.to_dict()["warnings"])
    assert all(s.status == "missed" for s in report.stages)


def test_hold_music_is_not_transcribed(analyzer, tmp_path: Path) -> None:
    sr = 8000
    t = np.arange(int(sr * 12)) / sr
    notes = [261.6, 329.6, 392.0, 523.3]
    music = sum(np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * (0.25 + i / 7) * t)) for i, f in enumerate(notes))
    music = (0.15 * music / np.max(np.abs(music)) * 32767).astype(np.int16)
    stereo = np.stack([music, np.zeros_like(music)], axis=1)
    path = tmp_path / "hold.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(stereo.tobytes())
    report = analyzer.analyze(path, language="ru")
    assert [u.text for u in report.transcript.utterances] == []


def test_repetition_loops_are_collapsed() -> None:
    words = tuple(Word(w, i * 0.3, i * 0.3 + 0.2, 0.9) for i, w in enumerate("Алло да да да да да да да да".split()))
    seg = Segment("Алло да да да да да да да да", 0.0, 3.0, words, -0.3, 0.1, 3.0)
    assert collapse_loops(seg).text == "Алло да"
    words = tuple(Word(w, i * 0.3, i * 0.3 + 0.2, 0.9) for i, w in enumerate(("спасибо за звонок " * 4).split()))
    seg = Segment(" ".join(w.text for w in words), 0.0, 4.0, words, -0.3, 0.1, 3.0)
    assert collapse_loops(seg).text == "спасибо за звонок"


def test_the_languages_an_option_may_name_are_those_the_model_knows(analyzer) -> None:
    assert set(WHISPER_LANGUAGES) == set(analyzer.transcriber.model.supported_languages)
    assert len(WHISPER_LANGUAGES) == len(set(WHISPER_LANGUAGES))


def test_english_call_language_detected_and_default_script(analyzer, data_dir: Path) -> None:
    report = analyzer.analyze(data_dir / "clip_en_ulaw.wav")
    assert report.language == "en"
    assert report.script_id == "en_b2b_outbound"
    stages = {s.id: s.status for s in report.stages}
    assert stages["time_check"] == "passed" and stages["farewell"] == "passed"
    [objection] = report.objections
    assert objection.type == "no_need" and objection.handled is False


def test_the_first_word_of_an_answer_is_kept(analyzer, render_dialogue, tmp_path: Path) -> None:
    """The speech of each channel is cut out by voice activity before it is decoded: cut too close,
    the first word of a turn is lost, and "Понимаю, ..." at the start of an answer is what tells a
    handled objection from an unhandled one (a labelled call of the fresh set, rendered)."""
    import yaml

    source = Path(__file__).resolve().parents[1] / "sample_calls" / "fresh" / "fr_ru_15_3d_printing_no_questions.yaml"
    dialogue = yaml.safe_load(source.read_text(encoding="utf-8"))
    report = analyzer.analyze(render_dialogue(dialogue, tmp_path))
    price = next(o for o in report.objections if o.type == "price")
    answer = next(u for u in report.transcript.utterances if u.speaker == "manager" and u.start > price.client.start)
    assert answer.text.lower().startswith("понимаю"), answer
