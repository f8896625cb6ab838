"""Script library: bundled scripts load, bad scripts get errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import ScriptNotFoundError, ScriptValidationError, list_scripts, load_script
from analyzer.scripts import STANDARD_OBJECTIONS, STANDARD_STAGES

GOOD = """
id: acme
version: 2
language: ru
title: Acme
stages:
  - id: greeting
    title: Приветствие
    phrasings: [добрый день]
"""


@pytest.mark.parametrize("script_id", ["ru_b2b_outbound", "en_b2b_outbound"])
def test_bundled_scripts_use_the_standard_ids(script_id: str) -> None:
    s = load_script(script_id)
    assert [st.id for st in s.stages] == list(STANDARD_STAGES)
    assert [o.type for o in s.objections] == list(STANDARD_OBJECTIONS)
    assert all(o.recommended for o in s.objections), "every objection carries recommended answers for feedback"
    assert s.version


def test_library_lists_both_languages() -> None:
    assert {s.language for s in list_scripts()} >= {"ru", "en"}


def test_company_script_by_path_with_version_as_string(tmp_path: Path) -> None:
    p = tmp_path / "acme.yaml"
    p.write_text(GOOD, encoding="utf-8")
    s = load_script(p)
    assert (s.id, s.version) == ("acme", "2")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (GOOD.replace("phrasings: [добрый день]", "phrasings: [добрый день]\n    speaker: boss"), ["stages.0.speaker", "'manager' or 'client'"]),
        (GOOD.replace("title: Приветствие", "title: Приветствие\n    wieght: 3"), ["stages.0.wieght", "allowed fields:", "weight"]),
        (GOOD.replace("    phrasings: [добрый день]\n", ""), ["stages.0", "phrasings"]),
        (GOOD.replace("version: 2\n", ""), ["version", "field required"]),
        (GOOD.replace("id: greeting", "id: Greeting Stage"), ["stages.0.id", "lower-case"]),
        (GOOD + "  - id: greeting\n    title: again\n    phrasings: [привет]\n", ["duplicate stage id: greeting"]),
        (GOOD.replace("phrasings: [добрый день]", "phrasings: [добрый день]\n    position: {last_share: 3}"), ["stages.0.position.last_share", "less than or equal to 1"]),
    ],
    ids=["bad-speaker", "misspelt-field", "no-phrasings", "no-version", "bad-id", "duplicate-stage", "bad-position"],
)
def test_invalid_script_names_file_and_field(tmp_path: Path, yaml_text: str, expected: list[str]) -> None:
    p = tmp_path / "company.yaml"
    p.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ScriptValidationError) as err:
        load_script(p)
    message = str(err.value)
    assert str(p) in message
    for part in expected:
        assert part in message


def test_broken_yaml_is_a_validation_error(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("id: x\nstages: [\n", encoding="utf-8")
    with pytest.raises(ScriptValidationError, match="not valid YAML"):
        load_script(p)


def test_yaml_nested_thousands_deep_is_a_validation_error(tmp_path: Path) -> None:
    p = tmp_path / "deep.yaml"
    p.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ScriptValidationError, match="nested deeper than 32 levels"):
        load_script(p)


def test_yaml_aliases_that_expand_to_millions_of_values_are_refused(tmp_path: Path) -> None:
    laughs = "lol0: &lol0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]\n" for i in range(1, 10))  # 10**10 values
    p = tmp_path / "laughs.yaml"
    p.write_text(GOOD + laughs, encoding="utf-8")
    with pytest.raises(ScriptValidationError, match="more than 100,000 values") as err:
        load_script(p)
    assert "alias" in str(err.value)
    p.write_text(GOOD + "fillers: &words [ну, вот]\nstop_words: *words\n", encoding="utf-8")
    assert load_script(p).stop_words == ["ну", "вот"]  # an alias or two is still fine


def test_unknown_script_lists_the_available_ones() -> None:
    with pytest.raises(ScriptNotFoundError) as err:
        load_script("no_such_script")
    assert "ru_b2b_outbound" in str(err.value) and "en_b2b_outbound" in str(err.value)


def test_company_can_add_its_own_stage_and_objection(tmp_path: Path) -> None:
    from analyzer import Transcript, score_transcript

    p = tmp_path / "acme.yaml"
    p.write_text(
        GOOD
        + """  - id: upsell
    title: Допродажа
    weight: 5
    required: false
    phrasings: [а ещё у нас есть сервисное обслуживание]
objections:
  - type: competitor_contract
    title: Контракт с конкурентом
    client_phrasings: [у нас контракт до конца года]
""",
        encoding="utf-8",
    )
    tr = Transcript.from_dict(
        {"language": "ru", "turns": [
            {"speaker": "manager", "text": "Добрый день! А ещё у нас есть сервисное обслуживание."},
            {"speaker": "client", "text": "У нас контракт с другими до конца года."},
        ]}
    )
    report = score_transcript(tr, load_script(p))
    assert {s.id: s.status for s in report.stages} == {"greeting": "passed", "upsell": "passed"}
    assert [o.type for o in report.objections] == ["competitor_contract"]
    assert (report.script_id, report.script_version) == ("acme", "2")
