"""Recordings in: the server-folder import, a refused upload leaves no file behind (and never takes
the file of a concurrent upload of the same bytes), byte ranges of a stored recording. Real uploads
on SQLite and PostgreSQL; nothing here runs the model."""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from api.calls.schemas import CallMetadataCreate
from api.calls.service import Ingested, ingest_stream
from api.core.errors import ServiceError
from api.core.storage import RecordingStore
from api.models import Call, Recording
from tests.helpers import stored_files, tone

API = "/api/v1"
DATA = Path(__file__).parent.parent / "data"


def test_a_folder_inside_the_import_dirs_is_imported(client, people, settings, db):
    folder = settings.import_dirs[0] / "2026-11" / "moscow"
    (folder / "monday").mkdir(parents=True)
    shutil.copy(DATA / "clip_ru.wav", folder / "monday" / "first.wav")
    shutil.copy(DATA / "clip_ru.wav", folder / "monday" / "first again.wav")  # the same bytes under another name
    shutil.copy(DATA / "clip_ru.mp3", folder / "second.mp3")
    (folder / "notes.txt").write_text("not a recording")
    (folder / "broken.wav").write_bytes(b"RIFF not really")

    body = {"folder": str(folder), "metadata": {"manager_external_id": "102", "direction": "inbound"}}
    r = client.post(f"{API}/calls/import", json=body, headers=people.h("admin"))
    assert r.status_code == 200, r.text
    result = r.json()
    outcomes = {i["filename"]: i["outcome"] for i in result["items"]}
    assert outcomes == {"broken.wav": "rejected", "monday/first again.wav": "created", "monday/first.wav": "duplicate",
                        "second.mp3": "created"}
    assert (result["created"], result["duplicates"], result["rejected"]) == (2, 1, 1)
    broken = next(i for i in result["items"] if i["filename"] == "broken.wav")
    assert broken["error"]["code"] == "audio_decode_error" and str(settings.data_dir) not in broken["error"]["message"]
    same = {i["call_id"] for i in result["items"] if i["filename"].startswith("monday/")}
    assert len(same) == 1  # the same bytes twice are one call

    calls = client.get(f"{API}/calls", headers=people.h("admin")).json()
    assert calls["total"] == 2
    assert {(c["source"], c["manager"]["id"], c["direction"], c["status"]) for c in calls["items"]} == {
        ("import", people.other_manager_id, "inbound", "queued")}
    assert client.app.state.executor.submitted == sorted(c["id"] for c in calls["items"])

    again = client.post(f"{API}/calls/import", json={"folder": str(folder)}, headers=people.h("admin")).json()
    assert (again["created"], again["duplicates"], again["rejected"]) == (0, 3, 1)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 2
        assert s.scalar(select(func.count()).select_from(Recording)) == 2
    assert len(stored_files(settings)) == 2  # the broken file was not kept
    audit = client.get(f"{API}/audit", params={"action": "call.ingest"}, headers=people.h("admin")).json()
    assert audit["total"] == 2 and {e["after"]["source"] for e in audit["items"]} == {"import"}


