"""Hostile input: file names and folders that try to leave the data folder, SQL in filters, bodies over
the request limit (declared or chunked). Real SQLite and PostgreSQL, real uploads, no model needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from api.app import create_app
from api.models import Call, Recording, Team
from tests.helpers import NoExecutor, tone

API = "/api/v1"


def upload(client, people, name: str, data: bytes, **fields):
    return client.post(f"{API}/calls", files=[("files", (name, data, "audio/wav"))], data=fields, headers=people.h("admin"))


HOSTILE_NAMES = [
    ("../../etc/passwd.wav", "passwd.wav"),
    ("/etc/cron.d/evil.wav", "evil.wav"),
    ("..\\..\\Windows\\System32\\evil.wav", "evil.wav"),
    ("C:\\Users\\Public\\call.wav", "call.wav"),
    ("call\x00.sh\x00.wav", "call.sh.wav"),
    ("..", "recording"),
    ("../", "recording"),
]


@pytest.mark.parametrize(("name", "shown"), HOSTILE_NAMES, ids=["dotdot", "absolute", "windows-dotdot", "windows-drive",
                                                               "nul", "only-dotdot", "dotdot-slash"])
def test_a_file_name_never_becomes_a_path(client, people, settings, db, tmp_path, name, shown):
    body, ctype = multipart(name, tone(440))  # built by hand: an HTTP client would escape the name
    r = client.post(f"{API}/calls", content=body, headers={**people.h("admin"), "Content-Type": ctype})
    assert r.status_code == 201, r.text
    item = r.json()["items"][0]
    assert item["filename"] == shown
    with db.sessions() as s:
        recording = s.scalar(select(Recording))
    assert recording.original_name == shown
    # the only file written is the content-addressed one, inside the data folder (beside the store's
    # lock of its address, named by hex digits too)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".db" and "-wal" not in p.name
               and "-shm" not in p.name]
    locks = [p for p in written if p.parent == settings.recordings_dir / ".locks"]
    assert [p.name for p in locks] == [recording.sha256[:3]]
    assert [p for p in written if p not in locks] == [
        settings.recordings_dir / recording.sha256[:2] / recording.sha256[2:4] / recording.sha256]
    got = client.get(f"{API}/calls/{item['call_id']}/recording", headers=people.h("admin"))
    assert got.status_code == 200
    disposition = got.headers["content-disposition"]
    assert "/" not in disposition and "\\" not in disposition and ".." not in disposition.replace(shown, "")


@pytest.fixture
def folders(settings, tmp_path) -> dict[str, Path]:
    """imports/ (allowed) with a recording, outside/ (not allowed) with another, and symlinks from one to the other."""
    allowed = settings.import_dirs[0]
    (allowed / "team").mkdir(parents=True)
    (allowed / "team" / "inside.wav").write_bytes(tone(300))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.wav").write_bytes(tone(900))
    (allowed / "link-to-outside").symlink_to(outside, target_is_directory=True)
    (allowed / "team" / "linked-secret.wav").symlink_to(outside / "secret.wav")
    return {"allowed": allowed, "outside": outside}


def test_import_refuses_folders_outside_the_import_dirs(client, people, folders, settings):
    allowed, outside = folders["allowed"], folders["outside"]
    for folder in [str(outside), "/etc", str(allowed / ".." / "outside"), "../outside", "../../", "team/../../outside",
                   str(allowed / "link-to-outside"), "link-to-outside"]:
        r = client.post(f"{API}/calls/import", json={"folder": folder}, headers=people.h("admin"))
        assert r.status_code == 403, (folder, r.text)
        assert r.json()["error"]["code"] == "folder_not_allowed"
    r = client.post(f"{API}/calls/import", json={"folder": "team\x00/../../outside"}, headers=people.h("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_folder"
    r = client.post(f"{API}/calls/import", json={"folder": "no-such-folder"}, headers=people.h("admin"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "folder_not_found"
    assert client.get(f"{API}/calls", headers=people.h("admin")).json()["total"] == 0

    # inside: the folder's own recording, not the symlinked one from outside
    r = client.post(f"{API}/calls/import", json={"folder": "team"}, headers=people.h("admin"))
    assert r.status_code == 200, r.text
    assert [(i["filename"], i["outcome"]) for i in r.json()["items"]] == [("inside.wav", "created")]
    r = client.post(f"{API}/calls/import", json={"folder": str(allowed)}, headers=people.h("admin"))
    assert [(i["filename"], i["outcome"]) for i in r.json()["items"]] == [("team/inside.wav", "duplicate")]


INJECTIONS = ["1 OR 1=1", "'; drop table calls; --", "' OR '1'='1", "greeting' UNION SELECT id FROM users --"]


def test_sql_in_filters_is_rejected_or_matches_nothing(client, people, db):
    for hz in (300, 400):
        assert upload(client, people, f"{hz}.wav", tone(hz), external_id=f"pbx-{hz}").status_code == 201
    admin = people.h("admin")
    for text in INJECTIONS:
        for name in ("manager_id", "team_id", "score_min", "status", "order", "uncertain", "date_from", "limit"):
            r = client.get(f"{API}/calls", params={name: text}, headers=admin)
            assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (name, text, r.text)
        for name in ("stage_missed", "objection_unhandled", "external_id"):
            r = client.get(f"{API}/calls", params={name: text}, headers=admin)
            assert r.status_code == 200 and r.json()["total"] == 0, (name, text, r.text)
        for name in ("entity", "entity_id", "action"):
            r = client.get(f"{API}/audit", params={name: text}, headers=admin)
            assert r.status_code == 200 and r.json()["total"] == 0, (name, text, r.text)
        assert client.get(f"{API}/scripts/{text}", headers=admin).status_code == 404
    with db.engine.connect() as c:
        tables = set(inspect(c).get_table_names())
    assert {"calls", "users", "call_stages", "reviews", "audit_log"} <= tables
    with db.sessions() as s:
        assert len(s.scalars(select(Call)).all()) == 2
    assert client.get(f"{API}/calls", headers=admin).json()["total"] == 2
    assert client.get(f"{API}/calls", params={"external_id": "pbx-300"}, headers=admin).json()["total"] == 1


@pytest.fixture
def small_limit_client(settings, db):
    """The API with CALLQA_MAX_REQUEST_MB at 64 KB."""
    app = create_app(settings.model_copy(update={"max_request_mb": 64 / 1024}), db=db, executor=NoExecutor())
    with TestClient(app) as c:
        yield c


def multipart(name: str, data: bytes, boundary: str = "callqa-test-boundary") -> tuple[bytes, str]:
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: audio/wav\r\n\r\n").encode("utf-8", "surrogateescape") + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def chunks(body: bytes, size: int = 8192):
    for i in range(0, len(body), size):
        yield body[i : i + size]


def assert_too_large(r) -> None:
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "request_too_large" and "CALLQA_MAX_REQUEST_MB" in error["message"]


def test_a_body_over_the_request_limit_is_413(small_limit_client, people):
    big = tone(440, seconds=5)  # 80 KB
    r = small_limit_client.post(f"{API}/calls", files=[("files", ("big.wav", big, "audio/wav"))], headers=people.h("admin"))
    assert "content-length" in {k.lower() for k in r.request.headers}
    assert_too_large(r)

    body, ctype = multipart("big.wav", big)
    r = small_limit_client.post(f"{API}/calls", content=chunks(body), headers={**people.h("admin"), "Content-Type": ctype})
    assert "content-length" not in {k.lower() for k in r.request.headers}  # chunked
    assert_too_large(r)

    r = small_limit_client.post(f"{API}/scripts", content=chunks(b"id: x\n" + b"#" * 100_000),
                                headers={**people.h("admin"), "Content-Type": "application/yaml"})
    assert_too_large(r)
    r = small_limit_client.post(f"{API}/calls/rescore", content=chunks(b'{"call_ids": [' + b"1," * 50_000 + b"1]}"),
                                headers={**people.h("admin"), "Content-Type": "application/json"})
    assert_too_large(r)

    # under the limit, chunked or not, the same endpoint works
    small, ctype = multipart("small.wav", tone(440))
    r = small_limit_client.post(f"{API}/calls", content=chunks(small), headers={**people.h("admin"), "Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert small_limit_client.get(f"{API}/calls", headers=people.h("admin")).json()["total"] == 1


def test_a_nul_character_is_refused_the_same_way_on_every_database(client, people, db):
    """PostgreSQL cannot store a NUL in text and SQLite can: both now refuse it with 400, and store nothing."""
    admin = people.h("admin")
    for method, path, body in [("POST", "/teams", {"name": "Mos\x00cow-2"}), ("POST", "/managers", {"name": "An\x00na", "team_id": 1}),
                               ("PATCH", f"/managers/{people.manager_id}", {"name": "Anna\x00"}),
                               ("POST", "/users", {"username": "nul_user", "password": "violet-kettle-morning-42",
                                                   "role": "manager", "full_name": "Nul\x00 User"})]:
        r = client.request(method, API + path, json=body, headers=admin)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value", (path, r.text)
        assert "NUL" in r.json()["error"]["message"]
    r = client.post(f"{API}/calls", files=[("files", ("a.wav", tone(610), "audio/wav"))],
                    data={"external_id": "pbx\x00-1", "crm_deal_id": "D\x001"}, headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value", r.text
    with db.sessions() as s:
        assert s.scalar(select(Call.id)) is None
        assert [t for t in s.scalars(select(Team.name))] == ["Moscow"]
    assert client.get(f"{API}/managers/{people.manager_id}", headers=admin).json()["name"] == "Anna"


DEEP = "[" * 100_000 + "]" * 100_000  # json.loads alone gives up with RecursionError


def test_deeply_nested_upload_metadata_is_400_naming_the_depth(client, people):
    r = upload(client, people, "call.wav", tone(440), metadata=DEEP)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_metadata"
    assert "100000 levels deep" in error["message"] and "JSON object" in error["message"]
    assert client.get(f"{API}/calls", headers=people.h("admin")).json()["total"] == 0
    # nested but shallow is still a validation answer about the field, not about depth
    r = upload(client, people, "call.wav", tone(440), metadata='{"client_phone": [[["+79160000001"]]]}')
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_metadata" and "deep" not in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/crm/records", "/calls/rescore", "/scripts", "/webhooks/pbx"])
def test_deeply_nested_json_bodies_are_client_errors(client, people, path):
    body = '{"records": [{"a": ' + DEEP + "}]}" if path == "/crm/records" else '{"body": ' + DEEP + "}"
    r = client.post(f"{API}{path}", content=body.encode(), headers={**people.h("admin"), "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) >= {"code", "message"}


def test_upload_metadata_with_a_lone_surrogate_is_400_not_500(client, people):
    r = upload(client, people, "call.wav", tone(440), metadata='{"external_id": "pbx-\\ud800"}')  # half a UTF-16 pair
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_metadata" and "not Unicode text" in r.json()["error"]["message"]
    r = upload(client, people, "call.wav", tone(440), metadata='{"external_id": "pbx-\\ud83d\\ude00"}')  # a whole pair
    assert r.status_code == 201, r.text
