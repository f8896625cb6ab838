"""The few seconds' memory of sign-ins (``api.auth.cache.AuthCache``): what a user sees of it.

A logout, a new role, a deactivation or a team change made through this process takes effect at once;
one made elsewhere (another worker, the CLI: here a second engine on the same database) within the
cache's lifetime; a token expires on time even while it is remembered.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from api.auth.cache import enable_auth_cache
from api.core.db import Database
from api.core.security import token_digest
from api.models import ApiToken, Manager, Team, User

from .conftest import PASSWORD

API = "/api/v1"


def _token(client, username: str) -> dict[str, str]:
    r = client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _managers_seen(client, auth: dict[str, str]) -> set[int]:
    r = client.get(f"{API}/managers", headers=auth)
    assert r.status_code == 200, r.text
    return {m["id"] for m in r.json()}


def test_logout_takes_effect_at_once_for_a_remembered_token(client, people):
    auth = _token(client, "head_of_sales")
    for _ in range(2):  # the second request is answered from memory
        assert client.get(f"{API}/calls", headers=auth).status_code == 200
    assert client.post(f"{API}/auth/logout", headers=auth).status_code == 204
    r = client.get(f"{API}/calls", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"


def test_a_new_role_and_a_deactivation_take_effect_at_once(client, people, db):
    auth = _token(client, "quality_controller")
    assert client.get(f"{API}/audit", headers=auth).status_code == 200
    with db.sessions() as s:
        user_id = s.scalar(select(User.id).where(User.username == "quality_controller"))
    r = client.patch(f"{API}/users/{user_id}", json={"role": "manager"}, headers=people.h("admin"))
    assert r.status_code == 200, r.text
    assert client.get(f"{API}/audit", headers=auth).status_code == 403
    assert client.get(f"{API}/auth/me", headers=auth).json()["role"] == "manager"
    assert client.patch(f"{API}/users/{user_id}", json={"active": False}, headers=people.h("admin")).status_code == 200
    r = client.get(f"{API}/auth/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "user_inactive"


def test_a_team_change_changes_what_a_head_sees_at_once(client, people, db):
    head = people.h("head_of_sales")
    assert _managers_seen(client, head) == {people.manager_id, people.other_manager_id}
    r = client.post(f"{API}/teams", json={"name": "Kazan", "head_user_id": None}, headers=people.h("admin"))
    assert r.status_code == 201, r.text
    r = client.patch(f"{API}/managers/{people.other_manager_id}", json={"team_id": r.json()["id"]}, headers=people.h("admin"))
    assert r.status_code == 200, r.text
    assert _managers_seen(client, head) == {people.manager_id}
    with db.sessions() as s:  # a write by this process outside the API (a command, an import) counts too
        s.add(Manager(name="Vera", team_id=people.team_id))
        s.commit()
        vera = s.scalar(select(Manager.id).where(Manager.name == "Vera"))
    assert _managers_seen(client, head) == {people.manager_id, vera}


def test_a_change_made_elsewhere_takes_effect_within_the_cache_lifetime(client, people, db, settings):
    cache = enable_auth_cache(db.engine)
    cache.ttl = 1.0
    auth = _token(client, "quality_controller")
    head = people.h("head_of_sales")
    r = client.get(f"{API}/auth/me", headers=auth)
    assert r.status_code == 200, r.text
    assert _managers_seen(client, head) == {people.manager_id, people.other_manager_id}
    other = Database(settings)  # another process's connection to the same database
    try:
        with other.sessions() as s:
            s.execute(update(ApiToken).where(ApiToken.token_hash == token_digest(auth["Authorization"].split()[1]))
                      .values(revoked_at=datetime.now(UTC)))
            s.execute(update(Team).where(Team.id == people.team_id).values(head_user_id=None))
            s.commit()
    finally:
        other.dispose()
    time.sleep(cache.ttl + 0.1)
    r = client.get(f"{API}/auth/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    # heading no team any more: no manager at all (an admin makes a head the head of a team)
    assert _managers_seen(client, head) == set()


def test_a_remembered_token_still_expires_on_time(client, people, settings):
    settings.token_hours = 1.5 / 3600
    auth = _token(client, "admin")
    assert client.get(f"{API}/auth/me", headers=auth).status_code == 200
    issued = datetime.now(UTC)
    time.sleep(max(0.0, (issued + timedelta(seconds=1.6) - datetime.now(UTC)).total_seconds()))
    r = client.get(f"{API}/auth/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
