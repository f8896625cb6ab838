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
_FIXED_LEMMAS = {
    # the recogniser writes "we're" or "we are", "I'll" or "I will" as it pleases: a contraction
    # has the lemma of the full word (spaCy's lookup leaves "'re" as it is, and makes "does" "doe")
    "en": {"'re": "be", "'m": "be", "'s": "be", "'ve": "have", "'ll": "will", "'d": "would", "ca": "can", "wo": "will", "does": "do"},
}


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    """Lower-cased surface form."""
    lemma: str
    boundary_before: bool
    """A punctuation mark stood between this token and the previous one."""
    name: bool = False
    """A personal name (first name, surname, patronymic), written with a capital."""
    org: bool = False
    """Looks like an organisation or brand: capitalised mid-sentence, not a personal name and
    (in Russian) unknown to the dictionary or written in CamelCase."""


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
        self._fixed = _FIXED_LEMMAS.get(language, {})
        self._cache: dict[str, str] = {}
        self._morph = None
        if language == "ru":
            try:
                import pymorphy3

                self._morph = pymorphy3.MorphAnalyzer(lang="ru")
            except Exception:  # noqa: BLE001 - names are an improvement, not a requirement
                self._morph = None
        self._kind: dict[str, tuple] = {}

    def _proper(self, word: str) -> tuple[bool, bool]:
        """(is a personal name, may be a brand) for a capitalised word.

        A brand is a word the dictionary does not know ("ДокФлоу"), or a capitalised common word
        mid-sentence ("Быстрый Заяц", "Семена Юга"): Russian capitalises such words only in names
        of things. Places and pronouns ("Вы") are not brands."""
        found = self._kind.get(word)
        if found is None:
            if self._morph is not None:
                parts = [w for w in word.split("-") if w]
                parses = self._morph.parse(parts[-1] if parts else word)
                tags = [set(str(p.tag).replace(" ", ",").split(",")) for p in parses[:3]]
                is_name = len(parts) == 1 and any({"Name", "Surn", "Patr"} & t for t in tags)
                top = tags[0] if tags else set()
                brand = not all(self._morph.word_is_known(w) for w in parts) or not (
                    {"Geox", "NPRO", "PREP", "CONJ", "PRCL", "INTJ"} & top
                )
            else:
                is_name, brand = True, True
            found = (is_name, brand)
            if len(self._kind) < 200_000:
                self._kind[word] = found
        return found

    def lemma(self, word: str) -> str:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        lemma = word
        if word in self._fixed:
            lemma = self._fixed[word]
        elif self._morph is not None and word.isalpha():
            lemma = self._russian_lemma(word)
        elif self._lemmatizer is not None and word.isalpha():
            with self._lock:
                doc = self._lemmatizer(Doc(self.nlp.vocab, words=[word]))
            lemma = (doc[0].lemma_ or word).lower().replace("ё", "е")
        if len(self._cache) < 500_000:
            self._cache[word] = lemma
        return lemma

    def _russian_lemma(self, word: str) -> str:
        """The normal form most readings of a word share (weighted by their likelihood).

        spaCy's lookup keeps an ambiguous word as it is, so "готов" (готовый / гот) and "занят"
        (занятый / занять) would not meet "готова" and "занята"; the likeliest reading joins all
        forms of a word. Words the dictionary does not know keep spaCy's behaviour: a guessed
        normal form only when every guess agrees.
        """
        assert self._morph is not None
        with self._lock:
            parses = self._morph.parse(word)
        forms = {p.normal_form for p in parses}
        if len(forms) == 1:
            lemma = forms.pop()
        else:
            weight: dict[str, float] = {}  # in order of likelihood, so a tie goes to the likelier
            for p in parses:
                if p.is_known:
                    weight[p.normal_form] = weight.get(p.normal_form, 0.0) + p.score
            lemma = max(weight, key=lambda f: weight[f]) if weight else word
        return lemma.lower().replace("ё", "е")

    def tokens(self, text: str) -> list[Token]:
        out: list[Token] = []
        boundary = False
        sentence_start = True
        quoted = False
        text = text.replace("ё", "е").replace("Ё", "Е").replace("\u2019", "'").replace("\u02bc", "'")
        for t in self.nlp.tokenizer(text):
            raw = t.text
            if t.is_space:
                continue
            if _PUNCT.match(raw) and raw != "n't":
                boundary = True
                if any(c in raw for c in ".!?"):
                    sentence_start = True
                if any(c in raw for c in "«\"“"):
                    quoted = True
                continue
            s = raw.lower()
            name = org = False
            if raw[:1].isupper() and raw.replace("-", "").isalpha() and len(raw) > 1 and raw != "I":
                is_name, unknown = self._proper(raw)
                name = is_name
                camel = any(c.isupper() for c in raw[1:])
                org = (not is_name) and (camel or quoted or (unknown and not sentence_start)) if self._morph else False
                if self._morph is None:
                    name = not sentence_start
            glued = self._unglue(s) if not (name or org) else None
            if glued is not None:  # "вызагнули" -> "вы" "загнули": the recogniser ran words together
                out.append(Token(glued[0], self.lemma(glued[0]), boundary))
                out.append(Token(glued[1], self.lemma(glued[1]), False))
            else:
                out.append(Token(s, self.lemma(s), boundary, name, org))
            boundary = sentence_start = quoted = False
        return out

    _GLUE = ("не", "вы", "мы", "я", "на", "по", "за", "а", "и", "в")

    def _unglue(self, word: str) -> tuple[str, str] | None:
        """Split a word the dictionary does not know into a short function word and a known word."""
        if self._morph is None or len(word) < 6 or not word.isalpha():
            return None
        found = self._kind.get("\0" + word)
        if found is None:
            split = None
            if not self._morph.word_is_known(word):
                for head in self._GLUE:
                    rest = word[len(head) :]
                    if word.startswith(head) and len(rest) >= 4 and self._morph.word_is_known(rest):
                        split = (head, rest)
                        break
            found = split or ("", "")  # type: ignore[assignment]
            if len(self._kind) < 200_000:
                self._kind["\0" + word] = found  # type: ignore[assignment]
        return found if found[0] else None  # type: ignore[return-value]

    def known(self, word: str) -> bool | None:
        """Whether the dictionary knows the word; None where there is no dictionary (not Russian)."""
        if self._morph is None:
            return None
        key = "\1" + word
        found = self._kind.get(key)
        if found is None:
            with self._lock:
                found = self._morph.word_is_known(word)  # type: ignore[assignment]
            if len(self._kind) < 200_000:
                self._kind[key] = found  # type: ignore[assignment]
        return bool(found)

    def is_noun(self, word: str) -> bool | None:
        """Whether the likeliest reading of a word is a noun; None without a dictionary."""
        if self._morph is None:
            return None
        key = "\2" + word
        found = self._kind.get(key)
        if found is None:
            with self._lock:
                found = self._morph.parse(word)[0].tag.POS == "NOUN"  # type: ignore[assignment]
            if len(self._kind) < 200_000:
                self._kind[key] = found  # type: ignore[assignment]
        return bool(found)

    def lemmas(self, text: str) -> list[str]:
        return [t.lemma for t in self.tokens(text)]


@lru_cache(maxsize=16)
def get_normalizer(language: str) -> Normalizer:
    return Normalizer(language)
