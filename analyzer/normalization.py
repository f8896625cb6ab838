"""Text normalisation: tokens and lemmas with spaCy.

Russian lemmas come from spaCy's pymorphy3 lemmatizer (``spacy.blank("ru")``), English from
spaCy's lookup tables (``spacy-lookups-data``); other languages fall back to lower-cased words.
Lemmas are cached per word: calls repeat the same words, so re-scoring stays fast.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache

import spacy
from spacy.tokens import Doc

log = logging.getLogger(__name__)

NEGATIONS = {"ru": frozenset({"не", "ни", "нет"}), "en": frozenset({"not", "n't", "never", "no", "nt"})}
_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    """Lower-cased surface form."""
    lemma: str
    boundary_before: bool
    """A punctuation mark stood between this token and the previous one."""


class Normalizer:
    """Splits text into lower-cased tokens with lemmas for one language."""

    def __init__(self, language: str):
        self.language = language
        self._lock = threading.Lock()
        try:
            self.nlp = spacy.blank(language)
        except Exception:  # noqa: BLE001 - an unknown code falls back to the multi-language tokenizer
            log.warning("spaCy has no language %r; using the multi-language tokenizer", language)
            self.nlp = spacy.blank("xx")
        self._lemmatizer = None
        mode = {"ru": "pymorphy3", "uk": "pymorphy3", "en": "lookup"}.get(language)
        if mode:
            try:
                self._lemmatizer = self.nlp.add_pipe("lemmatizer", config={"mode": mode})
                self.nlp.initialize()
            except Exception as exc:  # noqa: BLE001 - lemmas are an improvement, not a requirement
                log.warning("no lemmatizer for %r (%s); matching on word forms", language, exc)
                self._lemmatizer = None
        self.negations = NEGATIONS.get(language, frozenset())
        self._cache: dict[str, str] = {}

    def lemma(self, word: str) -> str:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        lemma = word
        if self._lemmatizer is not None and word.isalpha():
            with self._lock:
                doc = self._lemmatizer(Doc(self.nlp.vocab, words=[word]))
            lemma = (doc[0].lemma_ or word).lower().replace("ё", "е")
        if len(self._cache) < 500_000:
            self._cache[word] = lemma
        return lemma

    def tokens(self, text: str) -> list[Token]:
        out: list[Token] = []
        boundary = False
        for t in self.nlp.tokenizer(text.lower().replace("ё", "е")):
            s = t.text
            if t.is_space:
                continue
            if _PUNCT.match(s) and s != "n't":
                boundary = True
                continue
            out.append(Token(s, self.lemma(s), boundary))
            boundary = False
        return out

    def lemmas(self, text: str) -> list[str]:
        return [t.lemma for t in self.tokens(text)]


@lru_cache(maxsize=16)
def get_normalizer(language: str) -> Normalizer:
    return Normalizer(language)
