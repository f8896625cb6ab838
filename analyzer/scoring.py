"""Scoring a transcript against a script: stages, objections, fillers, metrics and the score.

``score_transcript(transcript, script)`` is pure: no audio, no I/O. It is what re-scoring a stored
transcript calls, and it is fast (see ``benchmarks/speed.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from analyzer.learned import ObjectionModel, objection_model
from analyzer.matching import Match, Matcher, Phrase, PhraseSet, Span
from analyzer.metrics import call_metrics
from analyzer.normalization import Token
from analyzer.results import (
    CallReport,
    Evidence,
    FillerCount,
    ObjectionResult,
    ScoreItem,
    StageResult,
    Status,
    Transcript,
    Utterance,
)
from analyzer.scripts import Objection, Script, Stage
from analyzer.thresholds import DEFAULT, Thresholds

_YOU = {
    "ru": frozenset("вы ваш".split()),
    "en": frozenset("you your yours".split()),
}
_QUESTION_WORDS = {
    "ru": frozenset("что как какой какая какие каким сколько почему зачем когда кто где куда чем ли откуда насколько".split()),
    "en": frozenset("what how which why when who where whom whose".split()),
}


@dataclass(frozen=True)
class _CompiledStage:
    stage: Stage
    any_of: PhraseSet | None
    parts: tuple[tuple[str, PhraseSet], ...]
    forbidden: PhraseSet | None


@dataclass(frozen=True)
class _CompiledObjection:
    objection: Objection
    client: PhraseSet
    negative: PhraseSet | None
    handling: PhraseSet | None


class CompiledScript:
    """A script with its phrasings lemmatised and indexed, ready to score many calls."""

    def __init__(self, script: Script, *, thresholds: Thresholds = DEFAULT):
        self.script = script
        self.t = thresholds
        m = self.matcher = Matcher(script.language, thresholds=thresholds)
        self.stages = tuple(
            _CompiledStage(
                s,
                m.compile(s.phrasings) if s.phrasings else None,
                tuple((p.name, m.compile(p.phrasings)) for p in s.parts),
                m.compile(s.forbidden) if s.forbidden else None,
            )
            for s in script.stages
        )
        self.objections = tuple(
            _CompiledObjection(
                o,
                m.compile(o.client_phrasings, strict=True),
                m.compile(o.not_phrasings) if o.not_phrasings else None,
                m.compile(o.handling_phrasings) if o.handling_phrasings else None,
            )
            for o in script.objections
        )
        h = script.handling
        self.acknowledge = m.compile(h.acknowledge)
        self.clarify = m.compile(h.clarify)
        self.argue = m.compile(h.argue)
        self.give_up = m.compile(h.give_up)
        farewell = next((st for st in script.stages if st.id == "farewell"), None)
        self.farewell = m.compile(farewell.phrasings) if farewell is not None and farewell.phrasings else None
        self.fillers = tuple((f, tuple(m.norm.lemmas(f))) for f in (*script.fillers, *script.stop_words))
        self.question_words = _QUESTION_WORDS.get(script.language, frozenset())
        self.you = _YOU.get(script.language, frozenset())
        self._model: ObjectionModel | None = None

    @property
    def model(self) -> ObjectionModel:
        """The script's learned layer (:func:`analyzer.learned.objection_model`), found once."""
        if self._model is None:
            self._model = objection_model(self.script)
        return self._model


_COMPILED: dict[tuple[int, Thresholds], CompiledScript] = {}


def compile_script(script: Script, *, thresholds: Thresholds = DEFAULT) -> CompiledScript:
    """Compile (and cache) a script; scripts are immutable, so one compiled copy serves all calls."""
    key = (id(script), thresholds)
    found = _COMPILED.get(key)
    if found is None or found.script is not script:
        if len(_COMPILED) >= 32:
            _COMPILED.pop(next(iter(_COMPILED)))
        found = _COMPILED[key] = CompiledScript(script, thresholds=thresholds)
    return found


