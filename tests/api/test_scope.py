"""Least privilege per role *and* per team: a head of sales of one team, and a manager, never see or
change anything of another team, through any route of the API or the web UI, its lists, exports,
audit log, re-scores, examples or imports. Two teams on SQLite and PostgreSQL:

- Moscow (``people``): its head ``head_of_sales``, the manager Anna (login ``manager``) and Boris;
- Kazan: its head ``head_kazan``, the manager Vera (login ``vera``); everything Kazan owns carries
  the mark ``zq9kazan`` (names, the transcript, a review comment, a dispute reason, a file name, a
  CRM client), so a leak shows wherever it lands.

Every GET route is called by Moscow's head and by Anna with Kazan's ids in the path and in every
filter the route takes; every route that changes something has a row in ``CHANGES`` (a new route
without one fails the coverage test) and is tried on Kazan's objects; Kazan's data must come out
unchanged and no answer may carry the mark.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from api.crm.models import Deal
from api.models import Call, CallStatus, Dispute, Manager, Review, Team, User
from api.web.auth import csrf_for
from tests.helpers import HANDLED_PRICE, PASSWORD, TWO_OBJECTIONS, UNHANDLED_PRICE, score, tone, transcribed_call

from .routing import API, walk

MARK = "zq9kazan"
# Vera's call: the best-scored call where a price objection was handled (a colleague example anywhere)
VERA_TURNS = [*TWO_OBJECTIONS[:-3], {"speaker": "manager", "text": f"Понимаю {MARK}. А с чем вы сравниваете?"},
              *TWO_OBJECTIONS[-2:]]


@dataclass
class Kazan:
    team: int
    head: dict[str, str]
    vera_user: int
    vera_login: dict[str, str]
    vera: int
    vera_call: int
    vera_dispute: int
    anna_call: int
    boris_call: int
    moscow_review: int


def _sign_in(client, username: str) -> dict[str, str]:
    r = client.post(f"{API}/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def kazan(client, db, people) -> Kazan:
    admin = people.h("admin")
    head = client.post(f"{API}/users", json={"username": "head_kazan", "password": PASSWORD, "role": "head_of_sales",
                                             "full_name": f"Head {MARK}"}, headers=admin).json()
    team = client.post(f"{API}/teams", json={"name": f"Kazan {MARK}", "head_user_id": head["id"]}, headers=admin).json()["id"]
    vera_user = client.post(f"{API}/users", json={"username": f"vera_{MARK}", "password": PASSWORD, "role": "manager"},
                            headers=admin).json()["id"]
    vera = client.post(f"{API}/managers", json={"name": f"Vera {MARK}", "external_id": "201", "team_id": team,
                                                "user_id": vera_user}, headers=admin).json()["id"]
    anna_call = transcribed_call(client, db, people, UNHANDLED_PRICE, hz=400, manager_external_id="101",
                                 started_at="2026-11-03T09:00:00+00:00")
    boris_call = transcribed_call(client, db, people, HANDLED_PRICE, hz=410, manager_external_id="102",
                                  started_at="2026-11-04T09:00:00+00:00")
    # Vera's upload carries the mark in its file name
    r = client.post(f"{API}/calls", files=[("files", (f"{MARK}.wav", tone(420), "audio/wav"))],
                    data={"manager_external_id": "201", "started_at": "2026-11-05T09:00:00+00:00", "external_id": f"pbx-{MARK}"},
                    headers=admin)
    vera_call = r.json()["items"][0]["call_id"]
    with db.sessions() as s:
        call = s.get(Call, vera_call)
        call.status, call.transcript = CallStatus.done, {"language": "ru", "turns": VERA_TURNS}
        s.commit()
    score(client, people, [anna_call, boris_call, vera_call])
    qc = people.h("quality_controller")
    for call_id, value, comment in ((vera_call, "passed", f"{MARK} review"), (anna_call, "missed", "Moscow review")):
        r = client.post(f"{API}/calls/{call_id}/reviews", json={"kind": "stage", "item": "greeting", "value": value,
                                                                 "comment": comment}, headers=qc)
        assert r.status_code == 201, r.text
    moscow_review = r.json()["review"]["id"]
    vera_login = _sign_in(client, f"vera_{MARK}")
    r = client.post(f"{API}/calls/{vera_call}/disputes", json={"kind": "stage", "item": "greeting",
                                                               "reason": f"{MARK} dispute"}, headers=vera_login)
    assert r.status_code == 201, r.text
    vera_dispute = r.json()["id"]
    deals = [{"deal_id": f"K-{i}", "created_at": "2026-11-02", "closed_at": "2026-11-20", "status": "won",
              "amount": 1000 * i, "manager": f"Vera {MARK}", "client": f"{MARK} LLC"} for i in (1, 2)]
    deals.append({"deal_id": "M-1", "created_at": "2026-11-02", "closed_at": "2026-11-21", "status": "won",
                  "amount": 500, "manager": "Anna", "client": "Moscow LLC"})
    r = client.post(f"{API}/crm/records", json={"entity": "deals", "records": deals}, headers=admin)
    assert r.status_code == 200 and r.json()["inserted"] == 3, r.text
    return Kazan(team=team, head=_sign_in(client, "head_kazan"), vera_user=vera_user, vera_login=vera_login, vera=vera,
                 vera_call=vera_call, vera_dispute=vera_dispute, anna_call=anna_call,
                 boris_call=boris_call, moscow_review=moscow_review)


def kazan_snapshot(db, k: Kazan) -> str:
    """Everything Kazan owns, as stored: a digest that any change moves."""
    with db.sessions() as s:
        rows: list[Any] = [
            [(c.id, c.manager_id, c.status, c.score, c.machine_score, c.uncertain, c.script_version, c.external_id,
              json.dumps(c.report, sort_keys=True, default=str)) for c in s.scalars(select(Call).where(Call.manager_id == k.vera))],
            [(r.id, r.call_id, r.item, r.human_value, r.comment) for r in s.scalars(select(Review).where(Review.call_id == k.vera_call))],
            [(d.id, d.status, d.reason, d.resolution) for d in s.scalars(select(Dispute).where(Dispute.call_id == k.vera_call))],
            [(m.id, m.name, m.team_id, m.user_id, m.external_id, m.active) for m in s.scalars(select(Manager).where(Manager.id == k.vera))],
            [(t.id, t.name, t.head_user_id) for t in s.scalars(select(Team).where(Team.id == k.team))],
            [(u.id, u.username, u.full_name, u.role, u.active, u.password_hash) for u in
             s.scalars(select(User).where(User.id == k.vera_user))],
            [(d.key, d.manager_id, d.manager_name, d.amount, d.status, d.client) for d in
             s.scalars(select(Deal).where(Deal.manager_name == f"Vera {MARK}").order_by(Deal.key))],
        ]
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


def text_of(response) -> str:
    """What a person would read in an answer: the body, an XLSX's cells and sheet names included."""
    if response.content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(response.content)) as z:
            return "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".xml"))
    return response.content.decode("utf-8", "replace")


