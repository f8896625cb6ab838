"""Every string the UI asks for exists in both languages (a missing key would show as the key)."""

from __future__ import annotations

import re
from pathlib import Path

from api.models import CallStatus, DisputeStatus, Role
from api.web.i18n import LANGUAGES, STRINGS, translate

WEB = Path(__file__).resolve().parents[2] / "api" / "web"
LITERAL = re.compile(r"""\bt(?:_for\(request\))?\(\s*["']([a-z_]+\.[a-z_.]+)["']""")


def _keys_used() -> set[str]:
    found: set[str] = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]:
        found |= set(LITERAL.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_key_the_pages_use_is_translated():
    used = _keys_used()
    assert len(used) > 100
    assert sorted(k for k in used - set(STRINGS) if not k.endswith(".")) == []  # "x." + value: below
    # keys built from values: statuses, roles, verdicts
    for value in [*(f"status.{s.value}" for s in CallStatus), *(f"role.{r.value}" for r in Role),
                  *(f"verdict.{v}" for v in ("passed", "missed", "uncertain")),
                  *(f"dispute.status.{d.value}" for d in DisputeStatus),
                  *(f"objection.{v}" for v in ("passed", "missed", "uncertain", "not_objection"))]:
        assert value in STRINGS, value


def test_russian_is_the_default_and_english_differs():
    assert translate("login.submit") == "Войти"
    assert translate("login.submit", "en") == "Sign in"
    assert translate("call.title", "en", id=7) == "Call 7"
    assert all(len(pair) == len(LANGUAGES) and all(pair) for pair in STRINGS.values())
