"""Every filter, sort and page of GET /calls, table-driven, on SQLite and PostgreSQL.

The calls are real uploads scored by the real scorer through POST /calls/rescore, from stored
transcripts (what the worker writes after transcribing), so no model runs here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.calls.list_index import CallListIndex, list_indexes
from api.calls.service import CallFilters
from api.models import Call
from api.processing import queue
from tests.helpers import (
    API,
    DOUBTFUL,
    ENGLISH,
    HANDLED_PRICE,
    TWO_OBJECTIONS,
    UNHANDLED_PRICE,
    score,
    tone,
    transcribed_call,
)


def build_calls(client, db, people) -> tuple[dict[str, int], int]:
    """Seven calls of four managers in two teams; returns their ids by name and the Kazan team's id."""
    admin = people.h("admin")
    kazan = client.post(f"{API}/teams", json={"name": "Kazan"}, headers=admin).json()["id"]
    assert client.post(f"{API}/managers", json={"name": "Vera", "external_id": "201", "team_id": kazan},
                       headers=admin).status_code == 201
    ids = {
        "anna_handled": transcribed_call(client, db, people, HANDLED_PRICE, hz=200, manager_external_id="101",
                                         started_at="2026-11-02T09:00:00+00:00"),
        "anna_two": transcribed_call(client, db, people, TWO_OBJECTIONS, hz=210, manager_external_id="101",
                                     started_at="2026-11-10T09:00:00+00:00"),
        "boris_unhandled": transcribed_call(client, db, people, UNHANDLED_PRICE, hz=220, manager_external_id="102",
                                            started_at="2026-11-05T09:00:00+00:00"),
        "boris_doubtful": transcribed_call(client, db, people, DOUBTFUL, hz=230, manager_external_id="102",
                                           started_at="2026-11-07T09:00:00+00:00"),
        "vera_english": transcribed_call(client, db, people, ENGLISH, hz=240, language="en", manager_external_id="201",
                                         started_at="2026-11-08T09:00:00+00:00"),
    }
    score(client, people, list(ids.values()))
    ids["vera_queued"] = client.post(f"{API}/calls", files=[("files", ("q.wav", tone(250), "audio/wav"))],
                                     data={"manager_external_id": "201", "started_at": "2026-11-09T09:00:00+00:00"},
                                     headers=admin).json()["items"][0]["call_id"]
    ids["vera_failed"] = client.post(f"{API}/calls", files=[("files", ("f.wav", tone(260), "audio/wav"))],
                                     data={"manager_external_id": "201", "started_at": "2026-11-01T09:00:00+00:00"},
                                     headers=admin).json()["items"][0]["call_id"]
    claim = queue.claim(db.sessions, worker="test", lease_seconds=30, call_id=ids["vera_failed"])
    assert claim is not None
    queue.fail(db.sessions, claim, code="audio_decode_error", message="f.wav: unreadable", permanent=True,
               max_attempts=3, backoff_seconds=0)
    return ids, kazan


# (id, query, the calls it lists in the default order: newest started first)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("all", {}, ["anna_two", "vera_queued", "vera_english", "boris_doubtful", "boris_unhandled", "anna_handled",
                 "vera_failed"]),
    ("manager", {"manager_id": "{anna}"}, ["anna_two", "anna_handled"]),
    ("team", {"team_id": "{kazan}"}, ["vera_queued", "vera_english", "vera_failed"]),
    ("team-and-manager", {"team_id": "{moscow}", "manager_id": "{boris}"}, ["boris_doubtful", "boris_unhandled"]),
    ("manager-of-another-team", {"team_id": "{kazan}", "manager_id": "{anna}"}, []),
    ("date-from", {"date_from": "2026-11-07T09:00:00Z"}, ["anna_two", "vera_queued", "vera_english", "boris_doubtful"]),
    ("date-to-is-exclusive", {"date_to": "2026-11-05T09:00:00Z"}, ["anna_handled", "vera_failed"]),
    ("date-range", {"date_from": "2026-11-03", "date_to": "2026-11-08"}, ["boris_doubtful", "boris_unhandled"]),
    ("date-range-in-a-zone", {"date_from": "2026-11-07T12:00:00+03:00", "date_to": "2026-11-07T12:00:01+03:00"},
     ["boris_doubtful"]),
    ("status-done", {"status": "done"}, ["anna_two", "vera_english", "boris_doubtful", "boris_unhandled", "anna_handled"]),
    ("status-queued", {"status": "queued"}, ["vera_queued"]),
    ("status-failed", {"status": "failed"}, ["vera_failed"]),
    ("score-min", {"score_min": 55}, ["anna_two"]),
    ("score-max", {"score_max": 20}, ["boris_doubtful"]),
    ("score-range", {"score_min": 54.5, "score_max": 54.5}, ["vera_english", "boris_unhandled", "anna_handled"]),
    ("stage-missed", {"stage_missed": "farewell"}, ["anna_two", "vera_english", "boris_doubtful", "anna_handled"]),
    ("objection-unhandled", {"objection_unhandled": "price"}, ["boris_unhandled"]),
    ("objection-unhandled-none", {"objection_unhandled": "have_supplier"}, []),
    ("uncertain", {"uncertain": "true"}, ["boris_doubtful"]),
    ("certain", {"uncertain": "false", "status": "done"}, ["anna_two", "vera_english", "boris_unhandled", "anna_handled"]),
    ("combined", {"team_id": "{moscow}", "status": "done", "score_max": 55, "date_from": "2026-11-03"},
     ["boris_doubtful", "boris_unhandled"]),
    ("order-started", {"order": "started_at"}, ["vera_failed", "anna_handled", "boris_unhandled", "boris_doubtful",
                                                "vera_english", "vera_queued", "anna_two"]),
    ("order-score", {"order": "score", "status": "done"}, ["boris_doubtful", "anna_handled", "boris_unhandled",
                                                           "vera_english", "anna_two"]),
    ("order-score-desc", {"order": "-score", "status": "done"}, ["anna_two", "vera_english", "boris_unhandled",
                                                                 "anna_handled", "boris_doubtful"]),
    ("order-created", {"order": "created_at"}, ["anna_handled", "anna_two", "boris_unhandled", "boris_doubtful",
                                                "vera_english", "vera_queued", "vera_failed"]),
    ("order-created-desc", {"order": "-created_at", "manager_id": "{vera}"}, ["vera_failed", "vera_queued", "vera_english"]),
]

