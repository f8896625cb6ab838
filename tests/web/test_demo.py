"""`callqa serve --demo` on a fresh data folder: it prints the web UI's address and a password for
each demo login, and a person signs in with them through the sign-in form."""

from __future__ import annotations

import re

import httpx


def _sign_in(base: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=base) as browser:
        form = browser.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
        assert token, form.text
        return browser.post("/login", data={"login_csrf": token.group(1), "next": "/", "username": username,
                                            "password": password})


def test_serve_demo_prints_the_address_and_logins_that_work(callqa_serve):
    # no worker: this is about the address and the logins, not about processing the sample calls
    with callqa_serve("--demo", "--workers", "0", timeout=90) as served:
        base = served.base
        out = re.sub(r"\s+", " ", served.log.read_text())
        assert f"Web UI: {base}/" in out
        logins = dict(re.findall(r"demo login (\w+) \(\w+\), password (\S+)", out))
        assert set(logins) == {"okk", "rop", "orlova"}, out

        homes = {"okk": "/queue", "rop": "/dashboard", "orlova": "/my"}
        for username, password in logins.items():
            r = _sign_in(base, username, password)
            assert r.status_code == 303 and r.headers["location"] == homes[username], r.text
        assert _sign_in(base, "admin", "cobalt-harbor-lantern").headers["location"] == "/dashboard"
        assert "Неверный логин или пароль" in _sign_in(base, "okk", "wrong").text

        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "orlova", "password": logins["orlova"]}).json()
        own = httpx.get(f"{base}/api/v1/calls", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
        assert own["total"] >= 1  # the manager login has sample calls to read feedback on
