"""The call list answered from each API process's in-memory index keeps up with every writer: this
process's own (a review, at once), another process's (a worker claiming a call, through its own
engine and connections: within 0.05 s), a transaction that committed a little after it stamped its rows, and, through the
background re-read, one that committed long after. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from api.auth.scope import Scope, scope_of
from api.calls import list_index as list_index_module
from api.calls.list_index import CallListIndex
from api.calls.service import CallFilters, _total_and_page_ids
from api.core.db import Database
from api.models import Call, Manager, User
from api.processing import queue
from benchmarks.api_latency import list_query, seed

from .test_filters import build_calls, list_index_of

API = "/api/v1"


def test_the_list_follows_every_writer(client, db, people, settings):
    ids, _ = build_calls(client, db, people)
    index = list_index_of(db)
    assert index is not None and index.wait_ready()

    def listed(**query) -> list[int]:
        r = client.get(f"{API}/calls", params=query, headers=people.h("quality_controller"))
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return [c["id"] for c in r.json()["items"]]

    def row(call_id: int) -> dict:
        """The call as the (unfiltered) list shows it: after the first time, a row the index keeps."""
        items = client.get(f"{API}/calls", headers=people.h("quality_controller")).json()["items"]
        return next(c for c in items if c["id"] == call_id)

    def eventually(check, seconds: float = 15) -> bool:
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # this process: a reviewer decides that Anna did say goodbye; the missed-stage list drops the call at once
    assert ids["anna_handled"] in listed(stage_missed="farewell")
    r = client.post(f"{API}/calls/{ids['anna_handled']}/reviews", json={"kind": "stage", "item": "farewell", "value": "passed"},
                    headers=people.h("quality_controller"))
    assert r.status_code in (200, 201), r.text
    assert ids["anna_handled"] not in listed(stage_missed="farewell")

    other = Database(settings)  # a worker elsewhere: its own engine, pool and connections
    try:
        # a worker claims the queued call: it is transcribing at the next list, and its row says so
        assert listed(status="queued") == [ids["vera_queued"]]
        assert row(ids["vera_queued"])["status"] == row(ids["vera_queued"])["status"] == "queued"
        claim = queue.claim(other.sessions, worker="elsewhere", lease_seconds=30, call_id=ids["vera_queued"])
        assert claim is not None
        assert eventually(lambda: listed(status="queued") == [], seconds=1)  # within PROBE_EVERY (0.05 s)
        assert listed(status="transcribing") == [ids["vera_queued"]]
        assert row(ids["vera_queued"])["status"] == "transcribing"

        # a manager renamed here shows at once in the rows; one renamed elsewhere within seconds
        anna = row(ids["anna_handled"])["manager"]
        r = client.patch(f"{API}/managers/{anna['id']}", json={"name": "Anna Petrova"}, headers=people.h("admin"))
        assert r.status_code == 200, r.text
        assert row(ids["anna_handled"])["manager"] == {"id": anna["id"], "name": "Anna Petrova"}
        with other.sessions() as s:
            s.execute(update(Manager).where(Manager.id == anna["id"]).values(name="Anna Sidorova"))
            s.commit()
        assert eventually(lambda: row(ids["anna_two"])["manager"]["name"] == "Anna Sidorova")

        # a transaction that stamped its row a moment before the newest stamp seen and committed after it
        with other.sessions() as s:
            newest = s.scalar(select(func.max(Call.updated_at)))
            s.execute(update(Call).where(Call.id == ids["boris_unhandled"])
                      .values(score=97.0, updated_at=newest - timedelta(seconds=2)))
            s.commit()
        assert eventually(lambda: listed(score_min=95) == [ids["boris_unhandled"]])
        assert row(ids["boris_unhandled"])["score"] == 97.0

        # one that committed long after its stamp: the background re-read brings it
        with other.sessions() as s:
            s.execute(update(Call).where(Call.id == ids["anna_two"])
                      .values(score=99.0, updated_at=newest - timedelta(hours=1)))
            s.commit()
        index.rebuild_every = 0  # the next list starts the re-read (every few minutes by default)
        assert eventually(lambda: listed(score_min=98) == [ids["anna_two"]])
        assert listed(score_min=95) == [ids["anna_two"], ids["boris_unhandled"]]
    finally:
        other.dispose()


def test_the_index_answers_as_the_database_does(db, monkeypatch):
    """3,000 calls seeded as the benchmark seeds them (real scored reports, verdict rows, 60 managers):
    200 lists of every kind of filter, sort and page, for a head of sales and for everyone, give the
    same total and the same page from the index as from the database."""
    seeded = seed(db.url, 3000, progress=False)
    monkeypatch.setattr(list_index_module, "_STEP", 256)  # pages found by reading the order in several steps
    index = CallListIndex(db.engine)
    assert index.wait_ready()
    rng = random.Random(5)
    kinds = set()
    with db.sessions() as s:
        head = scope_of(s, s.scalar(select(User).where(User.username == "head")))
        for _ in range(200):
            q = list_query(rng, seeded)
            if rng.random() < 0.2:
                q["uncertain"] = rng.choice([True, False])
            f = CallFilters(**{k: datetime.fromisoformat(v) if k.startswith("date_") else v for k, v in q.items()
                               if k not in ("limit", "offset", "order")})
            scope = head if rng.random() < 0.7 else Scope.system()
            page = dict(limit=q["limit"], offset=q["offset"], order=q["order"])
            got = index.page(s, f, scope.manager_ids, **page)
            total, ids, _ = _total_and_page_ids(s, f, scope, page["limit"], page["offset"], page["order"])
            expected = (total, ids if isinstance(ids, list) else list(s.scalars(ids)))
            assert got == expected, (q, scope.everything)
            kinds.add((tuple(sorted(k for k in q if k not in ("limit", "offset"))), total > 0))
    assert len(kinds) >= 15  # the mix covered many kinds of list, empty and not


def test_many_more_requests_than_threads_are_all_answered(callqa_serve):
    """Requests beyond the endpoints' threads and the database's connections wait their turn: a
    session closing after its answer never waits behind endpoints that wait for its connection
    (which stalled the server until the pool's 30 s timeout, then failed requests with 500)."""
    with callqa_serve(env={"CALLQA_API_THREADS": "2"}) as served:
        token = httpx.post(f"{served.base}/api/v1/auth/token", data={"username": "admin", "password": "cobalt-harbor-lantern"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=80, max_keepalive_connections=80)
            async with httpx.AsyncClient(base_url=served.base, headers=headers, limits=limits, timeout=120) as c:
                answers = await asyncio.gather(*(c.get(path) for _ in range(40)
                                                 for path in ("/api/v1/auth/me", "/api/v1/calls")))
            return [a.status_code for a in answers]

        assert asyncio.run(burst()) == [200] * 80