class _Call:
    """A transcript prepared for matching: tokens per utterance and spans per speaker."""

    def __init__(self, transcript: Transcript, cs: CompiledScript, model: ObjectionModel | None = None):
        self.tr = transcript
        self.cs = cs
        self.model = model
        norm = cs.matcher.norm
        self.utts = transcript.utterances
        self.tokens: list[list[Token]] = [norm.tokens(u.text) for u in self.utts]
        self._spans: dict[str, list[Span]] = {}
        self._single: dict[int, Span] = {}

    def single(self, i: int) -> Span:
        s = self._single.get(i)
        if s is None:
            s = self._single[i] = self.cs.matcher.span((i,), [self.tokens[i]])
        return s

    def spans(self, speaker: str) -> list[Span]:
        """Each utterance of the speaker, and each pair of consecutive ones (a phrase split in two)."""
        if speaker in self._spans:
            return self._spans[speaker]
        out: list[Span] = []
        idx = [i for i, u in enumerate(self.utts) if u.speaker == speaker and self.tokens[i]]
        for n, i in enumerate(idx):
            out.append(self.single(i))
            if n + 1 < len(idx):
                j = idx[n + 1]
                between = [k for k in range(i + 1, j) if self.utts[k].speaker != speaker]
                if all(len(self.tokens[k]) <= self.cs.t.backchannel_words for k in between):
                    out.append(self.cs.matcher.span((i, j), [self.tokens[i], self.tokens[j]]))
        self._spans[speaker] = out
        return out

    def _question_cues(self, i: int) -> tuple[bool, bool, bool, int]:
        """(ends with '?', has a question word, addresses the other side, number of words)."""
        lemmas = {t.lemma for t in self.tokens[i]}
        texts = [t.text for t in self.tokens[i]]
        you = bool(lemmas & self.cs.you) or any(t.endswith(("ете", "ите", "етесь", "итесь")) for t in texts)
        return "?" in self.utts[i].text, bool(lemmas & self.cs.question_words), you, len(texts)

    def is_open_question(self, i: int) -> bool:
        """An open question to the other side: a question word and 'you/your' (or a 2nd-person
        verb); the recogniser often ends a question with a full stop, so '?' is not required."""
        mark, asks, you, n = self._question_cues(i)
        return asks and you and (mark or n >= 4)

    def is_question(self, i: int) -> bool:
        """Any question: with '?', a question word or 'you'; without it, one that opens with a
        question word and addresses the other side."""
        mark, asks, you, n = self._question_cues(i)
        if mark:
            return asks or you
        return you and n >= 4 and self._opens_with_question(i)

    def _opens_with_question(self, i: int) -> bool:
        """A sentence of the utterance opens with a question word (after a particle or two)."""
        starts = [0] + [n for n, t in enumerate(self.tokens[i]) if t.boundary_before]
        for n in starts:
            head = [t.lemma for t in self.tokens[i][n : n + 3]]
            if any(h in self.cs.question_words for h in head):
                return True
        return False

    def evidence(self, span: Span, match: Match) -> Evidence:
        used = sorted({span.owner[p] for p in match.positions}) or list(span.utterances)
        first, last = self.utts[used[0]], self.utts[used[-1]]
        text = " ".join(self.utts[i].text for i in used)
        return Evidence(
            text=text,
            speaker=first.speaker,
            start=first.start,
            end=last.end,
            phrase=match.phrase.text,
            similarity=match.similarity,
            confidence=self._confidence(span, match),
            turn=used[0],
        )

    def _confidence(self, span: Span, match: Match) -> float | None:
        """Mean recogniser probability of the words that matched, when the transcript has words."""
        probs: list[float] = []
        for p in match.positions:
            u = self.utts[span.owner[p]]
            if not u.words:
                continue
            tok = span.tokens[p].text
            best = max(u.words, key=lambda w: _overlap(w.text, tok))
            probs.append(best.probability)
        if probs:
            return sum(probs) / len(probs)
        confs = [self.utts[i].confidence for i in span.utterances if self.utts[i].confidence is not None]
        return min(confs) if confs else None  # type: ignore[type-var]


