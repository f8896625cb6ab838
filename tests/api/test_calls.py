"""Upload, process with the real model, read back: what a quality controller sees through the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.models import Call, CallRun, CallStatus
from tests.helpers import stored_files

DATA = Path(__file__).parent.parent / "data"


def upload(client, people, *files: str, role: str = "quality_controller", **fields):
    handles = [("files", (name, (DATA / name).read_bytes(), "audio/wav")) for name in files]
    return client.post("/api/v1/calls", files=handles, data=fields, headers=people.h(role))


def test_upload_process_and_read_a_call(client, people, processor, db):
    r = upload(client, people, "clip_ru.wav", manager_external_id="101", client_phone="8 (912) 345-67-89",
               direction="outbound", started_at="2026-11-02T10:00:00+03:00", crm_deal_id="D-7")
    assert r.status_code == 201, r.text
    item = r.json()["items"][0]
    assert item["outcome"] == "created"
    call_id = item["call_id"]
    assert client.get(f"/api/v1/calls/{call_id}", headers=people.h("quality_controller")).json()["status"] == "queued"

    assert processor.process_next() == call_id
    assert processor.process_next() is None

    call = client.get(f"/api/v1/calls/{call_id}", headers=people.h("quality_controller")).json()
    assert call["status"] == "done"
    assert call["manager"] == {"id": people.manager_id, "name": "Anna"}
    assert call["client_phone"] == "+79123456789"
    assert call["started_at"].startswith("2026-11-02T07:00:00")
    assert call["script"]["id"] == "ru_b2b_outbound"
    stages = {s["id"]: s for s in call["stages"]}
    greeting = stages["greeting"]
    assert greeting["status"] == "passed"
    assert greeting["evidence"]["speaker"] == "manager" and greeting["evidence"]["start"] is not None
    assert {u["speaker"] for u in call["transcript"]} == {"manager", "client"}
    assert call["metrics"]["manager_talk_share"] > 0
    assert 0 <= call["score"] <= 100
    with db.sessions() as s:
        runs = s.query(CallRun).filter_by(call_id=call_id).all()
        assert [r.outcome for r in runs] == ["done"]


def test_same_recording_twice_is_one_call(client, people):
    first = upload(client, people, "clip_ru.wav").json()["items"][0]
    again = upload(client, people, "clip_ru.wav")
    assert again.status_code == 200
    assert again.json()["items"][0] == {"filename": "clip_ru.wav", "outcome": "duplicate", "call_id": first["call_id"], "error": None}
    assert client.get("/api/v1/calls", headers=people.h("admin")).json()["total"] == 1


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("empty.wav", 422, "recording_empty"),
        ("not_audio.wav", 422, "audio_decode_error"),
        ("corrupt.mp3", 422, "audio_decode_error"),
    ],
)
def test_unusable_uploads_get_a_clear_error_and_nothing_is_stored(client, people, settings, name, status, code):
    r = upload(client, people, name)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code
    assert name in error["message"] and str(settings.data_dir) not in error["message"]
    assert client.get("/api/v1/calls", headers=people.h("admin")).json()["total"] == 0
    assert stored_files(settings) == set()


def test_a_bad_file_in_a_batch_does_not_stop_the_others(client, people):
    r = upload(client, people, "not_audio.wav", "clip_ru.wav", "empty.wav")
    assert r.status_code == 201
    outcomes = [(i["filename"], i["outcome"]) for i in r.json()["items"]]
    assert outcomes == [("not_audio.wav", "rejected"), ("clip_ru.wav", "created"), ("empty.wav", "rejected")]


def test_oversized_upload_is_refused(client, people, tmp_path):
    big = b"RIFF" + b"\0" * (6 * 1024 * 1024)  # limit is 5 MB in these tests
    r = client.post("/api/v1/calls", files=[("files", ("big.wav", big, "audio/wav"))], headers=people.h("admin"))
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "recording_too_large"


def test_truncated_and_silent_recordings_are_processed_with_what_they_hold(client, people, processor):
    ids = [upload(client, people, n).json()["items"][0]["call_id"] for n in ("truncated.wav", "silence.wav")]
    while processor.process_next() is not None:
        pass
    truncated, silent = (client.get(f"/api/v1/calls/{i}", headers=people.h("admin")).json() for i in ids)
    assert truncated["status"] == "done"
    assert 0.5 < truncated["duration"] < 2.0
    assert silent["status"] == "done"
    assert silent["transcript"] == [] and silent["score"] is None


def test_recording_is_streamed_with_range(client, people):
    call_id = upload(client, people, "clip_ru.wav").json()["items"][0]["call_id"]
    whole = client.get(f"/api/v1/calls/{call_id}/recording", headers=people.h("admin"))
    assert whole.status_code == 200 and whole.content == (DATA / "clip_ru.wav").read_bytes()
    part = client.get(f"/api/v1/calls/{call_id}/recording", headers={**people.h("admin"), "Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == (DATA / "clip_ru.wav").read_bytes()[:100]
    assert part.headers["content-range"].startswith("bytes 0-99/")


def test_failed_call_has_a_reason_and_can_be_retried(client, people, processor, db, settings):
    call_id = upload(client, people, "clip_ru.wav").json()["items"][0]["call_id"]
    with db.sessions() as s:  # the recording vanished from the store (a disk was swapped)
        sha = s.get(Call, call_id).recording_sha256
    path = processor.store.path(sha)
    saved = path.read_bytes()
    path.unlink()
    processor.process_next()
    call = client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()
    assert call["status"] == "failed"
    assert call["error"]["code"] == "recording_missing" and "missing" in call["error"]["message"]
    assert "Traceback" not in call["error"]["message"]

    path.write_bytes(saved)
    r = client.post(f"/api/v1/calls/{call_id}/retry", headers=people.h("quality_controller"))
    assert r.status_code == 200 and r.json()["status"] == "queued"
    processor.process_next()
    assert client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()["status"] == "done"
    assert client.post(f"/api/v1/calls/{call_id}/retry", headers=people.h("admin")).json()["error"]["code"] == "not_failed"


def test_a_manager_sees_only_own_calls(client, people):
    own = upload(client, people, "clip_ru.wav", manager_external_id="101").json()["items"][0]["call_id"]
    other = upload(client, people, "clip_en_ulaw.wav", manager_external_id="102").json()["items"][0]["call_id"]
    listed = client.get("/api/v1/calls", headers=people.h("manager")).json()
    assert [c["id"] for c in listed["items"]] == [own]
    # another manager's call does not exist for them: the same answer as a missing one
    for path in (f"/api/v1/calls/{other}", f"/api/v1/calls/{other}/recording", "/api/v1/calls/999"):
        r = client.get(path, headers=people.h("manager"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "call_not_found", path
    assert client.get("/api/v1/calls", headers=people.h("head_of_sales")).json()["total"] == 2


def test_transient_errors_are_retried_then_fail_with_the_reason(client, people, processor, db, monkeypatch):
    call_id = upload(client, people, "clip_ru.wav").json()["items"][0]["call_id"]

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(processor.analyzer, "transcribe", broken)
    for _ in range(processor.settings.max_attempts):
        assert processor.process_next() == call_id
    call = client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()
    assert call["status"] == "failed" and call["attempts"] == processor.settings.max_attempts
    assert "disk full" in call["error"]["message"] and "3 times" in call["error"]["message"]
    with db.sessions() as s:
        assert [r.outcome for r in s.query(CallRun).filter_by(call_id=call_id).order_by(CallRun.id)] == ["retry", "retry", "failed"]
        assert s.get(Call, call_id).status == CallStatus.failed


def test_a_short_russian_call_heard_as_ukrainian_is_scored_in_russian_not_failed(client, people, processor):
    # a real recorded voice the detector takes for Ukrainian; the department has scripts in Russian and English
    r = client.post("/api/v1/calls", files=[("files", ("prompt.wav", (DATA / "prompts" / "ru-cannot-complete-as-dialed.wav").read_bytes(),
                                                                       "audio/wav"))], headers=people.h("quality_controller"))
    call_id = r.json()["items"][0]["call_id"]
    assert processor.process_next() == call_id
    call = client.get(f"/api/v1/calls/{call_id}", headers=people.h("quality_controller")).json()
    assert call["status"] == "done" and call["script"]["id"] == "ru_b2b_outbound"
    assert any("heard uk" in w and "transcribed as ru" in w for w in call["warnings"]), call["warnings"]
