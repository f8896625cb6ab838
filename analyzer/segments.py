"""What the recogniser heard on one channel, before speakers are assigned.

:mod:`analyzer.transcription` makes the segments and guards them (text on silence, repetition loops,
the other side's voice); :mod:`analyzer.roles` splits those of a mono recording into two speakers' turns.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.results import Word


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised speech with its words and Whisper's own figures for it: the mean log
    probability of its tokens, the probability that it is no speech at all, and how much its text
    compresses (a repetition loop compresses well)."""

    text: str
    start: float
    end: float
    words: tuple[Word, ...]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