def _overlap(word: str, token: str) -> int:
    w = re.sub(r"[\W_]+", "", word.lower()).replace("ё", "е")
    return 100 if w == token else (50 if token in w else 0)


def _status(match: Match | None, confidence: float | None, t: Thresholds) -> Status:
    if match is None or match.similarity < t.uncertain:
        return "missed"
    if match.similarity < t.passed:
        return "uncertain"
    if confidence is not None and confidence < t.low_confidence:
        return "uncertain"
    return "passed"


def _in_position(call: _Call, stage: Stage, span: Span) -> bool:
    pos = stage.position
    if pos is None:
        return True
    # a phrase split over two utterances must be in position as a whole: judge by the later one
    u = call.utts[span.utterances[-1]]
    duration = call.tr.duration
    # the clock starts when someone first speaks: ringing before pick-up is not the call
    origin = next((x.start for x in call.utts if x.start is not None), 0.0) or 0.0
    if pos.first_turns is not None:
        own = [i for i, x in enumerate(call.utts) if x.speaker == stage.speaker]
        if span.utterances[-1] not in own[: pos.first_turns]:
            return False
    if u.start is not None:
        if pos.first_seconds is not None and u.start - origin > pos.first_seconds:
            return False
        if duration:
            end = call.utts[span.utterances[-1]].end or u.start
            if pos.last_seconds is not None and end < duration - pos.last_seconds:
                return False
            if pos.last_share is not None and end < duration * (1 - pos.last_share):
                return False
    elif pos.last_share is not None or pos.last_seconds is not None:
        n = len(call.utts)
        share = pos.last_share if pos.last_share is not None else 0.25
        if span.utterances[-1] < n * (1 - share) - 1:
            return False
    return True


def _garbled(call: _Call, stage: Stage, t: Thresholds) -> int | None:
    """The first utterance of the stage's speaker, where the stage belongs, of three or more words
    the recogniser was unsure of (mean word probability under ``low_confidence``): a stage missed
    there may have been said on a bad line. Only a stage with a place (the first seconds or turns,
    the last part) has such a "there": for one that may come anywhere, any unsure utterance of a
    long call would do, and on real audio nearly every call has one, so its "missed" stands."""
    if stage.position is None:
        return None
    for i, u in enumerate(call.utts):
        if u.speaker == stage.speaker and _unsure(call, i, t) and _in_position(call, stage, call.single(i)):
            return i
    return None


def _match_stage(call: _Call, cs: _CompiledStage, *, anywhere: bool = False) -> tuple[Span, Match] | None:
    best: tuple[Span, Match] | None = None
    for span in call.spans(cs.stage.speaker):
        if not anywhere and not _in_position(call, cs.stage, span):
            continue
        if cs.parts:
            found = [call.cs.matcher.best(span, ps) for _, ps in cs.parts]
            m: Match | None = None
            if all(f is not None for f in found):
                weakest = min(found, key=lambda f: f.similarity)  # type: ignore[union-attr]
                positions = tuple(sorted({p for f in found for p in f.positions}))  # type: ignore[union-attr]
                m = Match(weakest.phrase, weakest.similarity, positions)  # type: ignore[union-attr]
            if cs.any_of is not None:  # any one phrasing also does
                alt = call.cs.matcher.best(span, cs.any_of)
                if alt is not None and (m is None or alt.similarity > m.similarity):
                    m = alt
            if m is None:
                continue
        else:
            assert cs.any_of is not None
            found_any = call.cs.matcher.best(span, cs.any_of)
            if found_any is None:
                continue
            m = found_any
        if best is None or m.similarity > best[1].similarity + 1e-9:
            best = (span, m)
    return best


