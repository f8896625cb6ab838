"""Every tunable number of matching and scoring, in one place.

Tuned on the labelled sample set (``benchmarks/accuracy.py``), never per test. Change them here
and re-run the benchmark; the figures in the README come from these values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Thresholds:
    token_similarity: float = 80.0
    """rapidfuzz ratio (0-100) at which a recognised lemma counts as a phrasing's lemma."""
    short_token_similarity: float = 88.0
    """The same for lemmas of 4-5 letters, where one wrong letter changes the word."""
    passed: float = 78.0
    """Phrase similarity (0-100) at which a stage or objection counts as found."""
    uncertain: float = 70.0
    """Below ``passed`` but at least this: the verdict is uncertain and a person should listen."""
    low_confidence: float = 0.45
    """Mean recogniser probability of the matched words under which evidence is uncertain."""
    stop_word_weight: float = 0.35
    """Weight of function words in a phrasing relative to content words (1.0)."""
    window_slack: int = 2
    """Extra words allowed inside a phrasing beyond its own length (plus half its length)."""
    handling_turns: int = 2
    """Manager utterances after an objection in which it may be answered."""
    handling_seconds: float = 45.0
    """...and within this many seconds of the objection, when times are known."""
    answer_words: int = 8
    """After an acknowledgement, an answer this long counts as answering the objection."""
    backchannel_words: int = 2
    """Utterances of the other side this short ('да', 'угу') don't split a phrase in two."""


DEFAULT = Thresholds()