def test_a_refused_upload_leaves_no_orphan_file(client, people, settings, db):
    first = client.post(f"{API}/calls", files=[("files", ("a.wav", tone(300), "audio/wav"))], data={"external_id": "pbx-1"},
                        headers=people.h("admin"))
    assert first.status_code == 201
    assert len(stored_files(settings)) == 1

    # another recording under the same PBX call id is refused, and its bytes are not kept
    r = client.post(f"{API}/calls", files=[("files", ("b.wav", tone(500), "audio/wav"))], data={"external_id": "pbx-1"},
                    headers=people.h("admin"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "external_id_taken"
    assert r.json()["error"]["details"][0]["error"]["code"] == "external_id_taken"
    assert len(stored_files(settings)) == 1
    # so is one naming a manager that does not exist
    r = client.post(f"{API}/calls", files=[("files", ("c.wav", tone(700), "audio/wav"))], data={"manager_id": "999"},
                    headers=people.h("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "manager_not_found"
    assert len(stored_files(settings)) == 1

    # the first call's recording is untouched, and the same bytes again are still that call
    call_id = first.json()["items"][0]["call_id"]
    assert client.get(f"{API}/calls/{call_id}/recording", headers=people.h("admin")).content == tone(300)
    r = client.post(f"{API}/calls", files=[("files", ("a-again.wav", tone(300), "audio/wav"))], data={"external_id": "pbx-2"},
                    headers=people.h("admin"))
    assert r.status_code == 200 and r.json()["items"][0] == {"filename": "a-again.wav", "outcome": "duplicate",
                                                            "call_id": call_id, "error": None}
    assert len(stored_files(settings)) == 1
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 1


@pytest.mark.parametrize("refusal", ["external_id_taken", "manager_not_found"])
def test_an_upload_refused_at_the_same_moment_never_takes_the_file_of_the_accepted_one(settings, db, people, refusal):
    """Two requests (or API processes) receive the same recording at once; one of them would be
    refused (its PBX call id belongs to another call, or its manager does not exist). A refused
    upload removes its file when nothing refers to it, so it is let in at the worst moment: after
    the accepted upload stored the file and before it committed its call. Whatever order they then
    reach the database in, the accepted call keeps its recording, and the other upload ends as a
    duplicate of it or refused with its reason, never as a server error."""
    store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    with db.sessions() as s:  # the call that already has the PBX call id, with other bytes
        ingest_stream(s, store, stream=io.BytesIO(tone(900)), filename="earlier.wav", content_type="audio/wav",
                      meta=CallMetadataCreate(external_id="pbx-7"))
    data = tone(350)
    bad = CallMetadataCreate(external_id="pbx-7") if refusal == "external_id_taken" else CallMetadataCreate(manager_id=999_999)
    outcome: list[object] = []

    def other_upload() -> None:
        with db.sessions() as s:
            try:
                outcome.append(ingest_stream(s, store, stream=io.BytesIO(data), filename="other.wav", content_type="audio/wav",
                                             meta=bad))
            except Exception as e:  # noqa: BLE001 (whatever it was, the assertion shows it)
                outcome.append(e)

    with db.sessions() as accepted:
        other = threading.Thread(target=other_upload)

        def let_the_other_one_in(_session) -> None:  # the accepted upload is about to commit its call
            other.start()
            other.join(timeout=2)  # it runs to its end meanwhile unless it has to wait for this one

        event.listen(accepted, "before_commit", let_the_other_one_in, once=True)
        call = ingest_stream(accepted, store, stream=io.BytesIO(data), filename="right.wav", content_type="audio/wav",
                             meta=CallMetadataCreate(manager_id=people.manager_id)).call
    other.join(timeout=60)
    assert not other.is_alive()
    # the accepted call's recording is there, whole
    assert store.path(call.recording_sha256).read_bytes() == data
    assert len(stored_files(settings)) == 2
    # the other upload is the same call, or refused with its own reason
    (result,) = outcome
    if isinstance(result, Ingested):
        assert result.call.id == call.id and not result.created
    else:
        assert isinstance(result, ServiceError) and result.code == refusal, result
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Call)) == 2


def test_byte_ranges_of_a_recording(client, people):
    data = tone(440)
    call_id = client.post(f"{API}/calls", files=[("files", ("a.wav", data, "audio/wav"))],
                          headers=people.h("admin")).json()["items"][0]["call_id"]
    url = f"{API}/calls/{call_id}/recording"
    admin = people.h("admin")
    part = client.get(url, headers={**admin, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = client.get(url, headers={**admin, "Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == data[-4:]

    for bad in (f"bytes={len(data)}-", f"bytes={len(data) + 100}-{len(data) + 200}"):
        r = client.get(url, headers={**admin, "Range": bad})
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{len(data)}"
        assert r.headers["content-type"] == "application/json"
        error = r.json()["error"]
        assert error["code"] == "range_not_satisfiable" and str(len(data)) in error["message"]
    r = client.get(url, headers={**admin, "Range": "pages=1-2"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_range"
    # a Range for another version of the file (If-Range does not match) gets the whole file
    whole = client.get(url, headers={**admin, "Range": f"bytes={len(data)}-", "If-Range": '"another-etag"'})
    assert whole.status_code == 200 and whole.content == data