def _stage_results(call: _Call, *, claimed: set[int] | None = None) -> list[StageResult]:
    out: list[StageResult] = []
    t = call.cs.t
    claimed = set(claimed or ())
    results: list[tuple[_CompiledStage, tuple[Span, Match] | None]] = []
    for cs in call.cs.stages:
        found = _match_stage(call, cs) if (cs.any_of or cs.parts) else None
        if found and found[1].similarity >= t.passed and not cs.stage.open_questions:
            claimed.update(found[0].utterances)
        results.append((cs, found))
    for cs, found in results:
        if cs.stage.open_questions and (found is None or found[1].similarity < t.passed):
            questions = [
                i for i, u in enumerate(call.utts)
                if u.speaker == cs.stage.speaker and i not in claimed and call.is_open_question(i)
            ]
            if len(questions) >= cs.stage.open_questions:
                span = call.single(questions[0])
                found = (span, Match(_OPEN_QUESTION, t.passed, tuple(range(len(span.tokens)))))
        evidence = call.evidence(*found) if found else None
        status = _status(found[1] if found else None, evidence.confidence if evidence else None, t)
        note = None
        if status == "missed" and cs.stage.position is not None:
            anywhere = _match_stage(call, cs, anywhere=True) if (cs.any_of or cs.parts) else None
            if anywhere is not None and anywhere[1].similarity >= t.passed:
                at = call.utts[anywhere[0].utterances[0]].start
                note = "said, but not where the script requires" + (f" (at {at:.0f} s)" if at is not None else "")
        garbled = _garbled(call, cs.stage, t) if status == "missed" and note is None else None
        if garbled is not None:
            # the stage may have been said and lost to a bad line: a person decides, not the recogniser
            status = "uncertain"
            at = call.utts[garbled].start
            note = ("no phrasing found, but the speech where it belongs was recognised with low confidence"
                    + (f" (at {at:.0f} s)" if at is not None else "") + ": a person should listen")
        elif status == "missed" and evidence is not None and note is None:
            note = f"closest phrasing only {evidence.similarity:.0f}% similar"
        elif status == "uncertain" and evidence is not None:
            if evidence.similarity < t.passed:
                note = "partial match: a person should listen"
            else:
                note = "the matched words were recognised with low confidence: a person should listen"
        violations: list[Evidence] = []
        if cs.forbidden is not None:
            for span in call.spans(cs.stage.speaker):
                if len(span.utterances) > 1:
                    continue
                m = call.cs.matcher.best(span, cs.forbidden, floor=t.passed)
                if m is not None:
                    violations.append(call.evidence(span, m))
        out.append(
            StageResult(
                id=cs.stage.id,
                title=cs.stage.title,
                status=status,
                required=cs.stage.required,
                weight=cs.stage.weight,
                evidence=evidence if status != "missed" else None,
                note=note,
                violations=tuple(violations),
            )
        )
    return out


_OPEN_QUESTION = Phrase("(open questions to the client)", (), (), False)
_CLARIFYING = Phrase("(clarifying question)", (), (), False)
_ANSWER = Phrase("(acknowledged, then answered at length)", (), (), False)
_LEARNED_ANSWER = Phrase("(an answer, by the learned model)", (), (), False)
_UNSURE_ANSWER = Phrase("(an answer recognised with low confidence)", (), (), False)


@dataclass
class _Raised:
    co: _CompiledObjection
    span: Span
    match: Match
    utterance: int
    learned: float | None = None
    """the learned detector's probability, when it found the objection the phrase list did not"""


