"""Real recorded voices (tests/data/prompts): the transcript keeps what bare Whisper keeps. No
first word cut off, no stretch transcribed twice, no call lost because a short Russian recording
sounded Ukrainian to the language detector."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np
import pytest

from analyzer import Analyzer

PROMPTS = Path(__file__).parent / "data" / "prompts"


def said(report) -> list[str]:  # noqa: ANN001
    return re.findall(r"\w+", " ".join(u.text for u in report.transcript.utterances).lower())


def test_the_first_word_is_not_cut_off(analyzer):
    assert said(analyzer.analyze(PROMPTS / "en-check-number-dial-again.wav"))[:2] == ["please", "check"]
    assert said(analyzer.analyze(PROMPTS / "ru-auth-incorrect.wav"))[0] == "пароль"


def test_the_first_word_is_not_cut_off_on_a_stereo_call(analyzer, tmp_path):
    with wave.open(str(PROMPTS / "en-check-number-dial-again.wav"), "rb") as w:
        rate, voice = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    pause = np.zeros(rate, dtype="<i2")
    # the manager speaks from the first moment of the recording, as when it starts at the answer
    left = np.concatenate([voice, pause, np.zeros_like(voice), pause])
    right = np.concatenate([np.zeros_like(voice), pause, voice, pause])
    stereo = tmp_path / "call.wav"
    with wave.open(str(stereo), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.stack([left, right], axis=1).tobytes())
    report = analyzer.analyze(stereo, language="en")
    firsts = {u.speaker: re.findall(r"\w+", u.text.lower())[:2] for u in report.transcript.utterances}
    assert firsts == {"manager": ["please", "check"], "client": ["please", "check"]}


@pytest.mark.parametrize("name", ["ru-conf-muted", "ru-conf-userswilljoin"])
def test_no_stretch_of_speech_is_transcribed_twice(analyzer, name):
    words = said(analyzer.analyze(PROMPTS / f"{name}.wav"))
    assert words and len(words) == len(set(words)), words


@pytest.mark.parametrize("name", ["ru-cannot-complete-as-dialed", "ru-conf-now-unmuted"])
def test_a_short_russian_call_the_detector_hears_as_another_language_is_still_analysed(analyzer, name):
    report = analyzer.analyze(PROMPTS / f"{name}.wav")
    assert report.transcript.language == "ru"
    assert said(report) and all(re.fullmatch(r"[а-яё0-9]+", w) for w in said(report)), said(report)


def test_a_broken_script_in_the_library_does_not_stop_the_language_detection(analyzer, tmp_path):
    from analyzer.settings import get_settings

    (tmp_path / "draft.yaml").write_text("id: draft\nstages: [unfinished\n", encoding="utf-8")
    with_draft = Analyzer(get_settings(scripts_dirs=[tmp_path]), transcriber=analyzer.transcriber)  # the loaded model
    report = with_draft.analyze(PROMPTS / "ru-conf-muted.wav")
    assert report.transcript.language == "ru" and said(report) == ["ваш", "микрофон", "выключен"]
