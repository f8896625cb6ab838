"""A PBX posts a finished call with its recording URL; the worker downloads it (retries, size limit)
from a real HTTP server here, and a repeated PBX call id is the same call."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.model
CLIP = (Path(__file__).parent.parent / "data" / "clip_ru.wav").read_bytes()


class PBX(BaseHTTPRequestHandler):
    """/clip.wav; /flaky.wav fails twice with 503 first; /big.wav is over the size limit; else 404."""

    hits: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802
        PBX.hits[self.path] = PBX.hits.get(self.path, 0) + 1
        if self.path == "/flaky.wav" and PBX.hits[self.path] <= 2:
            self.send_error(503)
            return
        if self.path in ("/clip.wav", "/flaky.wav"):
            body = CLIP if self.path == "/clip.wav" else CLIP[:44] + CLIP[44:][::-1][: len(CLIP) - 44]
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/big.wav":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            self.wfile.write(b"\0" * 1024)
            return
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pbx() -> Iterator[str]:
    PBX.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), PBX)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def hook(client, body, **headers):
    return client.post("/api/v1/webhooks/pbx", json=body, headers=headers or {"X-Callqa-Secret": "pbx-secret"})


def test_webhook_call_is_downloaded_processed_and_not_duplicated(client, people, processor, pbx):
    body = {"recording_url": f"{pbx}/clip.wav", "external_id": "pbx-1", "manager_external_id": "101",
            "client_phone": "+7 912 345-67-89", "direction": "outbound", "started_at": "2026-11-20T09:30:00Z"}
    r = hook(client, body)
    assert r.status_code == 202, r.text
    call_id = r.json()["id"]
    again = hook(client, body)
    assert again.status_code == 200 and again.json()["id"] == call_id

    assert processor.process_next() == call_id
    call = client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()
    assert call["status"] == "done" and call["external_id"] == "pbx-1"
    assert call["manager"]["name"] == "Anna"
    assert client.get(f"/api/v1/calls/{call_id}/recording", headers=people.h("admin")).content == CLIP
    assert PBX.hits["/clip.wav"] == 1


def test_download_is_retried_then_succeeds(client, people, processor, pbx):
    call_id = hook(client, {"recording_url": f"{pbx}/flaky.wav"}).json()["id"]
    processor.process_next()
    assert PBX.hits["/flaky.wav"] == 3
    assert client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()["status"] == "done"


@pytest.mark.parametrize(("path", "code"), [("/gone.wav", "download_refused"), ("/big.wav", "recording_too_large")])
def test_bad_recording_urls_fail_with_a_reason(client, people, processor, pbx, path, code):
    call_id = hook(client, {"recording_url": f"{pbx}{path}"}).json()["id"]
    processor.process_next()
    call = client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()
    assert call["status"] == "failed"
    assert call["error"]["code"] == code


def test_same_recording_from_the_pbx_and_an_upload_is_one_call(client, people, processor, pbx):
    uploaded = client.post("/api/v1/calls", files=[("files", ("c.wav", CLIP, "audio/wav"))], headers=people.h("admin"))
    first = uploaded.json()["items"][0]["call_id"]
    second = hook(client, {"recording_url": f"{pbx}/clip.wav", "external_id": "pbx-2"}).json()["id"]
    while processor.process_next() is not None:
        pass
    call = client.get(f"/api/v1/calls/{second}", headers=people.h("admin")).json()
    assert call["status"] == "failed" and call["error"]["code"] == "duplicate_recording"
    assert f"call {first}" in call["error"]["message"]


def test_webhook_needs_the_secret_or_an_admin(client, people, pbx):
    body = {"recording_url": f"{pbx}/clip.wav"}
    assert hook(client, body, **{"X-Callqa-Secret": "wrong"}).status_code == 401
    assert client.post("/api/v1/webhooks/pbx", json=body).status_code == 401
    assert hook(client, body, **people.h("manager")).status_code == 403
    assert hook(client, body, **people.h("admin")).status_code == 202
    bad = hook(client, {"recording_url": "file:///etc/passwd"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