# -- every GET route ---------------------------------------------------------------------------------

def path_ids(k: Kazan) -> dict[str, Any]:
    """Kazan's object for every kind of id a path takes."""
    return {"call_id": k.vera_call, "dispute_id": k.vera_dispute, "manager_id": k.vera, "team_id": k.team,
            "user_id": k.vera_user, "script_id": "ru_b2b_outbound", "version": "1.0"}


def query_variants(k: Kazan) -> list[dict[str, Any]]:
    """Filters that name Kazan's objects (a route gets those of its parameters it takes)."""
    return [{}, {"team_id": k.team}, {"manager_id": k.vera}, {"call_id": k.vera_call}, {"user_id": k.vera_user},
            {"entity": "call", "entity_id": str(k.vera_call)}, {"entity": "dispute", "entity_id": str(k.vera_dispute)},
            {"entity": "manager", "entity_id": str(k.vera)}, {"entity": "team", "entity_id": str(k.team)},
            {"entity": "user", "entity_id": str(k.vera_user)}, {"external_id": f"pbx-{MARK}"}, {"by": "team"},
            {"by": "department"}, {"by": "all", "trend": "week"}, {"format": "csv"}, {"format": "xlsx"},
            {"team_id": k.team, "format": "csv"}, {"stage_missed": "greeting"}, {"status": "open"}]


