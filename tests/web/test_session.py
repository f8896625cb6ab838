"""The web session without a browser: the cookie lets the pages' scripts read the API, writes need
the CSRF token too, and sign-in only ever sends a person back to a page of this site."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.service import create_user
from api.bootstrap import bootstrap
from api.core.config import get_service_settings
from api.core.db import Database
from api.models import Role
from api.web.auth import csrf_for
from api.web.pages import safe_next
from tests.helpers import NoExecutor


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = get_service_settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'callqa.db'}",
                                    admin_password="orange-harbor-lantern")
    bootstrap(settings)
    db = Database(settings)
    with db.sessions() as s:
        create_user(s, actor=None, username="okk", password="lemon-glacier-spoon", role=Role.quality_controller)
    with TestClient(create_app(settings, db=db, executor=NoExecutor()), base_url="http://127.0.0.1") as c:
        yield c
    db.dispose()


def _sign_in(client: TestClient, next_: str = "/") -> str:
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token
    r = client.post("/login", data={"login_csrf": token.group(1), "next": next_, "username": "okk",
                                    "password": "lemon-glacier-spoon"}, follow_redirects=False)
    assert r.status_code == 303
    return r.headers["location"]


def test_the_session_cookie_reads_the_api_and_writes_only_with_the_csrf_token(client):
    _sign_in(client)
    session = client.cookies.get("callqa_session")
    assert session
    assert client.get("/api/v1/auth/me").json()["username"] == "okk"
    assert client.post("/api/v1/calls/rescore", json={"dry_run": True}).status_code == 401
    r = client.post("/api/v1/calls/rescore", json={"dry_run": True}, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 401
    r = client.post("/api/v1/calls/rescore", json={"dry_run": True}, headers={"X-CSRF-Token": csrf_for(session)})
    assert r.status_code == 200 and r.json()["dry_run"] is True


def test_the_sign_in_form_needs_its_own_token(client):
    client.get("/login")
    r = client.post("/login", data={"login_csrf": "guessed", "next": "/", "username": "okk", "password": "lemon-glacier-spoon"},
                    follow_redirects=False)
    assert r.status_code == 403 and "callqa_session" not in r.headers.get("set-cookie", "")


def test_a_page_without_a_session_sends_to_sign_in_and_back(client):
    r = client.get("/calls?status=done", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/calls%3Fstatus%3Ddone"
    assert _sign_in(client, "/calls?status=done") == "/calls?status=done"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", ""])
def test_sign_in_never_sends_a_person_to_another_site(target):
    assert safe_next(target) == "/"


def test_a_page_of_this_site_is_kept():
    assert safe_next("/calls/12#stage-greeting") == "/calls/12#stage-greeting"
