"""`callqa serve --demo` on a fresh data folder: it prints the web UI's address and a password for
each demo login, and a person signs in with them through the sign-in form."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.web.screenshots import free_port

ROOT = Path(__file__).resolve().parents[2]


def _sign_in(base: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base) as browser:
        form = browser.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token, form.text
        return browser.post("/login", data={"login_csrf": token.group(1), "next": "/", "username": username,
                                            "password": password})


def test_serve_demo_prints_the_address_and_logins_that_work(tmp_path):
    port = free_port()
    env = {**os.environ, "CALLQA_DATA_DIR": str(tmp_path / "data"), "CALLQA_ADMIN_PASSWORD": "first-admin-pass"}
    env.pop("CALLQA_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    # no worker: this is about the address and the logins, not about processing the sample calls
    proc = subprocess.Popen([sys.executable, "-m", "api", "serve", "--demo", "--workers", "0", "--port", str(port)],
                            env=env, cwd=ROOT, start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        out = re.sub(r"\s+", " ", log.read_text())
        assert f"Web UI: http://127.0.0.1:{port}/" in out
        logins = dict(re.findall(r"demo login (\w+) \(\w+\), password (\S+)", out))
        assert set(logins) == {"okk", "rop", "orlova"}, out

        homes = {"okk": "/queue", "rop": "/dashboard", "orlova": "/my"}
        for username, password in logins.items():
            r = _sign_in(base, username, password)
            assert r.status_code == 303 and r.headers["location"] == homes[username], r.text
        assert _sign_in(base, "admin", "first-admin-pass").headers["location"] == "/dashboard"
        assert "Неверный логин или пароль" in _sign_in(base, "okk", "wrong").text

        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "orlova", "password": logins["orlova"]}).json()
        own = httpx.get(f"{base}/api/v1/calls", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
        assert own["total"] >= 1  # the manager login has sample calls to read feedback on
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]
