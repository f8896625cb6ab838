"""Fuzzy matching of script phrasings against utterances, on lemmas.

A phrasing matches a span of one speaker's speech (an utterance, or two consecutive utterances of
the same speaker) when enough of its lemmas, weighted (function words count less), are found
close together in the span. Each lemma may differ from the phrasing's by recognition errors
(rapidfuzz ratio), word order is free, a few extra words are allowed, and a negation in front of
the matched words ("не дорого", "not expensive") cancels the match of a phrasing that has none.
Never against the whole transcript.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from analyzer.normalization import Normalizer, Token, get_normalizer
from analyzer.thresholds import DEFAULT, Thresholds

NUMBER = "{number}"
NAME = "{name}"
ORG = "{org}"
_PREFIX_NEGATIONS = frozenset({"не", "not", "n't", "never"})
"""Negations that stand right before the word they negate ("нет" may follow: "времени нет")."""
_FIXED_ORDER = frozenset({"en"})
"""Languages whose short phrasings must be found in their order (Russian word order is free)."""
_PUNCT_INSIDE = re.compile(r"\w[^\w\s{}+'\u2019-]+\s*\w")
_PLACEHOLDERS = {NUMBER: "qqnumberqq", NAME: "qqnameqq", ORG: "qqorgqq"}
_NUMBER_WORDS = {
    "ru": {
        "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять", "десять",
        "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать", "шестнадцать",
        "семнадцать", "восемнадцать", "девятнадцать", "двадцать", "тридцать", "сорок", "полдень",
        "первый", "второй", "третий", "четвертый", "пятый", "десятый", "полтора", "половина",
    },
    "en": {
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "fifteen", "twenty", "thirty", "noon", "first", "second", "third", "half",
    },
}
# Function words weigh less in a phrasing than content words. Deliberately short lists: spaCy's
# stop-word lists hold words that carry the meaning of a script phrase ("потом", "уже", "other").
_FUNCTION_WORDS = {
    "ru": frozenset(
        """и а но или да ну же ли бы вот в во на с со к ко по за из от до у о об про для при без
        через над под это этот тот то так как что чтобы я ты он она оно мы вы они мой твой наш ваш
        его её их мне меня нам нас вам вас тебе себя его ему ей им ими""".split()
    ),
    "en": frozenset(
        """a an the and or but so of to in on at for from with by about as into than then that this
        these those it its i me my we us our you your he she they them their is are was were be been
        am do does did have has had will would can could shall should may might just""".split()
    ),
}


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str
    lemmas: tuple[str, ...]
    weights: tuple[float, ...]
    negated: bool
    """The phrasing itself contains a negation ("не нужно"), so a negation in the span is expected."""
    required: frozenset[int] = frozenset()
    """Positions of words marked with + in the phrasing: they must be found."""
    punctuated: bool = False
    """The phrasing has a punctuation mark between its words ("нет, спасибо")."""
    short: bool = False
    """At most three content words: a chance co-occurrence of its words is likely."""

    @property
    def total(self) -> float:
        return sum(self.weights)


@dataclass(frozen=True, slots=True)
class PhraseSet:
    phrases: tuple[Phrase, ...]
    weighted: dict[str, tuple[tuple[int, float], ...]]
    """lemma -> (phrasing, the weight of the lemma's words in it relative to the phrasing's total):
    the phrasings a lemma may start a match of, and how far it takes them"""


@dataclass(frozen=True, slots=True)
class Match:
    phrase: Phrase
    similarity: float
    positions: tuple[int, ...]
    """Token positions in the span that matched."""


class Span:
    """Tokens of one or more consecutive utterances of one speaker."""

    __slots__ = ("utterances", "tokens", "owner", "_hits", "_top")

    def __init__(self, utterances: tuple[int, ...], tokens: list[Token], owner: list[int]):
        self.utterances = utterances
        self.tokens = tokens
        self.owner = owner
        self._hits: dict[str, list[tuple[int, float]]] | None = None
        self._top: dict[str, float] = {}


class Matcher:
    """Compiles phrasings of one language and finds them in spans.

    Build every :class:`PhraseSet` first, then match: the fuzzy look-up table of lemmas is built
    from all compiled phrasings.
    """

    def __init__(self, language: str, *, thresholds: Thresholds = DEFAULT, normalizer: Normalizer | None = None):
        self.language = language
        self.t = thresholds
        self.norm = normalizer or get_normalizer(language)
        self._stop = _FUNCTION_WORDS.get(language, frozenset())
        self._numbers = _NUMBER_WORDS.get(language, set())
        self._vocab: set[str] = set()
        self._choices: list[str] | None = None
        self._similar: dict[str, tuple[tuple[str, float], ...]] = {}
        self._stems: dict[str, list[str]] = {}
        self._surfaces: dict[str, str] = {}
        """Long word forms of the phrasings -> their lemma: a misheard form ("пришелите") is
        closer to the phrasing's form ("пришлите") than its guessed lemma is to the lemma."""

    # -- compiling ---------------------------------------------------------------------------
    def compile(self, texts: Iterable[str], *, strict: bool = False) -> PhraseSet:
        """Compile phrasings. ``strict``: in a phrasing with a single content word, the function
        words count fully ("у нас свой" is not "своими силами"): for objections, where a false
        find costs the manager a verdict."""
        phrases: list[Phrase] = []
        for text in texts:
            lemmas: list[str] = []
            marked = text
            for key, word in _PLACEHOLDERS.items():
                marked = marked.replace(key, f" {word} ")
            back = {w: k for k, w in _PLACEHOLDERS.items()}
            required: set[int] = set()
            for raw in marked.split():  # "+до пятницы": a word marked + must be there
                if raw.startswith("+") and len(raw) > 1:
                    required.add(len(self.norm.tokens(marked[: marked.index(raw)])))
            marked = " ".join(w[1:] if w.startswith("+") else w for w in marked.split())
            for tok in self.norm.tokens(marked):
                lemmas.append(back.get(tok.text, tok.lemma))
                if len(tok.text) >= 8:
                    self._surfaces[tok.text] = tok.lemma
            if not lemmas:
                continue
            content = [lem for lem in lemmas if lem not in self._stop and lem not in self.norm.negations]
            # with one content word, the function words carry the meaning too: "у нас свой"
            light = self.t.stop_word_weight if (len(content) >= 2 or not strict) else 1.0
            weights = tuple(
                1.0 if (lem in self.norm.negations or lem in _PLACEHOLDERS or lem not in self._stop or i in required) else light
                for i, lem in enumerate(lemmas)
            )
            phrase = Phrase(
                text,
                tuple(lemmas),
                weights,
                any(lem in self.norm.negations for lem in lemmas),
                frozenset(required),
                _PUNCT_INSIDE.search(text.strip()) is not None,
                len(content) <= 3,
            )
            phrases.append(phrase)
            self._vocab.update(lemmas)
        self._choices = None
        weighted: dict[str, list[tuple[int, float]]] = {}
        for idx, ph in enumerate(phrases):
            share: dict[str, float] = {}
            for w, lem in zip(ph.weights, ph.lemmas, strict=True):
                share[lem] = share.get(lem, 0.0) + w / ph.total
            for lem, v in share.items():
                weighted.setdefault(lem, []).append((idx, v))
        return PhraseSet(tuple(phrases), {k: tuple(v) for k, v in weighted.items()})

    # -- matching ----------------------------------------------------------------------------
    def span(self, utterances: tuple[int, ...], token_lists: Sequence[list[Token]]) -> Span:
        tokens: list[Token] = []
        owner: list[int] = []
        for idx, toks in zip(utterances, token_lists, strict=True):
            if tokens and toks:
                toks = [Token(toks[0].text, toks[0].lemma, True), *toks[1:]]
            tokens.extend(toks)
            owner.extend([idx] * len(toks))
        return Span(utterances, tokens, owner)

    def _similar_lemmas(self, lemma: str) -> tuple[tuple[str, float], ...]:
        """Phrasing lemmas this lemma may stand for, with a similarity 0-100.

        Recognition errors are allowed as edits, fewer on short words: none up to 5 letters (one
        letter turns "price" into "pricey"), one up to 9, two beyond. A negation prefix is never
        an edit ("недорого" is not "дорого").
        """
        found = self._similar.get(lemma)
        if found is not None:
            return found
        if self._choices is None:
            self._choices = sorted(self._vocab - set(_PLACEHOLDERS))
            self._stems = {}
            for c in self._choices:
                self._stems.setdefault(c[:5], []).append(c)
            self._similar.clear()
        out: list[tuple[str, float]] = []
        if lemma in self._vocab:
            out.append((lemma, 100.0))
        if NUMBER in self._vocab and (lemma in self._numbers or any(c.isdigit() for c in lemma)):
            out.append((NUMBER, 100.0))
        n = len(lemma)
        edits = 0 if n <= 5 else (1 if n <= 9 else 2)
        if edits == 1 and n >= 8 and self.norm.known(lemma) is False:
            edits = 2  # a misheard long word ("друговато" for "дороговато"); the similarity floor still applies
        if edits:
            for choice, dist, _ in process.extract(
                lemma, self._choices, scorer=Levenshtein.distance, score_cutoff=edits, limit=None
            ):
                if dist == 0 or len(choice) <= 5 or _negated_form(choice, lemma):
                    continue
                if max(n, len(choice)) < 8 and self.norm.known(lemma) and self.norm.known(choice):
                    # two real short words are other words ("бегать" / "убегать"), unless they differ
                    # in one unstressed vowel, the recogniser's commonest slip ("никогда" for
                    # "некогда"), and are the same kind of word ("дорога" is not "дорого")
                    if not (_vowel_slip(lemma, choice) and self.norm.is_noun(lemma) == self.norm.is_noun(choice)):
                        continue
                sim = 100.0 * (1 - dist / max(n, len(choice)))
                if sim >= self.t.token_similarity:
                    out.append((choice, sim))
        if n >= 6:
            # same stem, other part of speech: "удобный"/"удобно", "дорогой"/"дорого"
            have = {c for c, _ in out}
            for choice in self._stems.get(lemma[:5], ()):
                common = len(_common_prefix(choice, lemma))
                if choice not in have and len(choice) >= 6 and common >= max(5, max(n, len(choice)) - 3):
                    if self.norm.is_noun(choice) != self.norm.is_noun(lemma):
                        continue  # a noun and an adverb of one stem are other words: "дорога" / "дорого"
                    out.append((choice, self.t.token_similarity + 5.0))
        result = tuple(out)
        if len(self._similar) < 1_000_000:
            self._similar[lemma] = result
        return result

    def _similar_forms(self, text: str) -> tuple[tuple[str, float], ...]:
        key = "\0" + text  # shares the cache with lemmas, apart
        found = self._similar.get(key)
        if found is None:
            forms = list(self._surfaces)
            # a word the dictionary does not know is a misheard one: allow two slips in a long word
            cutoff = 2 if self.norm.known(text) is False else 1
            found = tuple(
                (self._surfaces[form], sim)
                for form, dist, _ in process.extract(text, forms, scorer=Levenshtein.distance, score_cutoff=cutoff, limit=None)
                if not _negated_form(form, text)
                and (sim := 100.0 * (1 - dist / max(len(form), len(text)))) >= (self.t.token_similarity if dist > 1 else 0.0)
            )
            if len(self._similar) < 1_000_000:
                self._similar[key] = found
        return found

    def _hits(self, span: Span) -> dict[str, list[tuple[int, float]]]:
        if span._hits is None:
            hits: dict[str, list[tuple[int, float]]] = {}
            for pos, tok in enumerate(span.tokens):
                best: dict[str, float] = {}
                keys = (tok.lemma, tok.text) if len(tok.text) >= 8 and tok.text != tok.lemma else (tok.lemma,)
                for key in keys:  # a misheard long word may get a wrong lemma: try its form too
                    for choice, score in self._similar_lemmas(key):
                        if score > best.get(choice, 0.0):
                            best[choice] = score
                if len(tok.text) >= 8 and self._surfaces:
                    for lemma, sim in self._similar_forms(tok.text):
                        if sim > best.get(lemma, 0.0):
                            best[lemma] = sim
                if tok.text != tok.lemma and tok.text in self._vocab:
                    best[tok.text] = 100.0
                if tok.lemma == "ни" and "не" in self._vocab:
                    best["не"] = max(best.get("не", 0.0), 90.0)  # "ни до того": a misheard "не"
                if tok.name:
                    best[NAME] = 100.0
                if tok.org:
                    best[ORG] = 100.0
                for choice, score in best.items():
                    hits.setdefault(choice, []).append((pos, score))
            span._hits = hits
            span._top = {lem: max(sc for _, sc in h) for lem, h in hits.items()}
        return span._hits

    def best(self, span: Span, phrase_set: PhraseSet, *, floor: float | None = None, negated: bool = False) -> Match | None:
        """The best-matching phrasing of the set in the span, if any reaches ``floor``; with ``negated``,
        the best one the span says with a negation in front ("it isn't too expensive")."""
        floor = self.t.uncertain if floor is None else floor
        hits = self._hits(span)
        # the best a phrasing could reach (every word at its best similarity in the span), summed
        # over the span's words only: most phrasings share a word or two and are dropped here
        bound: dict[int, float] = {}
        for lemma, top in span._top.items():
            for idx, share in phrase_set.weighted.get(lemma, ()):
                bound[idx] = bound.get(idx, 0.0) + share * top
        best: Match | None = None
        for idx in sorted(bound):
            if bound[idx] < floor - 1e-9:
                continue
            m = self._score(span, phrase_set.phrases[idx], hits, floor, negated=negated)
            # of equally similar phrasings the one with more words is the better evidence
            # ("приветствую вас" over "приветствую"), then the first in the script
            if m is not None and (best is None or (m.similarity, len(m.positions)) > (best.similarity, len(best.positions))):
                best = m
        return best

    def _score(self, span: Span, phrase: Phrase, hits: dict[str, list[tuple[int, float]]], floor: float, *,
               negated: bool = False) -> Match | None:
        total = phrase.total  # best() has checked that the phrasing can reach the floor at all
        per_token = [hits.get(lem, ()) for lem in phrase.lemmas]
        k = len(phrase.lemmas)
        width = k + self.t.window_slack + k // 2
        starts = sorted({p for h in per_token for p, _ in h})
        best: Match | None = None
        for s in starts:
            got = 0.0
            positions: list[int] = []
            for w, h in zip(phrase.weights, per_token, strict=True):
                top, top_pos = 0.0, -1
                for p, sim in h:
                    if s <= p < s + width and sim > top and p not in positions:
                        top, top_pos = sim, p
                if top_pos >= 0:
                    got += w * top
                    positions.append(top_pos)
            sim = got / total
            if sim < floor or (best is not None and sim <= best.similarity):
                continue
            if not self._covers(phrase, per_token, s, width):
                continue
            if phrase.short and not phrase.punctuated:
                disordered = any(b < a for a, b in zip(positions, positions[1:], strict=False))
                if disordered and (self.language in _FIXED_ORDER or self._straddles(span, positions)):
                    continue  # English word order carries meaning: "want to see? you" is not "see you"
                if phrase.negated and self._answer_particle(span, positions):
                    continue
            if negated != (not phrase.negated and self.negated(span.tokens, positions)):
                continue
            best = Match(phrase, sim, tuple(sorted(positions)))
        return best

    def _covers(self, phrase: Phrase, per_token: list, start: int, width: int) -> bool:
        """Content words must be there: all of them in short phrasings, all but one in four in long ones.

        A negation in the phrasing must come right before the word it negates ("не надо", not
        "надо ... не могу").
        """
        # content words by what they are, not by weight: strict phrasings weigh function words fully
        content = [
            i for i, lem in enumerate(phrase.lemmas)
            if (lem not in self._stop and lem not in self.norm.negations) or lem in _PLACEHOLDERS
        ]
        for i in phrase.required:
            if not any(start <= p < start + width for p, _ in per_token[i]):
                return False
        found = {i for i in content if any(start <= p < start + width for p, _ in per_token[i])}
        allowed_missing = len(content) // 4
        if len(content) - len(found) > allowed_missing:
            return False
        for i, lem in enumerate(phrase.lemmas):
            if lem in self.norm.negations and not any(start <= p < start + width for p, _ in per_token[i]):
                return False  # "нет времени" needs its "нет"
        for i, lem in enumerate(phrase.lemmas[:-1]):
            if lem in self.norm.negations and lem in _PREFIX_NEGATIONS:
                neg = [p for p, _ in per_token[i] if start <= p < start + width]
                nxt = [p for p, _ in per_token[i + 1] if start <= p < start + width]
                if not any(b - a == 1 for a in neg for b in nxt):
                    return False
        return True

    @staticmethod
    def _straddles(span: Span, positions: list[int]) -> bool:
        """The words sit on both sides of a punctuation mark inside one utterance. Checked for short
        phrasings found out of order: "Go on, I've got a few" is not "I've got to go"; "Это
        дороже, чем сейчас" (in order) still counts, and so does a phrase split over two
        utterances of one speaker."""
        lo, hi = min(positions), max(positions)
        return any(span.tokens[p].boundary_before and span.owner[p] == span.owner[p - 1] for p in range(lo + 1, hi + 1))

    def _answer_particle(self, span: Span, positions: list[int]) -> bool:
        """The phrasing's negation was found as an answer ("Нет, по деньгам нормально" is not
        "нет денег"): a "нет" followed by a punctuation mark, with the rest of the phrase after
        it. "Денег нет, увы" keeps its negation."""
        toks = span.tokens
        for p in positions:
            if toks[p].lemma not in self.norm.negations or p + 1 >= len(toks):
                continue
            if toks[p + 1].boundary_before and span.owner[p + 1] == span.owner[p] and any(q > p for q in positions):
                return True
        return False

    def negated(self, tokens: Sequence[Token], positions: Sequence[int]) -> bool:
        """A negation stands before the words at ``positions`` or among them, unmatched ("не дорого")."""
        if not self.norm.negations or not positions:
            return False
        lo, hi = min(positions), max(positions)
        used = set(positions)
        for p in range(lo, hi + 1):
            if p not in used and tokens[p].lemma in _PREFIX_NEGATIONS:
                return True
        j = lo - 1
        while j >= max(0, lo - 3) and not tokens[j + 1].boundary_before:
            # "не дорого" negates; "нет это дорого" (an answer particle, comma lost) does not
            if tokens[j].lemma in _PREFIX_NEGATIONS or tokens[j].text in _PREFIX_NEGATIONS:
                return True
            j -= 1
        return False



def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


_VOWELS = frozenset("аеёиоуыэюяaeiouy")


def _vowel_slip(a: str, b: str) -> bool:
    """Same length, one letter apart, both letters vowels."""
    if len(a) != len(b):
        return False
    diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return len(diff) == 1 and diff[0][0] in _VOWELS and diff[0][1] in _VOWELS


def _negated_form(a: str, b: str) -> bool:
    """'недорого' is not a misrecognised 'дорого': a negation prefix flips the meaning."""
    for prefix in ("не", "un", "in"):
        if a == prefix + b or b == prefix + a:
            return True
    return False