def requests_of(routes, k: Kazan, *, prefix: str) -> list[tuple[str, dict[str, Any], bool]]:
    """(path, query, names a Kazan object in the path) for every GET route under ``prefix``."""
    found = []
    ids = path_ids(k)
    for route in routes:
        if "GET" not in route.methods or not route.path.startswith(prefix) or route.path.startswith("/static"):
            continue
        path = route.path_format
        scoped = False
        for param in route.dependant.path_params:
            path = path.replace("{" + param.name + "}", str(ids[param.name]))
            scoped |= param.name.endswith("_id") and param.name != "script_id"
        names = {p.alias or p.name for p in route.dependant.query_params}
        seen = set()
        for variant in query_variants(k):
            query = {key: v for key, v in variant.items() if key in names}
            if "period" in names:
                query["period"] = "2026-11"
            key = json.dumps(query, sort_keys=True)
            if key not in seen:
                seen.add(key)
                found.append((path, query, scoped))
    return found


@pytest.mark.parametrize("persona", ["head_of_sales", "manager", "head_of_no_team"])
def test_no_get_route_shows_another_teams_data(app, client, db, people, kazan, persona):
    headers = people.h(persona) if persona in people.tokens else _head_of_no_team(client, people)
    before = kazan_snapshot(db, kazan)
    checked = 0
    for path, query, scoped in requests_of(walk(app.routes), kazan, prefix=API):
        r = client.get(path, params=query, headers=headers)
        assert r.status_code < 500, (path, query, r.text)
        assert MARK not in text_of(r), (persona, path, query, text_of(r)[:500])
        if scoped:  # another team's call, dispute, manager, team or user: not found, or not for this role
            assert r.status_code in (403, 404), (persona, path, r.status_code, r.text[:300])
        checked += 1
    assert checked >= 45
    assert kazan_snapshot(db, kazan) == before


@pytest.mark.parametrize("persona", ["head_of_sales", "manager", "head_of_no_team"])
def test_no_web_page_shows_another_teams_data(app, client, db, people, kazan, persona):
    token = people.tokens[persona] if persona in people.tokens else \
        _head_of_no_team(client, people)["Authorization"].split()[1]
    cookie = {"Cookie": f"callqa_session={token}"}
    checked = 0
    for path, query, scoped in requests_of(walk(app.routes), kazan, prefix="/"):
        if path.startswith(API) or path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect", "/login"):
            continue
        r = client.get(path, params=query, headers=cookie, follow_redirects=False)
        assert r.status_code < 500, (path, query, r.text[:300])
        assert MARK not in text_of(r), (persona, path, query)
        if scoped and r.status_code == 200:
            raise AssertionError(f"{persona} opened {path} of another team")
        checked += 1
    assert checked >= 10


def _head_of_no_team(client, people) -> dict[str, str]:
    r = client.post(f"{API}/users", json={"username": "head_idle", "password": PASSWORD, "role": "head_of_sales"},
                    headers=people.h("admin"))
    assert r.status_code == 201, r.text
    return _sign_in(client, "head_idle")


def test_a_head_of_sales_who_heads_no_team_sees_no_one(client, people, kazan):
    idle = _head_of_no_team(client, people)
    assert client.get(f"{API}/calls", headers=idle).json()["total"] == 0
    assert client.get(f"{API}/managers", headers=idle).json() == []
    assert client.get(f"{API}/teams", headers=idle).json() == []
    assert client.get(f"{API}/disputes", headers=idle).json()["total"] == 0
    assert client.get(f"{API}/kpi", params={"period": "2026-11"}, headers=idle).json()["summary"] == []
    assert client.get(f"{API}/reviews/agreement", headers=idle).json()["reviews"] == 0
    # ...while the heads of both teams see their own
    assert {c["manager"]["name"] for c in client.get(f"{API}/calls", headers=people.h("head_of_sales")).json()["items"]} \
        == {"Anna", "Boris"}
    assert {c["manager"]["name"] for c in client.get(f"{API}/calls", headers=kazan.head).json()["items"]} == {f"Vera {MARK}"}


