"""Re-scoring after a script change shows what changed, changes nothing on a dry run, keeps each
call to its own language, and keeps a reviewer's verdict on the objection it was given for.
Stored transcripts scored by the real scorer (no model); SQLite and PostgreSQL."""

from __future__ import annotations

import yaml
from sqlalchemy import select

from analyzer.scripts import BUNDLED_DIR
from api.models import AuditEntry, Call, CallObjection, CallStage
from tests.helpers import ENGLISH, HANDLED_PRICE, TWO_OBJECTIONS, UNHANDLED_PRICE, score, transcribed_call

API = "/api/v1"
RU = (BUNDLED_DIR / "ru_b2b_outbound.yaml").read_text(encoding="utf-8")


def new_version(version: str, edit) -> str:
    data = yaml.safe_load(RU)
    data["version"] = version
    edit(data)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def store_version(client, people, body: str, *, activate: bool = True) -> None:
    r = client.post(f"{API}/scripts", content=body.encode(), params={"activate": str(activate).lower()},
                    headers={**people.h("admin"), "Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text


def snapshot(db) -> dict:
    """What a re-score may change, as stored."""
    with db.sessions() as s:
        calls = {c.id: (c.score, c.machine_score, c.script_version, c.uncertain, c.report)
                 for c in s.scalars(select(Call).order_by(Call.id))}
        stages = sorted((r.call_id, r.stage_id, r.status) for r in s.scalars(select(CallStage)))
        objections = sorted((r.call_id, r.position, r.type, r.status) for r in s.scalars(select(CallObjection)))
        audit = s.query(AuditEntry).count()
    return {"calls": calls, "stages": stages, "objections": objections, "audit": audit}


def pitch_must_name_the_service(data: dict) -> None:
    """Version 2.0: the presentation must say 'мы предлагаем сервис'; 'мы возим' no longer counts."""
    stage = next(s for s in data["stages"] if s["id"] == "presentation")
    stage["phrasings"] = ["мы предлагаем сервис"]


def test_a_script_change_shows_what_changed_and_a_dry_run_changes_nothing(client, db, people):
    # calls of the head of sales' team (a head re-scores those only)
    handled = transcribed_call(client, db, people, HANDLED_PRICE, hz=300, manager_external_id="101")
    unhandled = transcribed_call(client, db, people, UNHANDLED_PRICE, hz=310, manager_external_id="102")
    english = transcribed_call(client, db, people, ENGLISH, hz=320, language="en", manager_external_id="101")
    score(client, people, [handled, unhandled, english])
    before = {i: client.get(f"{API}/calls/{i}", headers=people.h("admin")).json() for i in (handled, unhandled, english)}
    assert {s["id"]: s["status"] for s in before[handled]["stages"]}["presentation"] == "passed"
    assert before[handled]["script"] == {"id": "ru_b2b_outbound", "version": "1.0"}

    store_version(client, people, new_version("2.0", pitch_must_name_the_service))
    stored = snapshot(db)
    r = client.post(f"{API}/calls/rescore", json={"dry_run": True}, headers=people.h("quality_controller"))
    assert r.status_code == 200, r.text
    dry = r.json()
    assert snapshot(db) == stored  # nothing written, not even an audit entry
    assert (dry["dry_run"], dry["rescored"], dry["changed"]) == (True, 3, 2)
    assert dry["stage_flips"] == {"presentation": {"passed->missed": 2}}
    changes = {c["call_id"]: c for c in dry["changes"]}
    assert set(changes) == {handled, unhandled}  # the English call keeps its own script: unchanged
    for call_id in (handled, unhandled):
        change = changes[call_id]
        assert change["stages_changed"] == {"presentation": ["passed", "missed"]}
        assert change["score_before"] == before[call_id]["score"] == 54.5
        assert change["score_after"] < change["score_before"]
        assert change["objections_before"] == change["objections_after"]
    assert changes[handled]["objections_after"] == ["price:passed"]
    assert changes[unhandled]["objections_after"] == ["price:missed"]

    r = client.post(f"{API}/calls/rescore", json={}, headers=people.h("head_of_sales"))
    saved = r.json()
    assert saved["dry_run"] is False
    assert {k: saved[k] for k in ("rescored", "changed", "stage_flips", "changes")} == \
        {k: dry[k] for k in ("rescored", "changed", "stage_flips", "changes")}  # the dry run told the truth
    after = client.get(f"{API}/calls/{handled}", headers=people.h("admin")).json()
    assert after["script"] == {"id": "ru_b2b_outbound", "version": "2.0"}
    assert after["score"] == changes[handled]["score_after"]
    assert {s["id"]: s["status"] for s in after["stages"]}["presentation"] == "missed"
    missed = client.get(f"{API}/calls", params={"stage_missed": "presentation"}, headers=people.h("admin")).json()
    assert sorted(c["id"] for c in missed["items"]) == [handled, unhandled]
    assert client.get(f"{API}/calls/{english}", headers=people.h("admin")).json()["score"] == before[english]["score"]
    audit = client.get(f"{API}/audit", params={"action": "calls.rescore"}, headers=people.h("admin")).json()["items"]
    assert [e["after"] for e in audit] == [{"rescored": 3, "changed": 2}, {"rescored": 3, "changed": 3}]  # newest first

    # the same again: nothing left to change
    again = client.post(f"{API}/calls/rescore", json={"dry_run": True}, headers=people.h("admin")).json()
    assert (again["changed"], again["stage_flips"], again["changes"]) == (0, {}, [])


def test_rescore_with_a_script_scores_only_calls_in_its_language(client, db, people):
    russian = transcribed_call(client, db, people, HANDLED_PRICE, hz=330)
    english = transcribed_call(client, db, people, ENGLISH, hz=340, language="en")
    score(client, people, [russian, english])
    english_before = client.get(f"{API}/calls/{english}", headers=people.h("admin")).json()
    assert english_before["script"]["id"] == "en_b2b_outbound"

    r = client.post(f"{API}/calls/rescore", json={"script_id": "ru_b2b_outbound"}, headers=people.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["rescored"] == 1 and r.json()["script"] == {"id": "ru_b2b_outbound", "version": "1.0"}
    english_after = client.get(f"{API}/calls/{english}", headers=people.h("admin")).json()
    assert english_after["script"] == english_before["script"]
    assert english_after["stages"] == english_before["stages"] and english_after["score"] == english_before["score"]
    r = client.post(f"{API}/calls/rescore", json={"script_id": "en_b2b_outbound", "call_ids": [russian]},
                    headers=people.h("admin"))
    assert r.json()["rescored"] == 0
    assert client.get(f"{API}/calls/{russian}", headers=people.h("admin")).json()["script"]["id"] == "ru_b2b_outbound"


def review(client, people, call_id: int, item, value: str, comment: str = ""):
    return client.post(f"{API}/calls/{call_id}/reviews", json={"kind": "objection", "item": item, "value": value,
                                                                "comment": comment}, headers=people.h("quality_controller"))


def objections(client, people, call_id: int) -> list[tuple]:
    call = client.get(f"{API}/calls/{call_id}", headers=people.h("admin")).json()
    return [(o["position"], o["key"], o["type"], o["machine_status"], o["status"], o["reviewed"]) for o in call["objections"]]


def test_an_objection_review_stays_on_its_objection_when_a_rescore_moves_it(client, db, people):
    call_id = transcribed_call(client, db, people, TWO_OBJECTIONS, hz=350, manager_external_id="101")
    score(client, people, [call_id])
    assert objections(client, people, call_id) == [(0, "price@3", "price", "passed", "passed", False),
                                                   (1, "have_supplier@5", "have_supplier", "passed", "passed", False)]
    # the reviewer hears the supplier objection as not handled (by position), the price one as no objection (by key)
    r = review(client, people, call_id, 1, "missed", "вопрос задан, но ответа по сути нет")
    assert r.status_code == 201, r.text
    assert r.json()["review"]["item"] == "have_supplier@5" and r.json()["review"]["objection_type"] == "have_supplier"
    assert review(client, people, call_id, "price@3", "not_objection").status_code == 201
    dispute = client.post(f"{API}/calls/{call_id}/disputes", json={"kind": "objection", "item": 1, "reason": "я ответил"},
                          headers=people.h("manager"))
    assert dispute.status_code == 201 and dispute.json()["item"] == "have_supplier@5"
    assert objections(client, people, call_id) == [(0, "price@3", "price", "passed", "not_objection", True),
                                                   (1, "have_supplier@5", "have_supplier", "passed", "missed", True)]

    # a new version without the price objection: the supplier objection moves to position 0
    def no_price(data: dict) -> None:
        data["objections"] = [o for o in data["objections"] if o["type"] != "price"]

    store_version(client, people, new_version("2.0", no_price))
    r = client.post(f"{API}/calls/rescore", json={"call_ids": [call_id]}, headers=people.h("admin"))
    assert r.status_code == 200 and r.json()["changed"] == 1
    # the supplier verdict followed its objection; the price verdict applies to nothing now
    assert objections(client, people, call_id) == [(0, "have_supplier@5", "have_supplier", "passed", "missed", True)]
    call = client.get(f"{API}/calls/{call_id}", headers=people.h("admin")).json()
    assert call["uncertain"] == 0
    unhandled = client.get(f"{API}/calls", params={"objection_unhandled": "have_supplier"}, headers=people.h("admin")).json()
    assert [c["id"] for c in unhandled["items"]] == [call_id]
    # the open dispute is still about the same objection and resolves onto it
    r = client.post(f"{API}/disputes/{dispute.json()['id']}/resolve", json={"decision": "accept", "comment": "да, ответил"},
                    headers=people.h("quality_controller"))
    assert r.status_code == 200, r.text
    assert objections(client, people, call_id) == [(0, "have_supplier@5", "have_supplier", "passed", "passed", True)]
    # and an item that is neither a position nor a key is refused naming the keys
    r = review(client, people, call_id, "price@3", "passed")
    assert r.status_code == 400 and "have_supplier@5" in r.json()["error"]["message"]
