"""Every filter, sort and page of GET /calls, table-driven, on SQLite and PostgreSQL.

The calls are real uploads scored by the real scorer through POST /calls/rescore, from stored
transcripts (what the worker writes after transcribing), so no model runs here.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from api.models import Call, CallStatus
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
    # calls not scored yet (queued, failed) come last either way, on both databases
    ("order-score-unscored-last", {"order": "score"}, ["boris_doubtful", "anna_handled", "boris_unhandled", "vera_english",
                                                       "anna_two", "vera_queued", "vera_failed"]),
    ("order-score-desc-unscored-last", {"order": "-score"}, ["anna_two", "vera_english", "boris_unhandled", "anna_handled",
                                                             "boris_doubtful", "vera_failed", "vera_queued"]),
    ("order-created", {"order": "created_at"}, ["anna_handled", "anna_two", "boris_unhandled", "boris_doubtful",
                                                "vera_english", "vera_queued", "vera_failed"]),
    ("order-created-desc", {"order": "-created_at", "manager_id": "{vera}"}, ["vera_failed", "vera_queued", "vera_english"]),
]

# (id, query, page size): walked page by page with next_cursor to the end, then back with prev_cursor
WALKS: list[tuple[str, dict[str, Any], int]] = [
    ("started", {"order": "started_at"}, 2),
    ("newest-first", {}, 3),
    ("filtered-by-score", {"status": "done", "order": "-score"}, 3),
    ("score-with-unscored-last", {"order": "score"}, 2),
    ("stage-missed", {"stage_missed": "farewell", "order": "started_at"}, 2),
    ("created", {"order": "-created_at"}, 4),
    ("one-page", {"manager_id": "{anna}"}, 5),
]


def test_call_list_filters_sorts_and_pages(client, db, people):
    ids, kazan = build_calls(client, db, people)
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
        assert page["limit"] == params.get("limit", 50) and page["total_exact"]
        return page["total"], [names[c["id"]] for c in page["items"]]

    failures = []
    for case, query, expected in CASES:
        total, got = listed(query)
        if got != expected or total != len(expected):
            failures.append(f"{case}: {query} listed {got} (total {total}), expected {expected}")
    assert not failures, "\n".join(failures)

    # paging: page by page to the end gives the whole list once, in order; back again, the same pages
    for case, query, size in WALKS:
        params = {k: str(v).format(**refs) for k, v in query.items()}
        whole = listed(params)[1]
        pages: list[list[str]] = []
        cursor = None
        while True:
            page = client.get(f"{API}/calls", params={**params, "limit": size, **({"cursor": cursor} if cursor else {})},
                              headers=people.h("quality_controller")).json()
            assert page["total"] == len(whole), case
            pages.append([names[c["id"]] for c in page["items"]])
            assert (page["prev_cursor"] is None) == (len(pages) == 1), (case, pages)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sum(pages, []) == whole and all(len(p) == size for p in pages[:-1]) and 0 < len(pages[-1]) <= size, (case, pages)
        back = [pages[-1]]
        cursor = page["prev_cursor"]
        while cursor:
            page = client.get(f"{API}/calls", params={**params, "limit": size, "cursor": cursor},
                              headers=people.h("quality_controller")).json()
            back.append([names[c["id"]] for c in page["items"]])
            assert page["next_cursor"], case
            cursor = page["prev_cursor"]
        assert back[::-1] == pages, (case, back)

    # the scores the cases rely on are the scorer's own
    detail = {n: client.get(f"{API}/calls/{i}", headers=people.h("admin")).json() for n, i in ids.items()}
    assert [detail[n]["score"] for n in ("anna_handled", "anna_two", "boris_unhandled", "boris_doubtful")] == \
        [54.5, 58.3, 54.5, 16.7]
    # a manager's filters work inside own calls only
    mine = client.get(f"{API}/calls", params={"manager_id": people.other_manager_id}, headers=people.h("manager")).json()
    assert mine["total"] == 0
    mine = client.get(f"{API}/calls", params={"order": "score"}, headers=people.h("manager")).json()
    assert [names[c["id"]] for c in mine["items"]] == ["anna_handled", "anna_two"]


def test_a_call_stored_meanwhile_never_shifts_the_next_page(client, db, people):
    """The next page starts after the last call of this one, whatever was stored meanwhile: with
    offsets, a new call pushed the page's last call onto the next page too, and it was shown twice."""
    ids, _ = build_calls(client, db, people)
    names = {v: k for k, v in ids.items()}
    qc = people.h("quality_controller")
    first = client.get(f"{API}/calls", params={"limit": 3}, headers=qc).json()
    new = client.post(f"{API}/calls", files=[("files", ("new.wav", tone(270), "audio/wav"))],
                      data={"manager_external_id": "101", "started_at": "2026-11-11T09:00:00+00:00"},
                      headers=people.h("admin")).json()["items"][0]["call_id"]
    second = client.get(f"{API}/calls", params={"limit": 3, "cursor": first["next_cursor"]}, headers=qc).json()
    assert [names[c["id"]] for c in first["items"] + second["items"]] == \
        ["anna_two", "vera_queued", "vera_english", "boris_doubtful", "boris_unhandled", "anna_handled"]
    assert second["total"] == 8  # the count is of now
    back = client.get(f"{API}/calls", params={"limit": 3, "cursor": second["prev_cursor"]}, headers=qc).json()
    assert [c["id"] for c in back["items"]] == [c["id"] for c in first["items"]]
    assert back["prev_cursor"] is not None  # the new call is before the first page now
    newest = client.get(f"{API}/calls", params={"limit": 3, "cursor": back["prev_cursor"]}, headers=qc).json()
    assert [c["id"] for c in newest["items"]] == [new] and newest["prev_cursor"] is None


@pytest.mark.parametrize("cursor, says", [
    ("not-a-cursor", "damaged"),
    ("eyJvIjoiLXN0YXJ0ZWRfYXQiLCJrIjoibm90IGEgZGF0ZSIsImkiOjF9", "damaged"),  # a start time that is not one
    ("eyJvIjoic2NvcmUiLCJrIjo1MCwiaSI6MX0", "sorted by 'score'"),  # a cursor of another order
])
def test_a_damaged_or_foreign_cursor_is_refused_with_what_to_do(client, people, cursor, says):
    r = client.get(f"{API}/calls", params={"cursor": cursor}, headers=people.h("admin"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_cursor" and says in r.json()["error"]["message"]


def test_a_long_list_counts_up_to_ten_thousand_and_says_more(client, db, people):
    """Counting every call of a long list reads them all; past 10 000 the list says "over 10 000"."""
    with db.sessions() as s:
        s.execute(insert(Call), [{"source": "upload", "manager_id": people.manager_id, "status": CallStatus.queued}
                                 for _ in range(10_001)])
        s.commit()
    page = client.get(f"{API}/calls", params={"limit": 1}, headers=people.h("admin")).json()
    assert (page["total"], page["total_exact"]) == (10_000, False) and page["next_cursor"]
    exact = client.get(f"{API}/calls", params={"limit": 1, "manager_id": people.other_manager_id},
                       headers=people.h("admin")).json()
    assert (exact["total"], exact["total_exact"]) == (0, True)