# -- every route that changes something -------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """A request that would change Kazan's data if it were allowed."""

    kwargs: Any  # (Kazan) -> keyword arguments of client.request
    head: tuple[int, ...]  # what Moscow's head gets
    manager: tuple[int, ...] = (403,)  # what Anna gets
    company_wide: bool = False  # the script library belongs to the company, not a team (README: security model)


def _upload(k: Kazan, **data: Any) -> dict[str, Any]:
    return {"files": [("files", ("spy.wav", tone(430), "audio/wav"))], "data": data}


CHANGES: dict[tuple[str, str], Change] = {
    ("POST", "/api/v1/auth/token"): Change(lambda k: {"data": {"username": "head_kazan", "password": "wrong-guess"}}, (401,), (401,)),
    ("POST", "/api/v1/auth/logout"): Change(lambda k: {}, (204,), (204,)),  # signs out the caller only (last)
    ("POST", "/api/v1/auth/password"): Change(
        lambda k: {"json": {"current_password": "wrong", "new_password": "new-violet-kettle-99"}}, (400,), (400,)),
    ("POST", "/api/v1/users"): Change(lambda k: {"json": {"username": "spy", "password": PASSWORD, "role": "admin"}}, (403,)),
    ("PATCH", "/api/v1/users/{user_id}"): Change(lambda k: {"json": {"full_name": "hacked", "password": "hacked-violet-kettle-9"}},
                                                 (403,)),
    ("POST", "/api/v1/teams"): Change(lambda k: {"json": {"name": "spies"}}, (403,)),
    ("PATCH", "/api/v1/teams/{team_id}"): Change(lambda k: {"json": {"name": "hacked", "head_user_id": None}}, (403,)),
    ("POST", "/api/v1/managers"): Change(lambda k: {"json": {"name": "spy", "team_id": k.team}}, (404,)),
    ("PATCH", "/api/v1/managers/{manager_id}"): Change(lambda k: {"json": {"name": "hacked", "team_id": None}}, (404,)),
    ("POST", "/api/v1/calls"): Change(lambda k: _upload(k, manager_id=str(k.vera)), (400,)),
    ("POST", "/api/v1/calls/import"): Change(lambda k: {"json": {"folder": "."}}, (403,)),
    ("POST", "/api/v1/webhooks/pbx"): Change(lambda k: {"json": {"recording_url": "https://pbx.example/r.wav",
                                                                 "manager_external_id": "201"}}, (403,)),
    ("POST", "/api/v1/calls/{call_id}/retry"): Change(lambda k: {}, (403,)),
    ("POST", "/api/v1/calls/rescore"): Change(lambda k: {"json": {"call_ids": [k.vera_call]}}, (200,)),
    ("POST", "/api/v1/calls/{call_id}/reviews"): Change(
        lambda k: {"json": {"kind": "score", "value": 100, "comment": "x"}}, (403,)),
    ("POST", "/api/v1/calls/{call_id}/disputes"): Change(
        lambda k: {"json": {"kind": "stage", "item": "next_step", "reason": "x"}}, (403,), (404,)),
    ("POST", "/api/v1/disputes/{dispute_id}/resolve"): Change(lambda k: {"json": {"decision": "accept", "comment": "x"}}, (403,)),
    ("POST", "/api/v1/crm/import"): Change(lambda k: {"files": {"file": ("deals.csv", (
        b"deal_id,created_at,closed_at,status,amount,manager\nK-1,2026-11-02,2026-11-20,won,1,Vera zq9kazan\n"
        b"K-9,2026-11-02,2026-11-20,won,5,Vera zq9kazan\n"), "text/csv")}}, (200,)),
    ("POST", "/api/v1/crm/records"): Change(lambda k: {"json": {"entity": "deals", "records": [
        {"deal_id": "K-2", "created_at": "2026-11-02", "status": "lost", "manager": "Anna"},
        {"deal_id": "K-8", "created_at": "2026-11-02", "status": "won", "amount": 9, "manager": f"Vera {MARK}"}]}}, (200,)),
    ("POST", "/api/v1/scripts"): Change(lambda k: {}, (), company_wide=True),
    ("POST", "/api/v1/scripts/{script_id}/versions/{version}/activate"): Change(lambda k: {}, (), company_wide=True),
    # a version learned from every team's reviews: the company's script (its dry run is scoped: test_learning.py)
    ("POST", "/api/v1/scripts/{script_id}/learn"): Change(lambda k: {}, (), company_wide=True),
}


