"""A PBX posts a finished call with its recording URL; the worker downloads it (retries, size limit)
from a real HTTP server here, and a repeated PBX call id is the same call. The URL may not lead the
worker into the network behind it: loopback, private and link-local addresses are refused when the
call comes and when the worker downloads, redirects included, unless a setting allows them."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.calls.schemas import CallMetadataCreate
from api.calls.service import ingest_webhook
from api.core.netguard import GuardedTransport

CLIP = (Path(__file__).parent.parent / "data" / "clip_ru.wav").read_bytes()


class PBX(BaseHTTPRequestHandler):
    """/clip.wav; /flaky.wav fails twice with 503 first; /big.wav is over the size limit;
    /redirect?to=URL redirects there; else 404."""

    hits: dict[str, int] = {}
    hosts: list[str] = []  # the Host header of every request

    def do_GET(self) -> None:  # noqa: N802
        PBX.hits[self.path] = PBX.hits.get(self.path, 0) + 1
        PBX.hosts.append(self.headers.get("Host", ""))
        if self.path.startswith("/redirect?"):
            self.send_response(302)
            self.send_header("Location", parse_qs(urlsplit(self.path).query)["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
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


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler], address: tuple[str, int]) -> Iterator[int]:
    server = ThreadingHTTPServer(address, handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pbx() -> Iterator[str]:
    PBX.hits, PBX.hosts = {}, []
    with _serving(PBX, ("127.0.0.1", 0)) as port:
        yield f"http://127.0.0.1:{port}"


class Inside(PBX):
    """A server inside the network (127.0.0.2 here) that a webhook must not lead the worker to."""

    hits: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802
        Inside.hits[self.path] = Inside.hits.get(self.path, 0) + 1
        self.send_error(418)


@pytest.fixture
def inside(pbx) -> Iterator[str]:
    """On 127.0.0.2 at the PBX's port (so a name can stand for either)."""
    Inside.hits = {}
    with _serving(Inside, ("127.0.0.2", int(pbx.rsplit(":", 1)[1]))) as port:
        yield f"http://127.0.0.2:{port}"


@pytest.fixture
def settings(settings):
    """The PBX here listens on loopback, which is refused unless allowed."""
    settings.webhook_allowed_networks = [ip_network("127.0.0.0/8")]
    return settings


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


def test_download_is_retried_then_succeeds(client, people, processor, pauses, pbx):
    call_id = hook(client, {"recording_url": f"{pbx}/flaky.wav"}).json()["id"]
    processor.process_next()
    assert PBX.hits["/flaky.wav"] == 3
    assert pauses == [1.0, 2.0]  # a longer pause before each try: a PBX in trouble is not hammered
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


def _status(client, people, call_id: int) -> dict:
    return client.get(f"/api/v1/calls/{call_id}", headers=people.h("admin")).json()


def _queued_past_intake(db, url: str) -> int:
    """A webhook call whose URL was not checked when it came in (its name pointed elsewhere then)."""
    with db.sessions() as s:
        return ingest_webhook(s, url=url, meta=CallMetadataCreate(), actor=None).call.id


NOT_PUBLIC = [
    pytest.param("http://127.0.0.1:{port}/clip.wav", id="loopback"),
    pytest.param("http://localhost:{port}/clip.wav", id="a-name-for-loopback"),
    pytest.param("http://2130706433:{port}/clip.wav", id="loopback-as-a-number"),
    pytest.param("http://0.0.0.0:{port}/clip.wav", id="unspecified"),
    pytest.param("http://[::1]:{port}/clip.wav", id="loopback-ipv6"),
    pytest.param("http://[::ffff:127.0.0.1]:{port}/clip.wav", id="loopback-ipv4-mapped"),
    pytest.param("http://[64:ff9b::127.0.0.1]:{port}/clip.wav", id="loopback-nat64"),
    pytest.param("http://169.254.169.254/latest/meta-data/iam/security-credentials/", id="cloud-metadata"),
    pytest.param("http://10.20.30.40/clip.wav", id="private-10"),
    pytest.param("http://192.168.1.10/clip.wav", id="private-192-168"),
    pytest.param("http://172.16.0.1/clip.wav", id="private-172-16"),
    pytest.param("http://100.64.0.1/clip.wav", id="carrier-grade-nat"),
    pytest.param("http://[fd00::10]/clip.wav", id="unique-local-ipv6"),
    pytest.param("http://[fe80::1]/clip.wav", id="link-local-ipv6"),
    pytest.param("http://224.0.0.1/clip.wav", id="multicast"),
    pytest.param("http://240.0.0.1/clip.wav", id="reserved"),
]