def _detect_objections(call: _Call) -> list[_Raised]:
    t = call.cs.t
    raised: list[_Raised] = []
    for i, u in enumerate(call.utts):
        if u.speaker != "client" or not call.tokens[i]:
            continue
        span = call.single(i)
        here: dict[str, _Raised] = {}
        for co in call.cs.objections:
            m = call.cs.matcher.best(span, co.client)
            if m is None:
                continue
            if co.negative is not None:
                neg = call.cs.matcher.best(span, co.negative, floor=t.passed)
                if neg is not None and neg.similarity >= m.similarity:
                    continue
            here[co.objection.type] = _Raised(co, span, m, i)
        if call.model is not None and sum(1 for tok in call.tokens[i] if tok.text[:1].isalnum()) >= 2:
            _learned_objections(call, i, span, here)  # "да", "угу": nothing to learn from
        raised.extend(sorted(here.values(), key=lambda r: call.cs.objections.index(r.co)))
    # a partial match beside a full match of another objection in the same utterance is the
    # full one's words, not a second objection ("это космос, за такие деньги мы так постоим")
    sure = {r.utterance for r in raised if r.match.similarity >= t.passed}
    raised = [r for r in raised if r.match.similarity >= t.passed or r.utterance not in sure]
    # the same objection over consecutive client utterances (no manager turn between) is one
    merged: list[_Raised] = []
    for r in raised:
        prev = next((p for p in reversed(merged) if p.co is r.co), None)
        if prev is not None:
            manager_between = [
                k for k in range(prev.utterance + 1, r.utterance)
                if call.utts[k].speaker == "manager" and len(call.tokens[k]) > call.cs.t.backchannel_words
            ]
            if not manager_between:  # "угу" from the manager does not end the objection
                if r.match.similarity > prev.match.similarity:
                    merged[merged.index(prev)] = r
                continue
        merged.append(r)
    return merged


def _learned_objections(call: _Call, i: int, span: Span, here: dict[str, _Raised]) -> None:
    """What the learned detector finds in client utterance ``i`` beyond the phrase list: an objection
    type at ``learned_passed`` or above, uncertain from ``learned_uncertain``. A phrase list's full
    match stands; the explanation names the words that weighed most."""
    t = call.cs.t
    assert call.model is not None
    probabilities = call.model.detect(call.tokens[i])
    for co in call.cs.objections:
        p = probabilities.get(co.objection.type, 0.0)
        found = here.get(co.objection.type)
        if found is not None and p < t.learned_veto and co.objection.type in probabilities \
                and call.model.support.get(co.objection.type, 0) >= t.learned_veto_support \
                and call.model.strongest(call.tokens[i], co.objection.type) < t.learned_keep:
            del here[co.objection.type]  # the words of the list, in a sentence that raises nothing
            continue
        if p < t.learned_uncertain or (found is not None and found.match.similarity >= t.passed):
            continue
        similarity = t.passed if p >= t.learned_passed else t.uncertain
        if found is not None and found.match.similarity >= similarity:
            continue
        if call.cs.matcher.best(span, co.client, floor=t.passed, negated=True) is not None:
            continue  # "It isn't too expensive": the list's words of the objection, negated
        if co.negative is not None and call.cs.matcher.best(span, co.negative, floor=t.passed) is not None:
            continue  # a look-alike the script names ("это недорого")
        positions = tuple(call.model.evidence_words(call.tokens[i], co.objection.type))
        words = " ".join(span.tokens[k].text for k in positions) or co.objection.title
        here[co.objection.type] = _Raised(co, span, Match(Phrase(words, (), (), False), similarity, positions), i, learned=p)


def _answers(call: _Call, raised: _Raised, until: int | None) -> list[int]:
    """The manager's turns that answer an objection: up to ``handling_turns`` of them within
    ``handling_seconds``, before the client's next objection (``until``)."""
    t = call.cs.t
    obj_time = call.utts[raised.utterance].end
    answers: list[int] = []
    for k in range(raised.utterance + 1, len(call.utts) if until is None else until):
        u = call.utts[k]
        if u.speaker != "manager" or not call.tokens[k]:
            continue
        if obj_time is not None and u.start is not None and u.start - obj_time > t.handling_seconds:
            break
        answers.append(k)
        if len(answers) >= t.handling_turns:
            break
    return answers


def _unsure(call: _Call, i: int, t: Thresholds) -> bool:
    """Three or more words the recogniser was unsure of (mean word probability under ``low_confidence``)."""
    u = call.utts[i]
    return u.confidence is not None and u.confidence < t.low_confidence and len(call.tokens[i]) >= 3