def test_every_route_that_changes_something_has_a_row(app):
    changing = {(m, r.path_format) for r in walk(app.routes) if r.path.startswith(API) for m in r.methods - {"GET", "HEAD"}}
    assert changing == set(CHANGES), "add the new route to CHANGES: " + repr(changing ^ set(CHANGES))


@pytest.mark.parametrize("persona", ["head_of_sales", "manager"])
def test_no_route_changes_another_teams_data(client, db, people, kazan, persona):
    before = kazan_snapshot(db, kazan)
    ids = path_ids(kazan)
    for (method, template), change in sorted(CHANGES.items(), key=lambda kv: kv[0][1].endswith("logout")):
        if change.company_wide:
            continue
        path = template
        for name, value in ids.items():
            path = path.replace("{" + name + "}", str(value))
        kwargs = change.kwargs(kazan)
        r = client.request(method, path, headers=people.h(persona), **kwargs)
        expected = change.head if persona == "head_of_sales" else change.manager
        assert r.status_code in expected, (persona, method, template, r.status_code, r.text[:300])
        if MARK not in repr(kwargs):  # an answer may repeat what the request said (a CRM file's names)
            assert MARK not in r.text, (persona, method, template, r.text[:300])
    assert kazan_snapshot(db, kazan) == before


WEB_CHANGES: dict[tuple[str, str], Any] = {
    # (method, path) -> form fields; the pages call the same scoped services as the API
    ("POST", "/login"): None,  # signing in: see test_signin.py
    ("POST", "/logout"): None,  # signs out the caller only
    ("POST", "/calls/{call_id}/review"): {"kind": "score", "value": "100", "comment": "x"},
    ("POST", "/calls/{call_id}/dispute"): {"kind": "stage", "item": "next_step", "reason": "x"},
    ("POST", "/disputes/{dispute_id}/resolve"): {"decision": "accept", "comment": "x"},
    ("POST", "/calls/{call_id}/retry"): {},
    ("POST", "/scripts/{script_id}"): None,  # the script library is the company's
    ("POST", "/scripts/{script_id}/activate"): None,  # ditto (heads of sales and admins)
    # learning is company-wide (the API's row); the calls its dry run lists are the learner's own: test_learning.py
    ("POST", "/scripts/{script_id}/learn"): None,
}


def test_every_page_form_has_a_row(app):
    forms = {(m, r.path_format) for r in walk(app.routes) if not r.path.startswith(API) for m in r.methods - {"GET", "HEAD"}}
    assert forms == set(WEB_CHANGES), repr(forms ^ set(WEB_CHANGES))


@pytest.mark.parametrize("persona", ["head_of_sales", "manager"])
def test_no_page_form_changes_another_teams_data(client, db, people, kazan, persona):
    before = kazan_snapshot(db, kazan)
    token = people.tokens[persona]
    ids = path_ids(kazan)
    for (method, template), fields in WEB_CHANGES.items():
        if fields is None:
            continue
        path = template
        for name, value in ids.items():
            path = path.replace("{" + name + "}", str(value))
        r = client.request(method, path, data={**fields, "csrf": csrf_for(token)}, follow_redirects=False,
                           headers={"Cookie": f"callqa_session={token}"})
        assert r.status_code in (303, 403, 404), (persona, template, r.status_code, r.text[:300])
        assert MARK not in r.text
    assert kazan_snapshot(db, kazan) == before


