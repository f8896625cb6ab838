"""Who may call what: every route of the API refuses a missing token with 401 and a manager with 403
where the role is not enough; signing out and expiry end a token; users, teams and managers refuse
duplicates and impossible ids with a JSON error instead of a server error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from api.core.security import token_digest
from api.models import ApiToken, Role
from tests.helpers import PASSWORD

from .routing import api_routes, role_sets

API = "/api/v1"
PUBLIC = {("POST", f"{API}/auth/token")}
# checked inside the handler rather than by a require() dependency: the PBX webhook takes an admin token or the secret
ADMIN_ONLY_INLINE = {("POST", f"{API}/webhooks/pbx")}
# the matrix must at least find these admin-and-staff-only endpoints closed to a manager
MUST_REFUSE_A_MANAGER = {
    ("GET", f"{API}/users"), ("POST", f"{API}/users"), ("PATCH", f"{API}/users/1"), ("POST", f"{API}/teams"),
    ("PATCH", f"{API}/teams/1"), ("POST", f"{API}/calls/import"), ("POST", f"{API}/calls/1/retry"),
    ("POST", f"{API}/calls"), ("POST", f"{API}/calls/rescore"), ("GET", f"{API}/audit"),
    ("POST", f"{API}/calls/1/reviews"), ("POST", f"{API}/webhooks/pbx"), ("POST", f"{API}/managers"),
}


def test_the_matrix_covers_the_schema(app, client):
    routes = {(m, r.path_format) for m, _, r in api_routes(app)}
    documented = {(m.upper(), p) for p, ops in client.get("/openapi.json").json()["paths"].items() for m in ops
                  if p.startswith(API)}
    assert documented == routes and len(routes) >= 25


def test_without_a_token_every_protected_endpoint_answers_401(app, client):
    checked = 0
    for method, path, _ in api_routes(app):
        if (method, path) in PUBLIC:
            continue
        r = client.request(method, path)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "unauthorized" and r.json()["error"]["message"], (method, path)
        assert r.headers["www-authenticate"] == "Bearer", (method, path)
        bad = client.request(method, path, headers={"Authorization": "Bearer cqa_not-a-token"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_token", (method, path)
        checked += 1
    assert checked >= 25


def test_a_manager_is_refused_where_the_role_is_not_enough(app, client, people):
    refused = set()
    for method, path, route in api_routes(app):
        roles = role_sets(route)
        if (method, path) not in ADMIN_ONLY_INLINE and all(Role.manager in allowed for allowed in roles):
            continue
        r = client.request(method, path, headers=people.h("manager"))
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "forbidden" and "you are manager" in r.json()["error"]["message"]
        refused.add((method, path))
    assert MUST_REFUSE_A_MANAGER <= refused
    # ...and what a manager may do still works
    assert client.get(f"{API}/auth/me", headers=people.h("manager")).json()["role"] == "manager"
    assert client.get(f"{API}/calls", headers=people.h("manager")).status_code == 200


def sign_in(client, username: str) -> dict:
    r = client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_signed_out_token_no_longer_works(client, people):
    token = sign_in(client, "quality_controller")["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/auth/me", headers=auth).json()["username"] == "quality_controller"
    assert client.post(f"{API}/auth/logout", headers=auth).status_code == 204
    r = client.get(f"{API}/auth/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    assert client.get(f"{API}/calls", headers=auth).status_code == 401
    # the user's other sessions are not signed out
    assert client.get(f"{API}/auth/me", headers=people.h("quality_controller")).status_code == 200


def test_a_token_expires(client, people, db, settings):
    issued = sign_in(client, "head_of_sales")
    lifetime = datetime.fromisoformat(issued["expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=settings.token_hours) - timedelta(minutes=1) < lifetime <= timedelta(hours=settings.token_hours)
    auth = {"Authorization": f"Bearer {issued['access_token']}"}
    assert client.get(f"{API}/auth/me", headers=auth).status_code == 200
    with db.sessions() as s:  # the token's lifetime has passed
        s.execute(update(ApiToken).where(ApiToken.token_hash == token_digest(issued["access_token"]))
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    r = client.get(f"{API}/auth/me", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_token_lives_as_long_as_the_setting_says(client, people, settings):
    settings.token_hours = 1e-9  # CALLQA_TOKEN_HOURS: over before the next request
    token = sign_in(client, "admin")["access_token"]
    r = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"


def test_an_impossible_id_is_a_validation_error(client, people):
    for path in ("/calls/{id}", "/calls/{id}/recording", "/calls/{id}/reviews", "/disputes/{id}", "/managers/{id}"):
        for value in (2**63, 2**31, 0):
            r = client.get(API + path.replace("{id}", str(value)), headers=people.h("admin"))
            assert r.status_code == 422, (path, value, r.text)
            assert r.json()["error"]["code"] == "validation_error"
        for value in (-1, "abc", "1.5"):  # not a number of a row at all: no such address
            r = client.get(API + path.replace("{id}", str(value)), headers=people.h("admin"))
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, value, r.text)
            assert "no such address" in r.json()["error"]["message"]


def test_impossible_ids_in_queries_and_bodies_are_validation_errors(client, people):
    admin = people.h("admin")
    huge = 2**63
    for path, params in [("/calls", {"manager_id": huge}), ("/calls", {"team_id": huge}), ("/managers", {"team_id": huge}),
                         ("/disputes", {"call_id": huge}), ("/audit", {"user_id": huge})]:
        r = client.get(API + path, params=params, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (path, r.text)
    for method, path, body in [("PATCH", "/teams/1", {"head_user_id": huge}), ("POST", "/managers", {"name": "X", "team_id": huge}),
                               ("PATCH", f"/teams/{huge}", {"name": "X"}), ("PATCH", f"/users/{huge}", {"full_name": "X"}),
                               ("POST", "/calls/rescore", {"call_ids": [1, huge]})]:
        r = client.request(method, API + path, json=body, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (path, r.text)


def test_duplicate_teams_and_managers_are_conflicts(client, people):
    admin = people.h("admin")
    r = client.post(f"{API}/teams", json={"name": "Moscow"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "team_name_taken"
    assert r.json()["error"]["details"] == {"team_id": people.team_id}
    other = client.post(f"{API}/teams", json={"name": "Kazan"}, headers=admin).json()
    r = client.patch(f"{API}/teams/{other['id']}", json={"name": "Moscow"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "team_name_taken"
    assert client.patch(f"{API}/teams/{other['id']}", json={"name": None}, headers=admin).json()["name"] == "Kazan"

    r = client.post(f"{API}/managers", json={"name": "Another Anna", "external_id": "101"}, headers=people.h("head_of_sales"))
    assert r.status_code == 409 and r.json()["error"]["code"] == "manager_external_id_taken"
    assert r.json()["error"]["details"] == {"manager_id": people.manager_id}
    r = client.patch(f"{API}/managers/{people.other_manager_id}", json={"external_id": "101"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "manager_external_id_taken"
    login = client.get(f"{API}/auth/me", headers=people.h("manager")).json()["id"]
    r = client.post(f"{API}/managers", json={"name": "Anna again", "user_id": login}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "login_taken"
    r = client.post(f"{API}/users", json={"username": "admin", "password": "long-enough", "role": "admin"}, headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "username_taken"
    names = [m["name"] for m in client.get(f"{API}/managers", headers=admin).json()]
    assert names == ["Anna", "Boris"]
