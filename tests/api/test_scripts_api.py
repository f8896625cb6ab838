"""The script library over the API: read, store a version (validated), activate, and re-score with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from analyzer.scripts import BUNDLED_DIR
from tests.helpers import PASSWORD

DATA = Path(__file__).parent.parent / "data"
API = "/api/v1"
RU = (BUNDLED_DIR / "ru_b2b_outbound.yaml").read_text(encoding="utf-8")


def new_version(version: str, *, edit=None) -> str:
    data = yaml.safe_load(RU)
    data["version"] = version
    if edit:
        edit(data)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def post_yaml(client, people, text: str, role: str = "quality_controller", **params):
    return client.post(f"{API}/scripts", content=text.encode(), params=params,
                       headers={**people.h(role), "Content-Type": "application/yaml"})


def test_every_role_reads_the_library(client, people):
    listed = client.get(f"{API}/scripts", headers=people.h("manager"))
    assert listed.status_code == 200
    scripts = {s["id"]: s for s in listed.json()}
    assert set(scripts) == {"ru_b2b_outbound", "en_b2b_outbound"}
    assert scripts["ru_b2b_outbound"]["active_version"] == "1.0" and scripts["ru_b2b_outbound"]["language"] == "ru"

    one = client.get(f"{API}/scripts/ru_b2b_outbound", headers=people.h("manager")).json()
    assert one["versions"] == ["1.0"] and one["version_details"][0]["active"] is True

    version = client.get(f"{API}/scripts/ru_b2b_outbound/versions/1.0", headers=people.h("manager")).json()
    assert version["body"] == RU
    assert [s["id"] for s in version["script"]["stages"]][:2] == ["greeting", "introduction"]

    missing = client.get(f"{API}/scripts/ru_b2b_outbound/versions/9.9", headers=people.h("admin"))
    assert missing.status_code == 404 and "1.0" in missing.json()["error"]["message"]
    assert client.get(f"{API}/scripts/nope", headers=people.h("admin")).json()["error"]["code"] == "script_not_found"
    assert client.get(f"{API}/scripts").status_code == 401


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["stages"][1].update(weight=-5), "stages.1.weight"),
        (lambda d: d["objections"][0].update(client_phrases=["дорого"]), "objections.0.client_phrases"),
        (lambda d: d.pop("stages"), "stages"),
    ],
    ids=["negative-weight", "unknown-field", "no-stages"],
)
def test_an_invalid_version_is_refused_naming_the_field(client, people, edit, field):
    r = post_yaml(client, people, new_version("1.1", edit=edit))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "script_invalid"
    assert field in [d["field"] for d in error["details"]] and field in error["message"]
    assert client.get(f"{API}/scripts/ru_b2b_outbound", headers=people.h("admin")).json()["versions"] == ["1.0"]


def test_store_and_activate_versions_by_role(client, people):
    r = post_yaml(client, people, new_version("1.1"))
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.json()["active"]) == ("1.1", False)
    assert r.json()["created_by"] is not None

    as_json = client.post(f"{API}/scripts", json={"body": new_version("1.2")}, headers=people.h("head_of_sales"))
    assert as_json.status_code == 201 and as_json.json()["version"] == "1.2"
    assert post_yaml(client, people, new_version("1.1")).json()["error"]["code"] == "script_version_exists"
    assert post_yaml(client, people, "id: [unclosed").json()["error"]["code"] == "script_invalid"
    assert client.post(f"{API}/scripts", content=b"x", headers={**people.h("admin"), "Content-Type": "image/png"}).status_code == 415
    assert post_yaml(client, people, new_version("1.3"), role="manager").status_code == 403

    # a quality controller may store but not activate
    assert post_yaml(client, people, new_version("1.3"), activate="true").status_code == 403
    assert client.post(f"{API}/scripts/ru_b2b_outbound/versions/1.1/activate", headers=people.h("quality_controller")).status_code == 403
    r = client.post(f"{API}/scripts/ru_b2b_outbound/versions/1.1/activate", headers=people.h("head_of_sales"))
    assert r.status_code == 200 and r.json()["active_version"] == "1.1"
    assert r.json()["versions"] == ["1.0", "1.1", "1.2"]
    assert [v["active"] for v in r.json()["version_details"]] == [False, True, False]

    audit = client.get(f"{API}/audit", params={"entity": "script"}, headers=people.h("admin")).json()["items"]
    assert [(e["action"], e["user"]["username"]) for e in audit] == [
        ("script.activate", "head_of_sales"), ("script.create", "head_of_sales"), ("script.create", "quality_controller")]
    assert audit[0]["before"] == {"version": "1.0"} and audit[0]["after"] == {"version": "1.1"}


def alias_bomb(k: int) -> str:
    """A script whose k stages are one stage of k parts of k phrasings, through aliases: k**3 values
    from a few KB, each validated (k=1000: a billion phrasings from 20 KB)."""
    words = ", ".join(f"w{i}" for i in range(k))
    parts = ", ".join(["&part {name: p, phrasings: [" + words + "]}"] + ["*part"] * (k - 1))
    stages = ", ".join(["&stage {id: s, title: S, parts: [" + parts + "]}"] + ["*stage"] * (k - 1))
    return f"id: bomb\nversion: '1'\nlanguage: ru\ntitle: Bomb\nstages: [{stages}]\n"


def test_yaml_nested_thousands_deep_is_refused_naming_the_depth(client, people):
    deep = post_yaml(client, people, "[" * 100_000 + "]" * 100_000)
    assert deep.status_code == 400, deep.text
    assert deep.json()["error"]["code"] == "script_invalid" and "nested deeper than 32" in deep.json()["error"]["message"]
    as_json = client.post(f"{API}/scripts", json={"body": "a:\n" + "".join("  " * i + "- \n" for i in range(1, 100))},
                          headers=people.h("admin"))
    assert as_json.status_code == 400 and as_json.json()["error"]["code"] == "script_invalid", as_json.text


def test_yaml_aliases_expanding_to_a_million_values_are_refused_before_validation(client, people):
    bomb = post_yaml(client, people, alias_bomb(100))  # a million phrasings once expanded
    assert bomb.status_code == 400, bomb.text
    error = bomb.json()["error"]
    assert error["code"] == "script_invalid" and "more than 100,000 values" in error["message"]
    assert "alias" in error["message"]
    assert client.get(f"{API}/scripts", headers=people.h("admin")).json()[0]["id"] != "bomb"


def test_the_web_editor_shows_a_too_deep_script_as_an_error(client, people):
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"login_csrf": token, "next": "/", "username": "quality_controller",
                                    "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/scripts/ru_b2b_outbound").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    for action in ("try", "save"):
        r = client.post("/scripts/ru_b2b_outbound", data={"csrf": csrf, "body": "[" * 100_000 + "]" * 100_000,
                                                          "action": action, "transcript": "М: добрый день"})
        assert r.status_code == 200, r.text[:500]
        assert "nested deeper than 32 levels" in r.text


def test_an_activated_version_scores_the_next_rescore(client, people, processor):
    files = [("files", ("clip_ru.wav", (DATA / "clip_ru.wav").read_bytes(), "audio/wav"))]
    call_id = client.post(f"{API}/calls", files=files, data={"manager_external_id": "101"},  # of the head's team
                          headers=people.h("admin")).json()["items"][0]["call_id"]
    assert processor.process_next() == call_id
    before = client.get(f"{API}/calls/{call_id}", headers=people.h("admin")).json()
    assert before["script"]["version"] == "1.0" and "farewell" in [s["id"] for s in before["stages"]]

    def no_farewell(data):  # this team's calls end on the next step: no farewell required
        data["stages"] = [s for s in data["stages"] if s["id"] != "farewell"]

    assert post_yaml(client, people, new_version("2.0", edit=no_farewell), role="admin", activate="true").status_code == 201
    r = client.post(f"{API}/calls/rescore", json={}, headers=people.h("head_of_sales"))
    assert r.status_code == 200 and r.json()["changed"] == 1
    after = client.get(f"{API}/calls/{call_id}", headers=people.h("admin")).json()
    assert after["script"] == {"id": "ru_b2b_outbound", "version": "2.0"}
    assert "farewell" not in [s["id"] for s in after["stages"]]
    assert after["score"] > before["score"]  # a missed stage no longer counts against the manager
