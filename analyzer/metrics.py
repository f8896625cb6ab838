"""Call metrics from a transcript's timeline: who talked how much, silences, interruptions."""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.normalization import Token
from analyzer.results import CallMetrics, FillerCount, Transcript
from analyzer.thresholds import DEFAULT

_OVERLAP_MIN = 0.3
"""Seconds of overlapping speech that count as an interruption (shorter is a backchannel)."""
_MONOLOGUE_PAUSE = 2.0


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(e - s for s, e in intervals)


def call_metrics(
    transcript: Transcript,
    *,
    fillers: Sequence[FillerCount] = (),
    question_words: frozenset[str] = frozenset(),
    tokens: Sequence[list[Token]] | None = None,
    backchannel_words: int = DEFAULT.backchannel_words,
) -> CallMetrics:
    utts = transcript.utterances
    timed = all(u.start is not None and u.end is not None for u in utts) and bool(utts)
    if not utts and transcript.duration:
        timed = True  # no speech at all: the whole call is silence
    manager_fillers = sum(f.count for f in fillers if f.speaker == "manager")
    client_fillers = sum(f.count for f in fillers if f.speaker == "client")
    questions = 0
    for i, u in enumerate(utts):
        if u.speaker != "manager":
            continue
        q = u.text.count("?")
        if q == 0 and tokens is not None and tokens[i] and tokens[i][0].lemma in question_words:
            q = 1
        questions += q
    if not timed:
        words = {sp: sum(len(u.text.split()) for u in utts if u.speaker == sp) for sp in ("manager", "client")}
        total = words["manager"] + words["client"]
        return CallMetrics(
            manager_talk_share=(words["manager"] / total) if total else None,
            longest_manager_monologue=None,
            interruptions=0,
            interruptions_by_manager=0,
            silence_share=None,
            manager_questions=questions,
            manager_words_per_minute=None,
            client_words_per_minute=None,
            manager_fillers=manager_fillers,
            client_fillers=client_fillers,
            manager_talk_time=None,
            client_talk_time=None,
        )
    spans = {
        sp: _merge([(float(u.start), float(u.end)) for u in utts if u.speaker == sp])  # type: ignore[arg-type]
        for sp in ("manager", "client")
    }
    talk = {sp: _length(v) for sp, v in spans.items()}
    all_speech = _merge(spans["manager"] + spans["client"])
    speech_total = talk["manager"] + talk["client"]
    duration = transcript.duration or (max(e for _, e in all_speech) if all_speech else 0.0)
    silence = min(1.0, max(0.0, duration - _length(all_speech)) / duration) if duration else None

    # monologue: manager speech with pauses under 2 s, until the client says something substantial
    longest = 0.0
    run_start: float | None = None
    run_end = 0.0
    for u in sorted(utts, key=lambda x: x.start or 0.0):
        start, end = float(u.start), float(u.end)  # type: ignore[arg-type]
        if u.speaker == "manager":
            if run_start is None or start - run_end > _MONOLOGUE_PAUSE:
                run_start, run_end = start, end
            run_end = max(run_end, end)
            longest = max(longest, run_end - run_start)
        elif len(u.text.split()) > backchannel_words:
            run_start, run_end = None, 0.0

    interruptions = by_manager = 0
    if transcript.channels != 1:
        ordered = sorted(utts, key=lambda x: x.start or 0.0)
        for n, u in enumerate(ordered):
            if len(u.text.split()) <= backchannel_words:
                continue  # "угу", "да-да" while the other talks is listening, not interrupting
            for prev in reversed(ordered[:n]):
                if prev.speaker == u.speaker:
                    continue
                s0, e0 = float(prev.start), float(prev.end)  # type: ignore[arg-type]
                s1, e1 = float(u.start), float(u.end)  # type: ignore[arg-type]
                if s0 < s1 and min(e0, e1) - s1 >= _OVERLAP_MIN:
                    interruptions += 1
                    by_manager += u.speaker == "manager"
                break

    def wpm(sp: str) -> float | None:
        t = talk[sp]
        if t < 1.0:
            return None
        words = sum(len(u.text.split()) for u in utts if u.speaker == sp)
        return 60.0 * words / t

    return CallMetrics(
        manager_talk_share=(talk["manager"] / speech_total) if speech_total else None,
        longest_manager_monologue=longest,
        interruptions=interruptions,
        interruptions_by_manager=by_manager,
        silence_share=silence,
        manager_questions=questions,
        manager_words_per_minute=wpm("manager"),
        client_words_per_minute=wpm("client"),
        manager_fillers=manager_fillers,
        client_fillers=client_fillers,
        manager_talk_time=talk["manager"],
        client_talk_time=talk["client"],
    )
