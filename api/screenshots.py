"""PNG screenshots of the main pages at 1366x768, for the README::

    python -m api.screenshots --out docs/screenshots

Builds a throw-away demo (a temporary SQLite database, the sample calls processed with the real
model, the demo logins), serves it on a free loopback port and photographs each role's pages in
Debian's headless Chromium (``/usr/bin/chromium``; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import logging
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SIZE: ViewportSize = {"width": 1366, "height": 768}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an app with uvicorn in a thread on a free loopback port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="callqa-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def sign_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def capture(base: str, accounts: dict[str, tuple[str, str]], out: Path) -> list[Path]:
    """Photograph the pages of each role; ``accounts``: role -> (username, password)."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            def shot(page: Any, name: str) -> None:
                path = out / f"{name}.png"
                page.screenshot(path=str(path))
                shots.append(path)

            ctx = browser.new_context(viewport=SIZE, locale="ru-RU")
            page = ctx.new_page()
            page.goto(f"{base}/login")
            shot(page, "01-login")
            user, password = accounts["quality_controller"]
            sign_in(page, base, user, password)
            shot(page, "02-review-queue")
            first = page.locator("#queue a").first
            if first.count():
                first.click()
                page.wait_for_load_state("load")
                page.locator(".show-evidence").first.click()
                shot(page, "03-call-review")
            ctx.close()

            ctx = browser.new_context(viewport=SIZE, locale="ru-RU")
            page = ctx.new_page()
            user, password = accounts["head_of_sales"]
            sign_in(page, base, user, password)
            shot(page, "04-dashboard")
            page.goto(f"{base}/scripts/ru_b2b_outbound")
            body = page.locator("#body")
            body.fill(body.input_value().replace("weight: 20", "weight: -5", 1))
            page.fill("#transcript", "manager: Добрый день! Меня зовут Анна, компания Вектор. Вам удобно говорить?\n"
                                     "client: Да. Но у вас, наверное, дорого.\nmanager: Понимаю. С чем сравниваете?")
            page.click("button[value=save]")
            page.wait_for_load_state("load")
            shot(page, "05-script-editor-error")
            page.goto(f"{base}/upload")
            samples = sorted((Path(__file__).resolve().parents[2] / "sample_calls" / "audio").glob("ru_*.wav"))
            if samples:
                page.select_option("#d-direction", "outbound")
                page.set_input_files("#files", [str(p) for p in samples[:2]])
            shot(page, "06-upload")
            ctx.close()

            ctx = browser.new_context(viewport=SIZE, locale="ru-RU")
            page = ctx.new_page()
            user, password = accounts["manager"]
            sign_in(page, base, user, password)
            shot(page, "07-manager-calls")
            link = page.locator("table.calls a").first
            if link.count():
                link.click()
                page.wait_for_load_state("load")
                shot(page, "08-manager-feedback")
            ctx.close()
        finally:
            browser.close()
    return shots


def demo_capture(out: Path) -> list[Path]:
    """A temporary demo with the sample calls processed, then :func:`capture`."""
    from api.app import create_app
    from api.bootstrap import bootstrap
    from api.core.config import get_service_settings
    from api.core.db import Database
    from api.processing.pipeline import CallProcessor
    from api.web.demo import setup_demo

    with tempfile.TemporaryDirectory(prefix="callqa-shots-") as tmp:
        settings = get_service_settings(data_dir=Path(tmp), database_url=None, admin_password="screenshots-admin")
        bootstrap(settings)
        accounts = {a.role.value: (a.username, a.password) for a in setup_demo(settings)}
        db = Database(settings)
        try:
            processor = CallProcessor(settings, db=db)
            while processor.process_next() is not None:
                pass

            class Idle:
                def submit(self, call_id: int) -> None:
                    """Screenshots upload nothing."""

            with serving(create_app(settings, db=db, executor=Idle())) as base:
                return capture(base, accounts, out)
        finally:
            db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--base-url", help="photograph a running server instead of a temporary demo")
    parser.add_argument("--login", action="append", default=[], metavar="ROLE=USER:PASSWORD",
                        help="with --base-url: a login per role (quality_controller, head_of_sales, manager)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.base_url:
        accounts = {}
        for item in args.login:
            role, _, cred = item.partition("=")
            user, _, password = cred.partition(":")
            accounts[role] = (user, password)
        shots = capture(args.base_url.rstrip("/"), accounts, args.out)
    else:
        shots = demo_capture(args.out)
    for s in shots:
        print(s)


if __name__ == "__main__":
    main()