# (id, query, total, the page's calls)
PAGES: list[tuple[str, dict[str, Any], int, list[str]]] = [
    ("first-page", {"order": "started_at", "limit": 2}, 7, ["vera_failed", "anna_handled"]),
    ("second-page", {"order": "started_at", "limit": 2, "offset": 2}, 7, ["boris_unhandled", "boris_doubtful"]),
    ("last-page", {"order": "started_at", "limit": 2, "offset": 6}, 7, ["anna_two"]),
    ("past-the-end", {"order": "started_at", "limit": 2, "offset": 7}, 7, []),
    ("filtered-page", {"status": "done", "order": "-score", "limit": 3, "offset": 1}, 5,
     ["vera_english", "boris_unhandled", "anna_handled"]),
    # a missed stage: SQLite counts over the page query itself
    ("stage-missed-page", {"stage_missed": "farewell", "order": "started_at", "limit": 2, "offset": 1}, 4,
     ["boris_doubtful", "vera_english"]),
    ("stage-missed-past-the-end", {"stage_missed": "farewell", "order": "started_at", "limit": 2, "offset": 4}, 4, []),
]


@pytest.fixture(params=["index", "database"])
def answered_by(request: pytest.FixtureRequest, app, db) -> Iterator[str]:
    """Who answers the lists: each API process's in-memory index (the default), or the database
    (CALLQA_LIST_INDEX=false, and what answers while the index is first read)."""
    if request.param == "database":
        engine_index = list_index_of(db)
        assert engine_index is not None  # the app keeps one: take it away
        list_indexes.disable(db.engine, db.read_engine)  # read_engine: the list's and detail's read-only sessions
    yield request.param


def list_index_of(db) -> CallListIndex | None:
    return list_indexes.of_engine(db.engine)


def test_call_list_filters_sorts_and_pages(client, db, people, answered_by):
    ids, kazan = build_calls(client, db, people)
    if answered_by == "index":
        index = list_index_of(db)
        assert index is not None and index.wait_ready()
        with db.sessions() as s:  # and it is what answers now
            assert index.page(s, CallFilters(), None, limit=50, offset=0, order="-started_at") is not None
    else:
        assert list_index_of(db) is None
    names = {v: k for k, v in ids.items()}
    with db.sessions() as s:
        vera = s.get(Call, ids["vera_english"]).manager_id
    refs = {"anna": people.manager_id, "boris": people.other_manager_id, "vera": vera, "kazan": kazan,
            "moscow": people.team_id}

    def listed(query: dict[str, Any]) -> tuple[int, list[str]]:
        params = {k: (str(v).format(**refs) if isinstance(v, str) else v) for k, v in query.items()}
        r = client.get(f"{API}/calls", params=params, headers=people.h("quality_controller"))
        assert r.status_code == 200, (query, r.text)
        page = r.json()
        assert (page["limit"], page["offset"]) == (params.get("limit", 50), params.get("offset", 0))
        return page["total"], [names[c["id"]] for c in page["items"]]

    failures = []
    for case, query, expected in CASES:
        total, got = listed(query)
        if got != expected or total != len(expected):
            failures.append(f"{case}: {query} listed {got} (total {total}), expected {expected}")
    for case, query, total_expected, expected in PAGES:
        total, got = listed(query)
        if got != expected or total != total_expected:
            failures.append(f"{case}: {query} listed {got} (total {total}), expected {expected} of {total_expected}")
    assert not failures, "\n".join(failures)

    # the scores the cases rely on are the scorer's own
    detail = {n: client.get(f"{API}/calls/{i}", headers=people.h("admin")).json() for n, i in ids.items()}
    assert [detail[n]["score"] for n in ("anna_handled", "anna_two", "boris_unhandled", "boris_doubtful")] == \
        [54.5, 58.3, 54.5, 16.7]
    # a manager's filters work inside own calls only
    mine = client.get(f"{API}/calls", params={"manager_id": people.other_manager_id}, headers=people.h("manager")).json()
    assert mine["total"] == 0
    mine = client.get(f"{API}/calls", params={"order": "score"}, headers=people.h("manager")).json()
    assert [names[c["id"]] for c in mine["items"]] == ["anna_handled", "anna_two"]