def _learned_handling(call: _Call, raised: _Raised, until: int | None,
                      verdict: tuple[bool | None, Evidence | None, str | None, Status]) -> tuple[bool | None, Evidence | None, str | None, Status]:
    """The learned handler's say on the manager's answer (the first two turns after the objection):
    past ``handled_sure`` it is handled, under ``unhandled_sure`` it is not, whatever the rules found;
    in between the rules' verdict stands."""
    t = call.cs.t
    handled, response, note, status = verdict
    if call.model is None or call.model.handler is None:
        return verdict
    answers = _answers(call, raised, until)
    if not answers:
        return verdict
    p = call.model.handled(raised.co.objection.type, [tok for k in answers for tok in call.tokens[k]])
    if p is None:
        return verdict
    if handled is not True and p > t.handled_sure:
        span = call.single(answers[0])
        ev = call.evidence(span, Match(_LEARNED_ANSWER, t.passed, tuple(range(len(span.tokens)))))
        status = _status(Match(_LEARNED_ANSWER, t.passed, ()), ev.confidence, t)
        return (True if status == "passed" else None), ev, f"answered (learned model: {p:.0%} handled)", status
    if handled is True and p < t.unhandled_sure:
        return False, response, f"the answer does not take up the objection (learned model: {p:.0%} handled)", "missed"
    return verdict


GAVE_UP = "the manager gave up instead of answering"


def _response(
    call: _Call, raised: _Raised, *, until: int | None = None
) -> tuple[bool | None, Evidence | None, str | None, Status]:
    """Did the manager answer the objection in the next turns?

    Handled: a handling phrasing of this objection, a clarifying question, or an acknowledgement
    followed by an argument or offer. Not handled: giving up, going on with the pitch, silence.
    ``until``: the utterance where the client raises the next objection; what the manager says
    after it answers that one.
    """
    t = call.cs.t
    cs = call.cs
    answers = _answers(call, raised, until)
    if not answers:
        return False, None, "the manager said nothing after the objection", "missed"
    m = call.cs.matcher
    partial: tuple[Span, Match] | None = None
    acknowledged: tuple[Span, Match] | None = None
    for k in answers:
        span = call.single(k)
        specific = m.best(span, raised.co.handling) if raised.co.handling is not None else None
        if specific is not None and specific.similarity >= t.passed:
            ev = call.evidence(span, specific)
            status = _status(specific, ev.confidence, t)
            return (True if status == "passed" else None), ev, None, status
        quit_ = m.best(span, cs.give_up, floor=t.passed)
        if quit_ is None and cs.farewell is not None:
            quit_ = m.best(span, cs.farewell, floor=t.passed)  # agreed and said goodbye
        if quit_ is not None:
            return False, call.evidence(span, quit_), GAVE_UP, "missed"
        ack = m.best(span, cs.acknowledge, floor=t.passed)
        acknowledged = acknowledged or ((span, ack) if ack is not None else None)
        if call.is_question(k):
            clar = m.best(span, cs.clarify, floor=0) or Match(_CLARIFYING, t.passed, tuple(range(len(span.tokens))))
            ev = call.evidence(span, Match(clar.phrase, max(clar.similarity, t.passed), clar.positions))
            status = _status(Match(clar.phrase, t.passed, clar.positions), ev.confidence, t)
            return (True if status == "passed" else None), ev, "a clarifying question", status
        if acknowledged is not None:
            arg = m.best(span, cs.argue, floor=t.passed)
            if arg is None and len(span.tokens) >= t.answer_words:
                arg = Match(_ANSWER, t.passed, tuple(range(len(span.tokens))))
            if arg is not None:
                ev = call.evidence(span, arg)
                status = _status(arg, ev.confidence, t)
                return (True if status == "passed" else None), ev, "acknowledged and answered", status
        if specific is not None and partial is None:
            partial = (span, specific)
    if partial is not None:
        return None, call.evidence(*partial), "a partial answer: a person should listen", "uncertain"
    if acknowledged is not None:
        return False, call.evidence(*acknowledged), "acknowledged but not answered", "missed"
    return False, None, "no acknowledgement or answer in the manager's next turns", "missed"


