"""The call page of the web UI shows a reviewer's verdict on an objection and a manager's dispute of
it under the objection's own name, on SQLite and PostgreSQL. Reviews and disputes of objections
are stored by the objection's key (``price@3``), not by its position in the list."""

from __future__ import annotations

import re

from tests.helpers import API, PASSWORD, TWO_OBJECTIONS, score, transcribed_call


def _sign_in(client, username: str, password: str) -> None:
    form = client.get("/login").text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form)
    assert token
    r = client.post("/login", data={"login_csrf": token.group(1), "next": "/", "username": username,
                                    "password": password}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_objection_review_and_dispute_show_on_the_call_page(client, db, people):
    call_id = transcribed_call(client, db, people, TWO_OBJECTIONS, hz=440, manager_external_id="101")
    score(client, people, [call_id])
    detail = client.get(f"{API}/calls/{call_id}", headers=people.h("admin")).json()
    supplier = next(o for o in detail["objections"] if o["type"] == "have_supplier")
    assert supplier["key"].startswith("have_supplier@")

    r = client.post(f"{API}/calls/{call_id}/reviews", headers=people.h("quality_controller"),
                    json={"kind": "objection", "item": supplier["key"], "value": "missed",
                          "comment": "вопрос про поставщика не отвечает на возражение"})
    assert r.status_code == 201, r.text
    price = next(o for o in detail["objections"] if o["type"] == "price")
    r = client.post(f"{API}/calls/{call_id}/disputes", headers=people.h("manager"),
                    json={"kind": "objection", "item": price["key"], "reason": "клиент не возражал, он уточнял цену"})
    assert r.status_code == 201, r.text

    _sign_in(client, "quality_controller", PASSWORD)
    page = client.get(f"/calls/{call_id}").text
    # the reviewer's comment stands under the supplier objection, not under the price one
    supplier_block = page[page.index(supplier["title"]):]
    supplier_block = supplier_block[: supplier_block.index("</li>")]
    assert "вопрос про поставщика не отвечает на возражение" in supplier_block
    # the open dispute is listed by the disputed objection's title, not by its key
    disputes = page[page.index('id="disputes"'):] if 'id="disputes"' in page else page
    assert "клиент не возражал, он уточнял цену" in disputes
    assert price["key"] not in re.sub(r'(value|id|for|name)="[^"]*"', "", disputes)
    assert price["title"] in disputes