# -- what a head of sales may do in their own teams -------------------------------------------------

def test_a_head_of_sales_manages_the_managers_of_own_teams_only(client, people, kazan):
    head = people.h("head_of_sales")
    new = client.post(f"{API}/managers", json={"name": "Dina", "external_id": "103"}, headers=head)
    assert new.status_code == 201 and new.json()["team_id"] == people.team_id  # their only team
    r = client.patch(f"{API}/managers/{people.other_manager_id}", json={"name": "Boris B."}, headers=head)
    assert r.status_code == 200 and r.json()["name"] == "Boris B."
    # not out of their team, not into another, not someone else's
    r = client.patch(f"{API}/managers/{people.other_manager_id}", json={"team_id": kazan.team}, headers=head)
    assert r.status_code == 404 and r.json()["error"]["code"] == "team_not_found"
    r = client.patch(f"{API}/managers/{people.other_manager_id}", json={"team_id": None}, headers=head)
    assert r.status_code == 403 and r.json()["error"]["code"] == "team_required"
    for someone in (kazan.vera, 99999):  # another team's manager is as unknown as a missing one
        r = client.patch(f"{API}/managers/{someone}", json={"team_id": people.team_id}, headers=head)
        assert r.status_code == 404 and r.json()["error"] == {"code": "manager_not_found", "message": f"no manager {someone}"}
    # an external id taken in another team: refused without saying by whom
    r = client.post(f"{API}/managers", json={"name": "Copy", "external_id": "201"}, headers=head)
    assert r.status_code == 409 and "details" not in r.json()["error"] and MARK not in r.text
    # the admin moves anyone anywhere
    assert client.patch(f"{API}/managers/{kazan.vera}", json={"team_id": people.team_id},
                        headers=people.h("admin")).status_code == 200


def test_a_head_of_sales_uploads_for_own_managers_only(client, people, kazan):
    head = people.h("head_of_sales")

    def up(hz: float, **data: Any):
        return client.post(f"{API}/calls", files=[("files", (f"{hz:g}.wav", tone(hz), "audio/wav"))], data=data, headers=head)

    assert up(500, manager_external_id="101").status_code == 201
    for data, code in [({"manager_external_id": "201"}, "manager_not_found"), ({"manager_id": str(kazan.vera)}, "manager_not_found"),
                       ({"manager_external_id": "999"}, "manager_not_found"), ({}, "manager_required")]:
        r = up(510, **data)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (data, r.text)
    # Vera's recording again: refused without naming her call
    with_vera_bytes = client.post(f"{API}/calls", files=[("files", ("again.wav", tone(420), "audio/wav"))],
                                  data={"manager_external_id": "101"}, headers=head)
    assert with_vera_bytes.status_code == 409 and with_vera_bytes.json()["error"]["code"] == "duplicate_recording"
    assert str(kazan.vera_call) not in json.dumps(with_vera_bytes.json()["error"].get("details"))
    # a quality controller sees every team and may upload for a new extension
    r = client.post(f"{API}/calls", files=[("files", ("qc.wav", tone(520), "audio/wav"))], data={"manager_external_id": "777"},
                    headers=people.h("quality_controller"))
    assert r.status_code == 201


def test_a_head_of_sales_rescores_own_calls_only_and_cannot_tell_others_exist(client, people, kazan):
    head = people.h("head_of_sales")
    other = client.post(f"{API}/calls/rescore", json={"call_ids": [kazan.vera_call], "dry_run": True}, headers=head).json()
    missing = client.post(f"{API}/calls/rescore", json={"call_ids": [987654], "dry_run": True}, headers=head).json()
    assert other == missing and other["rescored"] == 0
    everything = client.post(f"{API}/calls/rescore", json={"dry_run": True}, headers=head).json()
    assert everything["rescored"] == 2  # Anna's and Boris's
    assert client.post(f"{API}/calls/rescore", json={"dry_run": True}, headers=people.h("quality_controller")).json()["rescored"] == 3