def _objection_results(call: _Call) -> list[ObjectionResult]:
    out: list[ObjectionResult] = []
    t = call.cs.t
    found = _detect_objections(call)
    for raised in found:
        client = call.evidence(raised.span, raised.match)
        detect_status = _status(raised.match, client.confidence, t)
        later = [r.utterance for r in found if r.utterance > raised.utterance]
        until = min(later, default=None)
        handled, response, note, status = _learned_handling(call, raised, until, _response(call, raised, until=until))
        if status == "missed" and note != GAVE_UP:
            garbled = next((k for k in _answers(call, raised, until) if _unsure(call, k, t)), None)
            if garbled is not None:  # the answer may be there, lost to a bad line: a person decides
                handled, status = None, "uncertain"
                response = call.evidence(call.single(garbled), Match(_UNSURE_ANSWER, 0.0, ()))
                note = "the answer was recognised with low confidence: a person should listen"
        if raised.learned is not None:
            how = f"found by the learned model ({raised.learned:.0%}) from the words: {raised.match.phrase.text}"
            note = how + (f"; {note}" if note else "")
        if detect_status == "uncertain":
            status = "uncertain"
            note = "the objection itself is uncertain: a person should listen" + (f"; {note}" if note else "")
        o = raised.co.objection
        result = ObjectionResult(
            type=o.type,
            title=o.title,
            status=status,
            handled=handled,
            client=client,
            response=response,
            recommended=tuple(o.recommended),
            note=note,
        )
        prev = next((k for k in range(len(out) - 1, -1, -1) if out[k].type == o.type), None)
        if prev is not None and out[prev].handled is False and out[prev].status != "uncertain" and status != "uncertain":
            # the client insists on an objection left unanswered: one objection, judged by how the
            # manager answered in the end, reported where it was first raised
            at = f" at {client.start:.0f} s" if client.start is not None else ""
            again = (
                f"raised again{at} and answered then" if handled else f"raised again{at}, still not answered"
            )
            out[prev] = dataclasses.replace(
                result, client=out[prev].client, note=again + (f"; {note}" if note else "")
            )
            continue
        out.append(result)
    return out


def _fillers(call: _Call) -> list[FillerCount]:
    counts: dict[tuple[str, str], int] = {}
    for i, toks in enumerate(call.tokens):
        lemmas = [t.lemma for t in toks]
        speaker = call.utts[i].speaker
        for phrase, pl in call.cs.fillers:
            n = len(pl)
            if not n:
                continue
            hits = sum(1 for s in range(len(lemmas) - n + 1) if tuple(lemmas[s : s + n]) == pl)
            if hits:
                counts[(phrase, speaker)] = counts.get((phrase, speaker), 0) + hits
    return [FillerCount(p, s, c) for (p, s), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]  # type: ignore[arg-type]


def weighted_score(stages: list[StageResult], objections: list[ObjectionResult], script: Script) -> tuple[float | None, list[ScoreItem]]:
    """The score of a call and its breakdown: the weighted share of what was done, over what was due and decided.

    Uncertain verdicts are left out of both sides until a person decides them, so the machine
    never fails a manager on words it could not hear. Optional stages count only when done.
    Each forbidden phrasing said costs the script's violation penalty.
    """
    items: list[ScoreItem] = []
    weights = {o.type: o.weight for o in script.objections}
    penalty = script.violation_penalty
    due = earned = 0.0
    for s in stages:
        if s.status == "uncertain":
            items.append(ScoreItem("stage", s.id, "uncertain", s.weight, 0.0, "left out until a person decides"))
            continue
        if s.status == "missed" and not s.required:
            items.append(ScoreItem("stage", s.id, "missed", 0.0, 0.0, "optional stage not done: no loss"))
            continue
        got = s.weight if s.passed else 0.0
        due += s.weight
        earned += got
        items.append(ScoreItem("stage", s.id, s.status, s.weight, got, "done" if s.passed else "required stage missed"))
    for o in objections:
        weight = weights.get(o.type, 10.0)
        if o.status == "uncertain":
            items.append(ScoreItem("objection", o.type, "uncertain", weight, 0.0, "left out until a person decides"))
            continue
        got = weight if o.handled else 0.0
        due += weight
        earned += got
        items.append(ScoreItem("objection", o.type, o.status, weight, got, "handled" if o.handled else "not handled"))
    raw = 100.0 * earned / due if due else None
    violations = sum(len(s.violations) for s in stages)
    if violations and raw is not None:
        cost = min(raw, penalty * violations)
        items.append(ScoreItem("penalty", "forbidden_phrasings", f"{violations} said", 0.0, -cost, "forbidden phrasings"))
        raw -= cost
    if raw is not None:
        # express each line as points of the final score
        scale = 100.0 / due if due else 0.0
        items = [
            ScoreItem(i.kind, i.id, i.status, i.weight * scale, i.earned * scale if i.kind != "penalty" else i.earned, i.reason)
            for i in items
        ]
    return raw, items


