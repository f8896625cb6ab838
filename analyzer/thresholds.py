"""Every tunable number of matching and scoring, in one place.

Tuned on the labelled sample set (``benchmarks/accuracy.py``), the learned layer's by
cross-validation on the training dialogues (``benchmarks/learned.py``), never per test nor on a blind set. Change them here
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
    learned: bool = True
    """Use the script's learned models (analyzer/learned.py) beside its phrase lists."""
    learned_passed: float = 0.6
    """Probability of an objection type (learned detector) at which an utterance raises it."""
    learned_uncertain: float = 0.5
    """...and from which, below ``learned_passed``, it may: uncertain, a person should listen."""
    learned_veto: float = 0.35
    """Under this probability of its type, a phrase list's match is no objection: a look-alike the list
    did not know (0: the learned detector never overrules the list)."""
    learned_keep: float = 0.9
    """...unless one of its clauses alone raises it this surely ("Не интересно, до свидания")."""
    learned_veto_support: int = 30
    """...and only for a type the detector learned from this many examples at least: a company's own
    objection with a phrasing or two is the list's to judge."""
    # cross-validated on the training dialogues (benchmarks/learned.py): the handler overrules the rules' "handled" at
    # 0.6, their "not handled" (a give-up, no answer) only when it is all but sure
    handled_sure: float = 0.95
    """Probability (learned handler) above which an answer handles the objection, whatever the rules found."""
    unhandled_sure: float = 0.6
    """...and under which it does not."""


DEFAULT = Thresholds()
