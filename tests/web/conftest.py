"""The web UI in a real browser: the real app served by uvicorn on a loopback port, a SQLite
database in a temporary folder, calls processed by the real model, Debian's headless Chromium
driven by Playwright (``/usr/bin/chromium``; ``make sysdeps`` installs it, nothing is downloaded).

One server and one browser for the whole session; every test opens fresh browser contexts (its
own cookies) and fails when a page logged a console error.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth.service import create_user
from api.bootstrap import bootstrap
from api.calls.schemas import CallMetadataCreate
from api.calls.service import ingest_stream
from api.core.config import ServiceSettings, get_service_settings
from api.core.db import Database
from api.core.storage import RecordingStore
from api.models import Manager, Role, Team
from api.screenshots import CHROMIUM, CHROMIUM_ARGS, serving

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_calls" / "audio"
PASSWORDS = {"admin": "orange-harbor-lantern", "okk": "quiet-meadow-copper", "rop": "silver-raven-tundra", "anna": "amber-pebble-canyon"}
ROLE_USERS = {"admin": "admin", "quality_controller": "okk", "head_of_sales": "rop", "manager": "anna"}


class ThreadWorker:
    """The app's executor here: a thread that processes each submitted call with the real model."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.calls: queue.Queue[int | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="web-test-worker", daemon=True)
        self.thread.start()

    def submit(self, call_id: int) -> None:
        self.calls.put(call_id)

    def _run(self) -> None:
        while (call_id := self.calls.get()) is not None:
            self.processor.process_call(call_id)

    def stop(self) -> None:
        self.calls.put(None)
        self.thread.join(120)


@dataclass
class Site:
    base: str
    settings: ServiceSettings
    db: Database
    calls: dict[str, int]
    """``anna``: Anna's call (a supplier objection left unhandled); ``boris``: Boris's (handled)."""
    managers: dict[str, int]
    tokens: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def password(username: str) -> str:
        """The password of a user of the site, for a test that fills in the sign-in form itself."""
        return PASSWORDS[username]

    def api(self, role: str) -> httpx.Client:
        """An API client signed in as the role's user, as a script or another service would be."""
        username = ROLE_USERS[role]
        if username not in self.tokens:
            r = httpx.post(f"{self.base}/api/v1/auth/token", data={"username": username, "password": PASSWORDS[username]})
            r.raise_for_status()
            self.tokens[username] = r.json()["access_token"]
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.tokens[username]}"}, timeout=30)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, analyzer: Any) -> Iterator[Site]:
    from api.processing.pipeline import CallProcessor

    tmp = tmp_path_factory.mktemp("web")
    settings = get_service_settings(data_dir=tmp / "data", database_url=f"sqlite:///{tmp / 'callqa.db'}",
                                    admin_password=PASSWORDS["admin"], lease_seconds=60, retry_backoff_seconds=0,
                                    max_upload_mb=20)
    bootstrap(settings)
    db = Database(settings)
    store = RecordingStore(settings.recordings_dir, max_bytes=settings.max_upload_bytes)
    now = datetime.now(UTC).replace(microsecond=0)
    with db.sessions() as s:
        users = {name: create_user(s, actor=None, username=name, password=PASSWORDS[name], role=role, full_name=full)
                 for name, role, full in (("okk", Role.quality_controller, "Ольга Контролёва"),
                                          ("rop", Role.head_of_sales, "Роман Руководов"),
                                          ("anna", Role.manager, "Анна Смирнова"))}
        team = Team(name="Москва", head_user_id=users["rop"].id)
        s.add(team)
        s.flush()
        anna = Manager(name="Анна Смирнова", external_id="101", team_id=team.id, user_id=users["anna"].id)
        boris = Manager(name="Борис Петров", external_id="102", team_id=team.id)
        s.add_all([anna, boris])
        s.commit()
        managers = {"anna": anna.id, "boris": boris.id}
        calls = {}
        for key, name, manager, days in (("anna", "ru_06_advertising_gives_up.wav", anna.id, 2),
                                         ("boris", "ru_21_printing_have_supplier_handled.mp3", boris.id, 3)):
            meta = CallMetadataCreate.model_validate({"manager_id": manager, "direction": "outbound", "client_phone": "+79005550101",
                                                "started_at": (now - timedelta(days=days)).isoformat()})
            with (SAMPLES / name).open("rb") as f:
                calls[key] = ingest_stream(s, store, stream=f, filename=name, content_type=None, meta=meta).call.id
    processor = CallProcessor(settings, db=db, analyzer=analyzer)
    while processor.process_next() is not None:
        pass
    worker = ThreadWorker(processor)
    try:
        with serving(create_app(settings, db=db, executor=worker)) as base:
            yield Site(base, settings, db, calls, managers)
    finally:
        worker.stop()
        db.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make sysdeps)")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Pages:
    """Opens signed-in pages; collects every console error and uncaught exception of them."""

    site: Site
    browser: Any
    errors: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    """Console messages a test provokes on purpose (the browser logs the status of a refused page)."""

    def new(self, *, lang: str | None = None) -> Any:
        ctx = self.browser.new_context(viewport={"width": 1366, "height": 768}, locale="ru-RU")
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page

    def signed_in(self, role: str, path: str = "/") -> Any:
        page = self.new()
        username = ROLE_USERS[role]
        page.goto(f"{self.site.base}/login?next={path}")
        page.fill("#username", username)
        page.fill("#password", PASSWORDS[username])
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        return page

    def url(self, path: str) -> str:
        return self.site.base + path


@pytest.fixture
def pages(site: Site, browser: Any) -> Iterator[Pages]:
    p = Pages(site, browser)
    yield p
    for ctx in p.contexts:
        ctx.close()
    assert [e for e in p.errors if not any(x in e for x in p.expected)] == [], "the pages logged console errors"


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Wait for a condition a person would see, with a generous deadline (never a timing assertion)."""
    import time

    def wait(check: Callable[[], bool], *, seconds: float = 120, what: str = "the condition") -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, f"{what} did not happen"
            time.sleep(0.25)

    return wait
