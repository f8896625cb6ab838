"""Signing in as an attacker and a careless user would: guessing is throttled per username and per
address, an unknown username costs and answers the same as a wrong password, a new password signs
the user out everywhere, weak passwords are refused, and an administrator cannot demote themselves.
SQLite and PostgreSQL; the app's clock is moved instead of waiting."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import api.core.security
from api.app import create_app
from api.models import Role, User
from tests.helpers import PASSWORD, NoExecutor

API = "/api/v1"


def client_from(settings, db, clock, address: str) -> TestClient:
    return TestClient(create_app(settings, db=db, executor=NoExecutor(), clock=clock), client=(address, 40000))


@pytest.fixture
def attacker(settings, db, clock, people) -> Iterator[TestClient]:
    with client_from(settings, db, clock, "203.0.113.7") as c:
        yield c


@pytest.fixture
def colleague(settings, db, clock, people) -> Iterator[TestClient]:
    """Someone in the office, at another address."""
    with client_from(settings, db, clock, "198.51.100.20") as c:
        yield c


def sign_in(client, username: str, password: str):
    return client.post(f"{API}/auth/token", data={"username": username, "password": password})


def test_guessing_one_users_password_is_locked_and_the_lock_doubles(attacker, colleague, clock):
    for _ in range(5):
        r = sign_in(attacker, "quality_controller", "guess-guess-guess")
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
    # the sixth try is refused before the password is looked at, the right one too, from anywhere
    for client in (attacker, colleague):
        r = sign_in(client, "quality_controller", PASSWORD)
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_sign_ins", r.text
        assert r.headers["retry-after"] == "60"
    assert sign_in(colleague, "admin", PASSWORD).status_code == 200  # other users are not locked
    clock.advance(61)
    assert sign_in(attacker, "quality_controller", "guess-again-guess").status_code == 401
    r = sign_in(attacker, "quality_controller", PASSWORD)
    assert r.status_code == 429 and r.headers["retry-after"] == "120"  # doubled
    clock.advance(121)
    assert sign_in(colleague, "quality_controller", PASSWORD).status_code == 200
    # a success forgets the username's failures: five more before the next lock
    for _ in range(4):
        assert sign_in(colleague, "quality_controller", "one-more-wrong").status_code == 401
    assert sign_in(colleague, "quality_controller", PASSWORD).status_code == 200


def test_guessing_many_usernames_from_one_address_locks_the_address(attacker, colleague, clock):
    for i in range(30):
        assert sign_in(attacker, f"user{i}", "guess-guess-guess").status_code == 401
    r = sign_in(attacker, "admin", PASSWORD)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_sign_ins"
    assert sign_in(colleague, "admin", PASSWORD).status_code == 200  # from another address, fine
    clock.advance(901)
    assert sign_in(attacker, "admin", PASSWORD).status_code == 200


def test_an_unknown_username_costs_and_answers_the_same_as_a_wrong_password(attacker, monkeypatch):
    hashed: list[int] = []
    real = hashlib.scrypt

    def counted(*args, **kwargs):
        hashed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(api.core.security.hashlib, "scrypt", counted)
    unknown = sign_in(attacker, "no_such_user", "guess-guess-guess")
    unknown_cost = len(hashed)
    wrong = sign_in(attacker, "admin", "guess-guess-guess")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    assert unknown_cost == len(hashed) - unknown_cost == 1  # one password hash each: the same time
    for _ in range(4):
        sign_in(attacker, "no_such_user", "guess-guess-guess")
    hashed.clear()
    locked = sign_in(attacker, "no_such_user", PASSWORD)
    assert locked.status_code == 429 and hashed == []  # an unknown name is locked the same way, without hashing


def test_the_sign_in_page_says_when_to_try_again(attacker):
    page = attacker.get("/login")
    csrf = page.cookies.get("callqa_login_csrf")
    for _ in range(6):
        r = attacker.post("/login", data={"username": "manager", "password": "guess-guess-guess", "login_csrf": csrf,
                                          "next": "/"}, follow_redirects=False)
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    assert "Слишком много неудачных попыток входа. Попробуйте снова через 1 мин." in r.text


def test_a_new_password_signs_the_user_out_everywhere(client, people, db):
    token = sign_in(client, "head_of_sales", PASSWORD).json()["access_token"]
    old = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/auth/me", headers=old).status_code == 200
    user_id = client.get(f"{API}/auth/me", headers=old).json()["id"]
    r = client.patch(f"{API}/users/{user_id}", json={"password": "fresh-tundra-kettle-8"}, headers=people.h("admin"))
    assert r.status_code == 200, r.text
    for headers in (old, people.h("head_of_sales")):
        r = client.get(f"{API}/calls", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    assert sign_in(client, "head_of_sales", PASSWORD).status_code == 401
    assert sign_in(client, "head_of_sales", "fresh-tundra-kettle-8").status_code == 200
    assert client.get(f"{API}/auth/me", headers=people.h("admin")).status_code == 200  # the admin's own session stays


def test_a_user_changes_own_password_and_other_sessions_end(client, people):
    elsewhere = {"Authorization": f"Bearer {sign_in(client, 'manager', PASSWORD).json()['access_token']}"}
    here = people.h("manager")
    r = client.post(f"{API}/auth/password", json={"current_password": "not-it", "new_password": "fresh-tundra-kettle-8"},
                    headers=here)
    assert r.status_code == 400 and r.json()["error"]["code"] == "wrong_password"
    r = client.post(f"{API}/auth/password", json={"current_password": PASSWORD, "new_password": "12345678"}, headers=here)
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    r = client.post(f"{API}/auth/password", json={"current_password": PASSWORD, "new_password": "fresh-tundra-kettle-8"},
                    headers=here)
    assert r.status_code == 204, r.text
    assert client.get(f"{API}/auth/me", headers=here).status_code == 200
    assert client.get(f"{API}/auth/me", headers=elsewhere).status_code == 401
    assert sign_in(client, "manager", "fresh-tundra-kettle-8").status_code == 200


WEAK = [("12345678", "digits"), ("password", "common"), ("password123", "common-with-digits"),
        ("new_user_1", "the-username"), ("my-new_user_1-pass", "contains-the-username"), ("qwertyuiop", "keyboard-row"),
        ("gfhjkm12345", "parol-typed-on-a-latin-layout"), ("пароль12345", "parol-with-digits"), ("йцукенгшщз", "russian-keyboard-row"),
        ("Moscow", "short")]


@pytest.mark.parametrize(("password", "why"), WEAK, ids=[w for _, w in WEAK])
def test_a_weak_password_is_refused(client, people, password, why):
    r = client.post(f"{API}/users", json={"username": "new_user_1", "password": password, "role": "manager"},
                    headers=people.h("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password", (why, r.text)
    assert client.post(f"{API}/users", json={"username": "new_user_1", "password": "Жёлтый трамвай едет к морю",
                                             "role": "manager"}, headers=people.h("admin")).status_code == 201


def test_a_weak_password_is_refused_on_a_reset_too(client, people, db):
    with db.sessions() as s:
        target = s.scalar(select(User).where(User.username == "manager"))
        before = target.password_hash
    r = client.patch(f"{API}/users/{target.id}", json={"password": "manager123"}, headers=people.h("admin"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "weak_password"
    with db.sessions() as s:
        assert s.get(User, target.id).password_hash == before
    assert client.get(f"{API}/auth/me", headers=people.h("manager")).status_code == 200


def test_an_administrator_cannot_demote_or_deactivate_themselves(client, people, db):
    me = client.get(f"{API}/auth/me", headers=people.h("admin")).json()
    for change in ({"role": "manager"}, {"role": "quality_controller"}, {"active": False}, {"role": "admin", "active": False}):
        r = client.patch(f"{API}/users/{me['id']}", json=change, headers=people.h("admin"))
        assert r.status_code == 400 and r.json()["error"]["code"] == "self_demotion", (change, r.text)
    with db.sessions() as s:
        user = s.get(User, me["id"])
        assert (user.role, user.active) == (Role.admin, True)
    assert client.get(f"{API}/users", headers=people.h("admin")).status_code == 200
    # another administrator may do it
    other = client.post(f"{API}/users", json={"username": "second_admin", "password": "fresh-tundra-kettle-8", "role": "admin"},
                        headers=people.h("admin")).json()
    second = {"Authorization": f"Bearer {sign_in(client, 'second_admin', 'fresh-tundra-kettle-8').json()['access_token']}"}
    r = client.patch(f"{API}/users/{other['id']}", json={"role": "manager"}, headers=second)
    assert r.status_code == 400
    assert client.patch(f"{API}/users/{me['id']}", json={"role": "head_of_sales"}, headers=second).status_code == 200


def callqa(tmp_path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLQA_")}
    done = subprocess.run([sys.executable, "-m", "api", *args], capture_output=True, text=True, timeout=120,
                          env={**environ, "CALLQA_DATA_DIR": str(tmp_path / "data"), **env})
    done.stdout = " ".join((done.stdout + done.stderr).split())  # what the terminal showed, unwrapped
    return done


@pytest.mark.slow
def test_the_command_line_refuses_weak_passwords_too(tmp_path):
    weak_admin = callqa(tmp_path, "db", "upgrade", env={"CALLQA_ADMIN_PASSWORD": "admin12345"})
    assert weak_admin.returncode == 2 and "CALLQA_ADMIN_PASSWORD: the password contains the username" in weak_admin.stdout
    strong = {"CALLQA_ADMIN_PASSWORD": PASSWORD}
    assert callqa(tmp_path, "db", "upgrade", env=strong).returncode == 0
    weak = callqa(tmp_path, "user", "okk", "--role", "quality_controller", "--password", "qwerty12345", env=strong)
    assert weak.returncode == 1 and "easy to guess" in weak.stdout
    made = callqa(tmp_path, "user", "okk", "--role", "quality_controller", "--password", "lemon-glacier-spoon", env=strong)
    assert made.returncode == 0 and "user okk (quality_controller) created" in made.stdout