def test_the_audit_log_and_agreement_of_a_head_of_sales_cover_own_teams(client, people, kazan):
    head = client.get(f"{API}/audit", params={"limit": 500}, headers=people.h("head_of_sales")).json()
    assert MARK not in json.dumps(head)
    reviews = [e for e in head["items"] if e["action"] == "review.stage"]
    assert [e["entity_id"] for e in reviews] == [str(kazan.anna_call)]
    assert {e["entity_id"] for e in head["items"] if e["action"] == "call.ingest"} == {str(kazan.anna_call),
                                                                                     str(kazan.boris_call)}
    everyone = client.get(f"{API}/audit", params={"limit": 500}, headers=people.h("quality_controller")).json()
    assert {e["entity_id"] for e in everyone["items"] if e["action"] == "review.stage"} == {str(kazan.anna_call),
                                                                                           str(kazan.vera_call)}
    assert client.get(f"{API}/reviews/agreement", headers=people.h("head_of_sales")).json()["reviews"] == 1
    assert client.get(f"{API}/reviews/agreement", headers=kazan.head).json()["reviews"] == 1
    assert client.get(f"{API}/reviews/agreement", headers=people.h("quality_controller")).json()["reviews"] == 2


def test_a_head_of_sales_imports_crm_rows_of_own_managers_only(client, db, people, kazan):
    rows = [{"deal_id": "M-2", "created_at": "2026-11-03", "status": "won", "amount": 700, "manager": "Boris"},
            {"deal_id": "K-1", "created_at": "2026-11-02", "status": "lost", "manager": "Anna"},  # Vera's deal
            {"deal_id": "K-7", "created_at": "2026-11-03", "status": "won", "amount": 70, "manager": f"Vera {MARK}"},
            {"deal_id": "X-1", "created_at": "2026-11-03", "status": "won", "amount": 7, "manager": "Nobody Known"}]
    r = client.post(f"{API}/crm/records", json={"entity": "deals", "records": rows}, headers=people.h("head_of_sales"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["inserted"] == 1 and body["outside_scope"] == {"Anna": 1, f"Vera {MARK}": 1, "Nobody Known": 1}
    with db.sessions() as s:
        assert s.scalar(select(Deal.status).where(Deal.crm_id == "K-1")) == "won"
        assert s.scalar(select(Deal.id).where(Deal.crm_id.in_(["K-7", "X-1"]))) is None
        assert s.scalar(select(Deal.amount).where(Deal.crm_id == "M-2")) == 700


def test_a_managers_colleague_example_comes_from_own_team(client, people, kazan):
    page = client.get(f"/calls/{kazan.anna_call}", headers={"Cookie": f"callqa_session={people.tokens['manager']}"})
    assert page.status_code == 200
    assert MARK not in page.text
    assert "А с чем вы сравниваете?" in page.text  # Boris's answer, from the same team


def test_a_manager_and_a_head_get_the_same_answer_for_another_teams_object_and_a_missing_one(client, people, kazan):
    for headers in (people.h("manager"), people.h("head_of_sales")):
        for template, own, missing in [("/calls/{}", kazan.vera_call, 99999), ("/calls/{}/recording", kazan.vera_call, 99999),
                                       ("/calls/{}/reviews", kazan.vera_call, 99999), ("/disputes/{}", kazan.vera_dispute, 99999),
                                       ("/managers/{}", kazan.vera, 99999)]:
            a = client.get(API + template.format(own), headers=headers)
            b = client.get(API + template.format(missing), headers=headers)
            assert (a.status_code, a.json()["error"]["code"]) == (b.status_code, b.json()["error"]["code"]) == \
                (404, b.json()["error"]["code"]), template