def score_transcript(
    transcript: Transcript, script: Script, *, thresholds: Thresholds = DEFAULT, model: ObjectionModel | None = None
) -> CallReport:
    """Score one transcript against a script. Pure and fast: no audio, no I/O. ``model``: the learned
    layer to use (default: the script's own, :func:`analyzer.learned.objection_model`; none when
    ``thresholds.learned`` is off)."""
    cs = compile_script(script, thresholds=thresholds)
    if thresholds.learned and model is None:
        model = cs.model
    call = _Call(transcript, cs, model if thresholds.learned else None)
    objections = _objection_results(call)
    # an utterance that answers an objection is handling, not needs discovery
    answered = {o.response.turn for o in objections if o.response is not None}
    stages = _stage_results(call, claimed=answered)
    fillers = _fillers(call)
    score, breakdown = weighted_score(stages, objections, script)
    if not any(call.tokens):
        score = None  # nothing was heard: no grounds to score the manager
    metrics = call_metrics(
        transcript, fillers=fillers, question_words=cs.question_words, tokens=call.tokens,
        backchannel_words=cs.t.backchannel_words,
    )
    warnings: list[str] = []
    if transcript.roles_inferred:
        warnings.append("mono recording: speaker roles were inferred, check them before acting on the verdicts")
    if not any(call.tokens):
        warnings.append("no speech: the call is not scored")
    elif not any(u.speaker == "manager" for u in transcript.utterances):
        warnings.append("no manager speech found")
    return CallReport(
        source=transcript.source,
        language=transcript.language,
        duration=transcript.duration,
        script_id=script.id,
        script_version=script.version,
        stages=tuple(stages),
        objections=tuple(objections),
        fillers=tuple(fillers),
        metrics=metrics,
        transcript=transcript,
        score=score,
        score_breakdown=tuple(breakdown),
        warnings=tuple(warnings),
    )


def role_hint(script: Script, *, thresholds: Thresholds = DEFAULT) -> Callable[[str], float]:
    """For splitting mono calls: +1 when a sentence sounds like the manager (a script stage, a
    question to the other side), -1 like the client (an objection, a short answer), 0 unknown."""
    cs = compile_script(script, thresholds=thresholds)
    m = cs.matcher

    def hint(text: str) -> float:
        tr = Transcript(script.language, (Utterance("manager", text),))
        call = _Call(tr, cs)
        if not call.tokens[0]:
            return 0.0
        span = call.single(0)
        if any(o.client is not None and m.best(span, o.client, floor=thresholds.passed) for o in cs.objections):
            return -1.0
        for st in cs.stages:
            sets = [ps for ps in (st.any_of, *(p for _, p in st.parts)) if ps is not None]
            if any(m.best(span, ps, floor=thresholds.passed) for ps in sets):
                # "добрый день" alone is said by both sides: not a clue either way
                return 1.0 if len(call.tokens[0]) > 2 else 0.0
        if call.is_open_question(0):
            return 1.0
        if len(call.tokens[0]) <= 3:
            return -1.0
        return 0.0

    return hint


__all__ = ["CompiledScript", "compile_script", "score_transcript", "Utterance"]
