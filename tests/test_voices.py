"""Mono recordings of two real people: words go to the right speaker by the voice
(analyzer.voices, CAM++), where pitch alone is a coin toss; the features are Kaldi's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyzer.audio import load_audio
from analyzer.roles import split_mono
from analyzer.voices import fbank, word_voices
from benchmarks.mono_real import read_rttm, word_accuracy

VOICES = Path(__file__).parent / "data" / "voices"


def test_the_filterbank_is_kaldis():
    ref = np.load(VOICES / "fbank_reference.npz")
    ours = fbank(ref["x"])
    assert ours.shape == ref["fbank"].shape
    assert np.abs(ours - ref["fbank"]).max() < 1e-3


@pytest.fixture(scope="module")
def clips(analyzer):
    transcriber = analyzer.transcriber
    out = []
    for f in sorted(VOICES.glob("*.flac")):
        x = load_audio(f).channel(0)
        segments, _ = transcriber._channel(x, "en", [], other=None)
        out.append((x, segments, read_rttm(f.with_suffix(".rttm"))))
    return out


def _accuracy(clips, *, by_voice: bool) -> float:
    right = total = 0
    for x, segments, gold in clips:
        ok, n = word_accuracy(split_mono(segments, x, "en", by_voice=by_voice), gold)
        right += ok
        total += n
    return right / total


def _conversations(clips):
    """The clips where both people speak 5 s or more (trn03 is one person's monologue with a 1 s
    interjection: the known limit below)."""
    def talk(gold, who):
        return sum(b - a for a, b, s in gold if s == who)
    return [c for c in clips if min(talk(c[2], who) for who in {s for *_, s in c[2]}) >= 5.0]


def test_two_real_voices_on_one_channel_are_told_apart_by_the_voice(clips):
    conversations = _conversations(clips)
    assert len(conversations) == 3
    by_voice = _accuracy(conversations, by_voice=True)
    by_pitch = _accuracy(conversations, by_voice=False)
    assert by_voice >= 0.85  # 0.91 measured (benchmarks/mono_real.py; 0.89 narrowed to 8 kHz)
    assert by_voice > by_pitch + 0.15  # pitch and words alone: 0.56


def test_a_turn_ends_where_the_voice_changes_inside_a_sentence(clips):
    # the recogniser runs the first exchange of sample.flac into one sentence; the voices split it
    x, segments, gold = next(c for c in clips if any(s == "speaker91" for *_, s in c[2]))
    utterances = split_mono(segments, x, "en")
    assert len(utterances) >= 6
    starts = [u.start for u in utterances[1:]]
    changes = [a for a, _, s in gold[1:]]
    near = sum(any(abs(s - c) < 1.0 for c in changes) for s in starts)
    assert near >= len(starts) // 2


@pytest.mark.xfail(strict=True, reason="known limit: on 1.5 s windows one real person's 12-29 s monologue scores as "
                   "far apart as two people (centre similarity 0.50-0.72 against 0.36-0.72); see analyzer/voices.py")
def test_one_voice_is_not_split_in_two(clips):
    # the longest solo stretch of one person in the clips: a single voice
    x, segments, gold = max(clips, key=lambda c: max(b - a for a, b, _ in c[2]))
    a, b, who = max(gold, key=lambda g: g[1] - g[0])
    words = [(w.start, w.end) for s in segments for w in s.words if a <= w.start and w.end <= b]
    voices = word_voices(x, words)
    assert voices is None or len(set(voices.labels.tolist())) == 1
