"""The `callqa` command line as people and machines use it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

pytestmark = pytest.mark.slow  # every test runs the command in a process of its own

CALLQA = [sys.executable, "-m", "analyzer.cli"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CALLQA, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _transcript(tmp_path: Path, name: str = "call.json") -> Path:
    p = tmp_path / name
    p.write_text(
        json.dumps(
            {
                "language": "ru",
                "turns": [
                    {"speaker": "manager", "text": "Добрый день! Меня зовут Ольга, компания Логистик Плюс.", "start": 0.0, "end": 3.0},
                    {"speaker": "client", "text": "Дороговато у вас.", "start": 3.5, "end": 5.0},
                    {"speaker": "manager", "text": "Ну ладно, извините за беспокойство. До свидания.", "start": 5.5, "end": 8.0},
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return p


def test_score_json_lines_follow_the_schema(tmp_path: Path, report_schema: dict) -> None:
    a, b = _transcript(tmp_path, "a.json"), _transcript(tmp_path, "b.json")
    res = run("score", str(a), str(b), "--json")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["source"] for d in lines] == [str(a), str(b)]
    for d in lines:
        jsonschema.validate(d, report_schema)
        assert d["script"] == {"id": "ru_b2b_outbound", "version": "1.0"}
        [price] = d["objections"]
        assert price["type"] == "price" and price["handled"] is False
        assert "gave up" in price["note"]


def test_score_table_for_people(tmp_path: Path) -> None:
    res = run("score", str(_transcript(tmp_path)))
    assert res.returncode == 0, res.stderr
    assert "Приветствие" in res.stdout and "Дорого" in res.stdout
    assert "score" in res.stdout


def test_bad_transcript_fails_alone_and_sets_the_exit_code(tmp_path: Path, report_schema: dict) -> None:
    good = _transcript(tmp_path, "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"language": "ru", "turns": [{"speaker": "boss", "text": "x"}]}', encoding="utf-8")
    out = tmp_path / "reports"
    res = run("score", str(good), str(bad), "--out", str(out))
    assert res.returncode == 1
    assert "1 of 2" in res.stderr
    reports = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.json")}
    assert reports["good.json"]["status"] == "ok"
    assert reports["bad.json"]["status"] == "failed"
    assert "turns[0].speaker" in reports["bad.json"]["error"]["message"]
    for d in reports.values():
        jsonschema.validate(d, report_schema)


def test_script_by_path_and_unknown_script(tmp_path: Path) -> None:
    res = run("score", str(_transcript(tmp_path)), "--script", "en_b2b_outbound", "--json")
    assert json.loads(res.stdout)["script"]["id"] == "en_b2b_outbound"
    res = run("score", str(_transcript(tmp_path)), "--script", "nope", "--json")
    assert res.returncode == 1
    assert "available: " in json.loads(res.stdout)["error"]["message"]


def test_scripts_check_reports_the_field(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("id: s\nversion: 1\nlanguage: ru\ntitle: t\nstages:\n  - id: a\n    title: A\n    speaker: boss\n    phrasings: [x]\n")
    res = run("scripts", "--check", str(p))
    assert res.returncode == 1
    assert "stages.0.speaker" in res.stderr


@pytest.mark.model
def test_analyze_batch_with_a_bad_file(tmp_path: Path, data_dir: Path, report_schema: dict) -> None:
    batch = tmp_path / "calls"
    batch.mkdir()
    shutil.copy(data_dir / "clip_ru_ulaw.wav", batch / "good.wav")
    shutil.copy(data_dir / "not_audio.wav", batch / "broken.wav")
    res = run("analyze", str(batch), "--json")
    assert res.returncode == 1, res.stderr
    reports = {Path(d["source"]).name: d for d in map(json.loads, res.stdout.splitlines())}
    assert set(reports) == {"good.wav", "broken.wav"}
    for d in reports.values():
        jsonschema.validate(d, report_schema)
    assert reports["broken.wav"]["error"]["code"] == "audio_decode_error"
    good = reports["good.wav"]
    assert {s["id"]: s["status"] for s in good["stages"]}["greeting"] == "passed"
    assert good["transcript"] and good["duration"] > 10


def test_reports_never_overwrite_inputs_and_are_not_read_back(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    src = _transcript(calls, "call.json")
    before = src.read_bytes()
    res = run("score", str(src), "--out", str(calls))
    assert res.returncode == 2 and "overwrite" in res.stderr
    assert src.read_bytes() == before
    for _ in range(2):  # the second run must not pick up the first run's reports
        res = run("score", str(calls), "--out", str(calls / "reports"))
        assert res.returncode == 0, res.stderr
    assert [p.name for p in (calls / "reports").iterdir()] == ["call.json"]


def test_a_report_can_be_rescored(tmp_path: Path) -> None:
    first = run("score", str(_transcript(tmp_path)), "--json")
    report = tmp_path / "report.json"
    report.write_text(first.stdout, encoding="utf-8")
    again = run("score", str(report), "--json")
    assert again.returncode == 0, again.stderr
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert [s["status"] for s in a["stages"]] == [s["status"] for s in b["stages"]]
    assert a["score"] == b["score"]


def test_bad_values_fail_one_file_and_the_batch_goes_on(tmp_path: Path) -> None:
    bad = tmp_path / "a_bad.json"
    bad.write_text('{"language": "ru", "turns": [{"speaker": "client", "text": "x", "start": 1, "end": 2, "confidence": "high"}]}')
    good = _transcript(tmp_path, "b_good.json")
    res = run("score", str(bad), str(good), "--json")
    assert res.returncode == 1
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert out[0]["status"] == "failed" and "turns[0].confidence" in out[0]["error"]["message"]
    assert out[1]["status"] == "ok"


def test_empty_folder_and_unknown_language(tmp_path: Path) -> None:
    res = run("score", str(tmp_path))
    assert res.returncode == 2 and "no transcripts found" in res.stderr
    res = run("analyze", str(tmp_path), "--language", "qq")
    assert res.returncode == 2 and "not a language" in res.stderr
