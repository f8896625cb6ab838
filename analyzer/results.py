"""Typed results at the library's boundary: transcripts in, reports out.

All are frozen dataclasses; ``to_dict`` gives the JSON shape documented in
``analyzer/report.schema.json`` and ``Transcript.from_dict`` reads a stored transcript back, so a
call can be re-scored without transcribing again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from analyzer.errors import TranscriptFormatError

Speaker = Literal["manager", "client"]
Status = Literal["passed", "missed", "uncertain"]
SPEAKERS: tuple[str, ...] = ("manager", "client")


def _clean(text: str) -> str:
    """Drop what cannot be written as UTF-8 (lone surrogates from broken exports)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with its time span and the recogniser's probability."""

    text: str
    start: float
    end: float
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class Utterance:
    """A stretch of speech of one speaker: a turn or part of one."""

    speaker: Speaker
    text: str
    start: float | None = None
    end: float | None = None
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    """Mean word probability, or ``None`` when the text came without confidences."""

    def to_dict(self, *, words: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "speaker": self.speaker,
            "start": _r(self.start),
            "end": _r(self.end),
            "text": self.text,
            "confidence": _r(self.confidence, 3),
        }
        if words:
            out["words"] = [
                {"text": w.text, "start": _r(w.start), "end": _r(w.end), "probability": _r(w.probability, 3)}
                for w in self.words
            ]
        return out


