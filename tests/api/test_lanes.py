"""Long requests (a bulk re-score, KPI reports, CRM imports, uploads) run on threads of their own:
while they run, the quick requests still get answers from the API's few endpoint threads."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from api.app import create_app
from api.calls import service

from .conftest import NoExecutor

API = "/api/v1"


def test_long_requests_leave_the_quick_ones_their_threads(settings, db, people, monkeypatch):
    app = create_app(settings.model_copy(update={"api_threads": 1}), db=db, executor=NoExecutor())
    real = service.rescore
    running = threading.Semaphore(0)
    release = threading.Event()

    def long_rescore(*args, **kwargs):  # the real re-score, after a wait: as one over many stored calls
        running.release()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "rescore", long_rescore)
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        long = [pool.submit(client.post, f"{API}/calls/rescore", json={}, headers=people.h("admin")) for _ in range(2)]
        assert running.acquire(timeout=30) and running.acquire(timeout=30)  # both are running
        # the one endpoint thread is free: the call list and a sign-in check answer
        assert client.get(f"{API}/calls", headers=people.h("quality_controller")).status_code == 200
        assert client.get(f"{API}/auth/me", headers=people.h("manager")).status_code == 200
        assert not any(f.done() for f in long)
        release.set()
        assert [f.result().json()["rescored"] for f in long] == [0, 0]
