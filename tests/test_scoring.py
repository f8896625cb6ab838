"""Scoring transcripts: the verdicts a quality controller would expect (cases in scoring_cases.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analyzer import Transcript, score_transcript
from analyzer.scripts import default_script

CASES = yaml.safe_load((Path(__file__).parent / "scoring_cases.yaml").read_text(encoding="utf-8"))


def _transcript(case: dict) -> Transcript:
    return Transcript.from_dict(
        {"language": case["language"], "turns": [{"speaker": s, "text": t} for s, t in case["turns"]]}
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_verdicts(case: dict) -> None:
    report = score_transcript(_transcript(case), default_script(case["language"]))
    stages = {s.id: s.status for s in report.stages}
    for stage_id, expected in (case["expect"].get("stages") or {}).items():
        assert stages[stage_id] == expected, f"stage {stage_id}: {stages[stage_id]} != {expected}"
    if "objections" in case["expect"]:
        got = [{"type": o.type, "handled": o.handled} for o in report.objections]
        assert got == case["expect"]["objections"]


def test_evidence_names_words_speaker_and_time() -> None:
    tr = Transcript.from_dict(
        {
            "language": "ru",
            "turns": [
                {"speaker": "manager", "text": "Добрый день! Меня зовут Ольга, компания Логистик Плюс.", "start": 0.5, "end": 4.0},
                {"speaker": "client", "text": "Дорого это всё для нас.", "start": 4.5, "end": 6.0},
                {"speaker": "manager", "text": "Понимаю. С чем сравниваете?", "start": 6.4, "end": 8.0},
            ],
        }
    )
    report = score_transcript(tr, default_script("ru"))
    greeting = next(s for s in report.stages if s.id == "greeting")
    assert greeting.evidence is not None
    assert greeting.evidence.speaker == "manager"
    assert (greeting.evidence.start, greeting.evidence.end) == (0.5, 4.0)
    assert greeting.evidence.phrase == "добрый день"
    [price] = report.objections
    assert price.client.text == "Дорого это всё для нас." and price.client.start == 4.5
    assert price.response is not None and price.response.start == 6.4
    assert price.recommended, "a missed or handled objection carries the script's recommended answer"


def test_low_confidence_words_make_a_verdict_uncertain_not_failed() -> None:
    from analyzer.results import Utterance, Word

    words = tuple(Word(w, i * 0.4, i * 0.4 + 0.3, 0.2) for i, w in enumerate("Добрый день , коллеги".split()))
    tr = Transcript("ru", (Utterance("manager", "Добрый день, коллеги", 0.0, 1.6, words, 0.2),), 2.0)
    report = score_transcript(tr, default_script("ru"))
    greeting = next(s for s in report.stages if s.id == "greeting")
    assert greeting.status == "uncertain"
    assert "confidence" in (greeting.note or "")
    # uncertain verdicts do not cost the manager points until a person decides
    assert all(i.earned == 0 for i in report.score_breakdown if i.id == "greeting")


def test_a_stage_garbled_by_the_recogniser_is_uncertain_not_missed() -> None:
    # the greeting was said, but the line was bad: Whisper heard nonsense, unsure of every word
    turns = [{"speaker": "manager", "text": "Брый зень, мея вут Оля, пания Втор", "start": 0.0, "end": 2.5, "confidence": 0.3},
             {"speaker": "client", "text": "Да, слушаю.", "start": 3.0, "end": 4.0, "confidence": 0.9},
             {"speaker": "manager", "text": "Мы возим грузы по всей России, быстро и недорого.", "start": 4.5, "end": 8.0,
              "confidence": 0.9}]
    report = score_transcript(Transcript.from_dict({"language": "ru", "turns": turns}), default_script("ru"))
    stages = {s.id: s for s in report.stages}
    assert stages["greeting"].status == "uncertain"
    assert "low confidence" in (stages["greeting"].note or "")
    # the same words heard clearly are a missed greeting
    turns[0]["confidence"] = 0.9
    report = score_transcript(Transcript.from_dict({"language": "ru", "turns": turns}), default_script("ru"))
    assert next(s for s in report.stages if s.id == "greeting").status == "missed"


def test_an_answer_garbled_by_the_recogniser_leaves_the_objection_uncertain_not_unhandled() -> None:
    turns = [{"speaker": "manager", "text": "Добрый день! Меня зовут Ольга, компания Вектор.", "start": 0.0, "end": 3.0, "confidence": 0.9},
             {"speaker": "client", "text": "Это слишком дорого для нас.", "start": 3.5, "end": 5.0, "confidence": 0.9},
             # what is left of an answer the recogniser could not make out ("понимаю" heard as "пони мая"
             # is understood now: the models learn from recognised text too)
             {"speaker": "manager", "text": "Ну так вот оно как бы там это самое", "start": 5.5, "end": 8.0, "confidence": 0.3}]
    price = next(o for o in score_transcript(Transcript.from_dict({"language": "ru", "turns": turns}), default_script("ru")).objections
                 if o.type == "price")
    assert (price.status, price.handled) == ("uncertain", None)
    assert "low confidence" in (price.note or "")
    turns[2]["confidence"] = 0.9  # heard clearly, the same words answer nothing
    price = next(o for o in score_transcript(Transcript.from_dict({"language": "ru", "turns": turns}), default_script("ru")).objections
                 if o.type == "price")
    assert (price.status, price.handled) == ("missed", False)


def test_score_is_explained_and_weighted() -> None:
    case = next(c for c in CASES if c["id"] == "ru_word_forms_and_paraphrase")
    report = score_transcript(_transcript(case), default_script("ru"))
    assert report.score == pytest.approx(100.0)
    assert sum(i.earned for i in report.score_breakdown) == pytest.approx(report.score)
    missing = score_transcript(_transcript({**case, "turns": case["turns"][:-1]}), default_script("ru"))
    farewell = next(i for i in missing.score_breakdown if i.id == "farewell")
    assert farewell.earned == 0 and farewell.weight > 0
    assert missing.score == pytest.approx(100.0 - farewell.weight)


def test_fillers_counted_per_speaker() -> None:
    tr = Transcript.from_dict(
        {
            "language": "ru",
            "turns": [
                {"speaker": "manager", "text": "Ну короче, как бы, мы типа доставляем, короче, быстро."},
                {"speaker": "client", "text": "Ну, как бы понятно."},
            ],
        }
    )
    report = score_transcript(tr, default_script("ru"))
    counts = {(f.phrase, f.speaker): f.count for f in report.fillers}
    assert counts[("короче", "manager")] == 2
    assert counts[("как бы", "manager")] == 1
    assert counts[("типа", "manager")] == 1
    assert counts[("как бы", "client")] == 1
    assert report.metrics.manager_fillers == 4 and report.metrics.client_fillers == 1


def test_metrics_from_timeline() -> None:
    tr = Transcript.from_dict(
        {
            "language": "ru",
            "duration": 20.0,
            "turns": [
                {"speaker": "manager", "text": "Добрый день! Как у вас дела с доставкой?", "start": 0.0, "end": 6.0},
                {"speaker": "client", "text": "Нормально, спасибо, возим сами пока что.", "start": 5.0, "end": 8.0},
                {"speaker": "manager", "text": "Понял.", "start": 10.0, "end": 12.0},
            ],
        }
    )
    m = score_transcript(tr, default_script("ru")).metrics
    assert m.manager_talk_share == pytest.approx(8 / 11)
    assert m.interruptions == 1 and m.interruptions_by_manager == 0
    assert m.silence_share == pytest.approx(10 / 20)
    assert m.manager_questions == 1
    assert m.longest_manager_monologue == pytest.approx(6.0)


def test_turns_exported_per_channel_are_put_on_one_timeline() -> None:
    turns = [
        {"speaker": "manager", "text": "Добрый день, это Ольга, компания Вектор.", "start": 0.0, "end": 3.0},
        {"speaker": "manager", "text": "Понимаю. А с чем сравниваете?", "start": 7.0, "end": 9.0},
        {"speaker": "client", "text": "Это слишком дорого для нас.", "start": 4.0, "end": 6.0},
    ]
    report = score_transcript(Transcript.from_dict({"language": "ru", "turns": turns}), default_script("ru"))
    [price] = report.objections
    assert price.handled is True and price.response is not None and price.response.start == 7.0


def test_a_call_without_speech_is_not_scored() -> None:
    report = score_transcript(Transcript.from_dict({"language": "ru", "turns": [], "duration": 30.0}), default_script("ru"))
    assert report.score is None
    assert any("not scored" in w for w in report.warnings)
    assert report.metrics.silence_share == 1.0


def test_backchannels_are_not_interruptions() -> None:
    tr = Transcript.from_dict(
        {
            "language": "ru",
            "turns": [
                {"speaker": "client", "text": "Мы работаем с двумя поставщиками, и оба часто срывают сроки поставки.", "start": 0.0, "end": 20.0},
                {"speaker": "manager", "text": "Угу.", "start": 5.0, "end": 5.2},
                {"speaker": "manager", "text": "Да-да.", "start": 12.0, "end": 12.2},
            ],
        }
    )
    m = score_transcript(tr, default_script("ru")).metrics
    assert m.interruptions == 0
    assert m.longest_manager_monologue == pytest.approx(0.2)


def test_greeting_position_counts_from_the_first_words_not_the_ringing() -> None:
    tr = Transcript.from_dict(
        {"language": "ru", "turns": [
            {"speaker": "manager", "text": "Добрый день!", "start": 42.0, "end": 43.0},
            {"speaker": "client", "text": "Да.", "start": 44.0, "end": 44.5},
        ]}
    )
    stages = {s.id: s for s in score_transcript(tr, default_script("ru")).stages}
    assert stages["greeting"].status == "passed"
    late = Transcript.from_dict(
        {"language": "ru", "turns": [
            {"speaker": "manager", "text": "Так.", "start": 1.0, "end": 1.5},
            {"speaker": "client", "text": "Слушаю.", "start": 2.0, "end": 2.5},
            {"speaker": "manager", "text": "Ну вот.", "start": 3.0, "end": 3.5},
            {"speaker": "client", "text": "Да.", "start": 4.0, "end": 4.5},
            {"speaker": "manager", "text": "Итак.", "start": 5.0, "end": 5.5},
            {"speaker": "manager", "text": "Добрый день!", "start": 70.0, "end": 71.0},
        ]}
    )
    greeting = next(s for s in score_transcript(late, default_script("ru")).stages if s.id == "greeting")
    assert greeting.status == "missed" and "not where the script requires" in (greeting.note or "")