@dataclass(frozen=True, slots=True)
class Transcript:
    """A call as one timeline of utterances with speaker roles."""

    language: str
    utterances: tuple[Utterance, ...]
    duration: float | None = None
    roles_inferred: bool = False
    """True when roles were guessed (mono recording) rather than read from channels."""
    source: str | None = None
    channels: int | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self, *, words: bool = True) -> dict[str, Any]:
        return {
            "language": self.language,
            "duration": _r(self.duration),
            "roles_inferred": self.roles_inferred,
            "source": self.source,
            "channels": self.channels,
            "warnings": list(self.warnings),
            "turns": [u.to_dict(words=words) for u in self.utterances],
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> Transcript:
        """Read ``{"language": "ru", "turns": [{"speaker", "text", "start"?, "end"?}]}``.

        Raises :class:`TranscriptFormatError` naming the offending field.
        """
        if not isinstance(data, dict):
            raise TranscriptFormatError("a transcript must be a JSON object with 'language' and 'turns'")
        language = data.get("language")
        if not isinstance(language, str) or not language:
            raise TranscriptFormatError("'language' is required: a language code such as 'ru' or 'en'")
        turns = data.get("turns", data.get("utterances"))
        if turns is None and isinstance(data.get("transcript"), list):
            turns = data["transcript"]  # a callqa report: re-score its transcript
        if not isinstance(turns, list):
            raise TranscriptFormatError("'turns' is required: a list of {speaker, text, start?, end?}")
        utterances: list[Utterance] = []

        def number(value: Any, where: str, *, lo: float | None = None, hi: float | None = None) -> float | None:
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise TranscriptFormatError(f"{where}: expected a finite number, got {value!r}")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise TranscriptFormatError(f"{where}: {value} is out of range {lo}..{hi}")
            return float(value)

        for i, turn in enumerate(turns):
            where = f"turns[{i}]"
            if not isinstance(turn, dict):
                raise TranscriptFormatError(f"{where}: expected an object, got {type(turn).__name__}")
            speaker = turn.get("speaker")
            if speaker not in SPEAKERS:
                raise TranscriptFormatError(
                    f"{where}.speaker: {speaker!r} is not a speaker; use one of: {', '.join(SPEAKERS)}"
                )
            text = turn.get("text")
            if not isinstance(text, str):
                raise TranscriptFormatError(f"{where}.text: expected a string")
            start = number(turn.get("start"), f"{where}.start", lo=0)
            end = number(turn.get("end"), f"{where}.end", lo=0)
            if start is not None and end is not None and end < start:
                raise TranscriptFormatError(f"{where}.end: {end} is before start {start}")
            words: list[Word] = []
            raw_words = turn.get("words") or []
            if not isinstance(raw_words, list):
                raise TranscriptFormatError(f"{where}.words: expected a list of {{text, start, end, probability}}")
            for j, w in enumerate(raw_words):
                wwhere = f"{where}.words[{j}]"
                if not isinstance(w, dict) or not isinstance(w.get("text"), str):
                    raise TranscriptFormatError(f"{wwhere}: expected {{text, start, end, probability}}")
                words.append(
                    Word(
                        _clean(w["text"]),
                        number(w.get("start"), f"{wwhere}.start", lo=0) or 0.0,
                        number(w.get("end"), f"{wwhere}.end", lo=0) or 0.0,
                        number(w.get("probability", 1.0), f"{wwhere}.probability", lo=0, hi=1) or 0.0,
                    )
                )
            utterances.append(
                Utterance(
                    speaker=speaker,
                    text=_clean(text).strip(),
                    start=start,
                    end=end,
                    words=tuple(words),
                    confidence=number(turn.get("confidence"), f"{where}.confidence", lo=0, hi=1),
                )
            )
        if utterances and all(u.start is not None for u in utterances):
            # per-channel exports list one side, then the other: put them on one timeline
            utterances.sort(key=lambda u: u.start)  # type: ignore[arg-type,return-value]
        duration = number(data.get("duration"), "duration", lo=0)
        if duration is None:
            ends = [u.end for u in utterances if u.end is not None]
            duration = max(ends) if ends else None
        warnings = data.get("warnings") or []
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise TranscriptFormatError("warnings: expected a list of strings")
        channels = data.get("channels")
        if channels is not None and channels not in (1, 2):
            raise TranscriptFormatError(f"channels: expected 1 or 2, got {channels!r}")
        src = data.get("source")
        return cls(
            language=language,
            utterances=tuple(utterances),
            duration=duration,
            roles_inferred=bool(data.get("roles_inferred", False)),
            source=source if source is not None else (src if isinstance(src, str) else None),
            channels=channels,
            warnings=tuple(warnings),
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where in the call a verdict comes from."""

    text: str
    speaker: Speaker
    start: float | None
    end: float | None
    phrase: str
    """The script phrasing that matched."""
    similarity: float
    """0 to 100: how closely the words matched the phrasing."""
    confidence: float | None = None
    """Mean recogniser probability of the matched words, when known."""
    turn: int = 0
    """Index of the utterance in ``transcript``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "speaker": self.speaker,
            "start": _r(self.start),
            "end": _r(self.end),
            "phrase": self.phrase,
            "similarity": _r(self.similarity, 1),
            "confidence": _r(self.confidence, 3),
            "turn": self.turn,
        }


@dataclass(frozen=True, slots=True)
class StageResult:
    id: str
    title: str
    status: Status
    required: bool
    weight: float
    evidence: Evidence | None
    note: str | None = None
    violations: tuple[Evidence, ...] = ()
    """Forbidden phrasings of this stage that the manager said."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "passed": self.passed,
            "required": self.required,
            "weight": self.weight,
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "note": self.note,
            "violations": [v.to_dict() for v in self.violations],
        }


@dataclass(frozen=True, slots=True)
class ObjectionResult:
    type: str
    title: str
    status: Status
    """passed: raised and handled; missed: raised and not handled; uncertain: a human should listen."""
    handled: bool | None
    client: Evidence
    response: Evidence | None
    recommended: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "handled": self.handled,
            "client": self.client.to_dict(),
            "response": self.response.to_dict() if self.response else None,
            "recommended": list(self.recommended),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class FillerCount:
    phrase: str
    speaker: Speaker
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CallMetrics:
    manager_talk_share: float | None
    """Manager speech time / all speech time, 0 to 1."""
    longest_manager_monologue: float | None
    """Seconds of manager speech without the client saying anything."""
    interruptions: int
    """Times a side started speaking while the other was still speaking (stereo only)."""
    interruptions_by_manager: int
    silence_share: float | None
    """Share of the call where nobody speaks, 0 to 1."""
    manager_questions: int
    manager_words_per_minute: float | None
    client_words_per_minute: float | None
    manager_fillers: int
    client_fillers: int
    manager_talk_time: float | None
    client_talk_time: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: (_r(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class ScoreItem:
    """One line of the score's explanation."""

    kind: Literal["stage", "objection", "penalty"]
    id: str
    status: str
    weight: float
    earned: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weight": _r(self.weight), "earned": _r(self.earned)}


@dataclass(frozen=True, slots=True)
class CallReport:
    source: str | None
    language: str
    duration: float | None
    script_id: str
    script_version: str
    stages: tuple[StageResult, ...]
    objections: tuple[ObjectionResult, ...]
    fillers: tuple[FillerCount, ...]
    metrics: CallMetrics
    transcript: Transcript
    score: float | None
    score_breakdown: tuple[ScoreItem, ...] = field(default=())
    warnings: tuple[str, ...] = ()

    def to_dict(self, *, words: bool = False) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": "ok",
            "language": self.language,
            "duration": _r(self.duration),
            "script": {"id": self.script_id, "version": self.script_version},
            "score": _r(self.score, 1),
            "score_breakdown": [s.to_dict() for s in self.score_breakdown],
            "stages": [s.to_dict() for s in self.stages],
            "objections": [o.to_dict() for o in self.objections],
            "fillers": [f.to_dict() for f in self.fillers],
            "metrics": self.metrics.to_dict(),
            "roles_inferred": self.transcript.roles_inferred,
            "warnings": list(self.warnings) + list(self.transcript.warnings),
            "transcript": [u.to_dict(words=words) for u in self.transcript.utterances],
        }


def error_report(source: str | None, error: Exception) -> dict[str, Any]:
    """The JSON report of a call that could not be analysed: the batch goes on without it."""
    return {
        "source": source,
        "status": "failed",
        "error": {"code": getattr(error, "code", "internal_error"), "message": str(error)},
    }