@pytest.mark.parametrize("url", NOT_PUBLIC)
def test_a_recording_url_inside_the_network_is_refused_when_the_call_comes(client, people, settings, pbx, url):
    settings.webhook_allowed_networks = []
    r = hook(client, {"recording_url": url.format(port=pbx.rsplit(":", 1)[1])})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "recording_url_not_allowed"
    assert "CALLQA_WEBHOOK_ALLOWED_NETWORKS" in error["message"]
    assert client.get("/api/v1/calls", headers=people.h("admin")).json()["total"] == 0


@pytest.mark.parametrize("url", [p for p in NOT_PUBLIC if p.id in (
    "loopback", "a-name-for-loopback", "loopback-as-a-number", "unspecified", "loopback-ipv4-mapped", "cloud-metadata")])
def test_the_worker_refuses_to_download_from_inside_the_network(client, people, settings, db, processor, pbx, url):
    """The worker's check is the one that counts: a name can point elsewhere by the time it downloads."""
    settings.webhook_allowed_networks = []
    settings.download_timeout_seconds, settings.download_retries = 2, 0  # the metadata address may not answer here
    call_id = _queued_past_intake(db, url.format(port=pbx.rsplit(":", 1)[1]))
    processor.process_next()
    call = _status(client, people, call_id)
    assert call["status"] == "failed" and call["error"]["code"] == "recording_url_not_allowed", call["error"]
    assert "CALLQA_WEBHOOK_ALLOWED_NETWORKS" in call["error"]["message"]
    assert call["attempts"] == 1  # not retried: a person has to change the URL or the setting
    assert PBX.hits == {}


@pytest.mark.parametrize("target", [
    pytest.param("{inside}/clip.wav", id="another-loopback-address"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param("http://10.0.0.1/clip.wav", id="private"),
    pytest.param("http://[::1]:{port}/clip.wav", id="loopback-ipv6"),
])
def test_a_redirect_into_the_network_is_not_followed(client, people, settings, processor, pbx, inside, target):
    settings.webhook_allowed_networks = [ip_network("127.0.0.1/32")]  # the PBX, and nothing else inside
    settings.download_timeout_seconds, settings.download_retries = 2, 0
    to = target.format(inside=inside, port=pbx.rsplit(":", 1)[1])
    r = hook(client, {"recording_url": f"{pbx}/redirect?to={to}"})
    assert r.status_code == 202, r.text
    processor.process_next()
    call = _status(client, people, r.json()["id"])
    assert call["status"] == "failed" and call["error"]["code"] == "recording_url_not_allowed", call["error"]
    assert sum(PBX.hits.values()) == 1 and Inside.hits == {}


def test_with_the_setting_a_pbx_inside_is_reached_by_name_and_through_a_redirect(client, people, processor, pbx):
    port = pbx.rsplit(":", 1)[1]
    by_name = hook(client, {"recording_url": f"http://localhost:{port}/clip.wav", "external_id": "by-name"}).json()["id"]
    assert processor.process_next() == by_name
    assert _status(client, people, by_name)["status"] == "done"
    assert PBX.hosts == [f"localhost:{port}"]  # connected by address, asked by name

    redirected = hook(client, {"recording_url": f"{pbx}/redirect?to={pbx}/flaky.wav", "external_id": "redirected"}).json()["id"]
    assert processor.process_next() == redirected
    assert _status(client, people, redirected)["status"] == "done"


def test_the_worker_connects_to_the_address_it_checked(client, people, settings, db, processor, pbx, inside, monkeypatch):
    """A name that answers the check with an allowed address and the connection with another (DNS
    rebinding) gets nowhere: the name is looked up once. The resolver is the one thing faked here."""
    settings.webhook_allowed_networks = [ip_network("127.0.0.1/32")]
    port = int(pbx.rsplit(":", 1)[1])
    lookups: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host != "pbx.example":
            return real(host, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    call_id = _queued_past_intake(db, f"http://pbx.example:{port}/clip.wav")
    processor.process_next()
    assert _status(client, people, call_id)["status"] == "done"
    assert PBX.hosts == [f"pbx.example:{port}"] and Inside.hits == {}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_over_tls_the_name_is_sent_and_the_certificate_checked_against_it(tmp_path, pbx, monkeypatch):
    """Connected by address, the request still says the name: in SNI, in Host and to the certificate check."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=pbx.example", "-addext", "subjectAltName=DNS:pbx.example"], check=True, capture_output=True)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_side.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), PBX)
    server.socket = server_side.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: [
        (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))] if host == "pbx.example"
        else real(host, *args, **kwargs))
    transport = GuardedTransport(allowed=[ip_network("127.0.0.1/32")], verify=ssl.create_default_context(cafile=cert))
    try:
        with httpx.Client(transport=transport) as client:
            assert client.get(f"https://pbx.example:{port}/clip.wav").content == CLIP
            assert names == ["pbx.example"] and PBX.hosts == [f"pbx.example:{port}"]
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # the certificate is not for the address
                client.get(f"https://127.0.0.1:{port}/clip.wav")
    finally:
        server.shutdown()
        server.server_close()
