"""What each role sees and does in the web UI, driven in headless Chromium against the running app."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

DATA = Path(__file__).parent.parent / "data"


@pytest.mark.parametrize(
    ("role", "home", "heading", "nav"),
    [
        ("quality_controller", "/queue", "Очередь проверки", ["Очередь проверки", "Звонки", "Скрипты", "Загрузка"]),
        ("head_of_sales", "/dashboard", "Панель руководителя отдела продаж", ["Панель РОП", "Звонки", "Скрипты", "Загрузка"]),
        ("manager", "/my", "Мои звонки", ["Мои звонки"]),
        ("admin", "/dashboard", "Панель руководителя отдела продаж",
         ["Очередь проверки", "Панель РОП", "Звонки", "Скрипты", "Загрузка"]),
    ],
)
def test_each_role_signs_in_to_its_own_pages(pages, role, home, heading, nav):
    page = pages.signed_in(role)
    assert page.url == pages.url(home)
    assert page.locator("h1").inner_text() == heading
    assert page.locator("header nav a").all_inner_texts() == nav
    cookie = next(c for c in page.context.cookies() if c["name"] == "callqa_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    if role == "manager":
        pages.expected.append("/dashboard: Failed to load resource: the server responded with a status of 403")
        page.goto(pages.url("/dashboard"))
        assert "недоступна для вашей роли" in page.locator("main").inner_text()


def test_wrong_password_is_refused_and_english_is_one_click_away(pages):
    page = pages.new()
    page.goto(pages.url("/queue"))
    assert "/login" in page.url
    page.fill("#username", "okk")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Неверный логин или пароль."
    page.click("text=English")
    assert page.locator("h1").inner_text() == "Sign in"
    page.fill("#username", "okk")
    page.fill("#password", pages.site.password("okk"))
    page.click("button[type=submit]")
    assert page.url.endswith("/queue")
    assert page.locator("h1").inner_text() == "Review queue"  # the choice is kept in a cookie
    page.click("text=Русский")
    assert page.locator("h1").inner_text() == "Очередь проверки"

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "callqa_session")
    page.click("header button[type=submit]")  # sign out: the session is gone, its token revoked
    assert page.url.endswith("/login")
    assert not [c for c in page.context.cookies() if c["name"] == "callqa_session"]
    assert httpx.get(pages.url("/api/v1/auth/me"), headers={"Authorization": f"Bearer {token}"}).status_code == 401
    page.goto(pages.url("/queue"))
    assert "/login" in page.url


def test_a_form_without_the_csrf_token_is_refused(pages, site):
    page = pages.signed_in("quality_controller")
    call_id = site.calls["boris"]
    r = page.request.post(pages.url(f"/calls/{call_id}/review"), form={"kind": "score", "value": "5", "csrf": "forged"})
    assert r.status == 403
    r = page.request.post(pages.url("/api/v1/calls/rescore"), data={"dry_run": True})
    assert r.status == 401  # the session cookie alone does not let a script write through the API
    assert site.api("admin").get(f"/api/v1/calls/{call_id}").json()["score"] != 5
    page_headers = page.request.get(pages.url("/queue")).headers
    assert "script-src 'self'" in page_headers["content-security-policy"]  # nothing from elsewhere runs


def test_review_a_call_override_a_verdict_and_the_audit_log_has_it(pages, site, wait_until):
    call_id = site.calls["anna"]
    page = pages.signed_in("quality_controller")
    page.click(f"#queue a[href='/calls/{call_id}']")
    assert page.url == pages.url(f"/calls/{call_id}")
    detail = site.api("quality_controller").get(f"/api/v1/calls/{call_id}").json()

    # the player: the recording loads (HTTP Range through the session) and the transcript follows it
    wait_until(lambda: page.evaluate("() => document.getElementById('player').readyState >= 1"), what="the recording loading")
    assert page.locator("#transcript .line").count() == len(detail["transcript"])
    assert page.locator("#transcript .line.sp-manager").count() > 0 and page.locator("#transcript .line.sp-client").count() > 0
    third = detail["transcript"][2]
    page.evaluate(f"document.getElementById('player').currentTime = {(third['start'] + third['end']) / 2}")
    page.wait_for_selector("#line-2.current")
    page.click("#line-4")
    assert abs(page.evaluate("document.getElementById('player').currentTime") - detail["transcript"][4]["start"]) < 0.5

    # a verdict shows its evidence in the transcript
    objection = detail["objections"][0]
    page.click("#objection-0 .show-evidence")
    assert page.locator(f"#line-{objection['client']['turn']}").get_attribute("class").split().count("focused") == 1

    # override a stage the machine missed, with a comment; the machine's verdict stays beside it
    missed = next(s for s in detail["stages"] if s["status"] == "missed")
    item = page.locator(f"#stage-{missed['id']}")
    item.locator("select").select_option("passed")
    item.locator("input[name=comment]").fill("этап есть на 0:40, распознавание ошиблось")
    item.locator("button[type=submit]").click()
    assert "Вердикт сохранён" in page.locator(".flash").inner_text()
    item = page.locator(f"#stage-{missed['id']}")
    assert item.locator(".verdict-badge").all_inner_texts() == ["пропущен", "выполнен"]
    assert "распознавание ошиблось" in item.inner_text()

    api = site.api("quality_controller")
    after = api.get(f"/api/v1/calls/{call_id}").json()
    stage = next(s for s in after["stages"] if s["id"] == missed["id"])
    assert (stage["machine_status"], stage["status"], stage["reviewed"]) == ("missed", "passed", True)
    assert after["score"] > detail["score"]
    audit = api.get("/api/v1/audit", params={"entity": "call", "entity_id": str(call_id), "action": "review.stage"}).json()
    entry = next(e for e in audit["items"] if e["after"]["item"] == missed["id"])
    assert entry["user"]["username"] == "okk"
    assert entry["after"]["comment"] == "этап есть на 0:40, распознавание ошиблось"
    assert (entry["before"]["value"], entry["after"]["value"]) == ("missed", "passed")


def test_review_flow_with_the_keyboard_alone(pages, site, wait_until):
    call_id = site.calls["boris"]
    page = pages.signed_in("quality_controller", f"/calls/{call_id}")
    detail = site.api("quality_controller").get(f"/api/v1/calls/{call_id}").json()
    wait_until(lambda: page.evaluate("() => document.getElementById('player').readyState >= 1"), what="the recording loading")

    def focused() -> dict:
        return page.evaluate("""() => { const e = document.activeElement;
            return {id: e.id, tag: e.tagName, cls: e.className, outline: getComputedStyle(e).outlineStyle}; }""")

    # Tab walks from the top of the page to the transcript; the focused control is visibly marked
    for _ in range(40):
        page.keyboard.press("Tab")
        now = focused()
        if now["id"] == "line-1":
            break
    assert now["id"] == "line-1", "Tab never reached the transcript"
    assert now["outline"] != "none"
    page.keyboard.press("Enter")  # play from this line
    assert abs(page.evaluate("document.getElementById('player').currentTime") - detail["transcript"][1]["start"]) < 0.5
    page.keyboard.press("Space")  # Space works on a line too
    page.keyboard.press("k")  # and k pauses
    assert page.evaluate("document.getElementById('player').paused")

    # a stage's verdict: Tab to it, arrow to the other one, Tab to the comment, Enter saves (a stage the
    # machine missed, or else the last it found)
    missed = next((st for st in detail["stages"] if st["status"] == "missed"),
                  [st for st in detail["stages"] if st["status"] == "passed"][-1])
    was, now_ = missed["status"], "passed" if missed["status"] == "missed" else "missed"
    for _ in range(200):
        page.keyboard.press("Tab")
        if focused()["id"] == f"v-stage-{missed['id']}":
            break
    assert focused()["id"] == f"v-stage-{missed['id']}"
    assert focused()["outline"] != "none"
    page.keyboard.press("ArrowUp" if was == "missed" else "ArrowDown")
    page.keyboard.press("Tab")
    page.keyboard.type("переслушала этап")
    with page.expect_navigation():  # the page before it may show a flash too: wait for the new one
        page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert focused()["id"] == f"stage-{missed['id']}"
    words = {"passed": "выполнен", "missed": "пропущен"}
    assert page.locator(f"#stage-{missed['id']} .verdict-badge").all_inner_texts() == [words[was], words[now_]]

    # on to the score override: Tab into the field, type, Tab to the comment, Enter submits
    for _ in range(200):
        page.keyboard.press("Tab")
        if focused()["id"] == "v-score":
            break
    assert focused()["id"] == "v-score"
    page.keyboard.press("Control+A")
    page.keyboard.type("64")
    page.keyboard.press("Tab")
    assert focused()["id"] == "c-score"
    page.keyboard.type("оценка по итогам прослушивания")
    with page.expect_navigation():  # the page before it may show a flash too: wait for the new one
        page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert focused()["id"] == "score"  # the focus comes back to what was changed
    assert page.locator(".score-big").inner_text() == "64"
    assert site.api("admin").get(f"/api/v1/calls/{call_id}").json()["score"] == 64


def test_heatmap_drills_down_to_the_calls_behind_a_cell(pages, site):
    page = pages.signed_in("head_of_sales")
    heat = page.locator("#heatmap")
    assert heat.locator("tbody th").all_inner_texts() == ["Анна Смирнова", "Борис Петров"]
    assert heat.locator("thead th").all_inner_texts()[1] == "Приветствие"
    assert page.locator("svg.chart").count() >= 1  # the score trend
    kpi_rows = page.locator("#kpi tbody tr")
    assert kpi_rows.count() == 2
    anna_call = site.api("head_of_sales").get(f"/api/v1/calls/{site.calls['anna']}").json()
    missed = next(s for s in anna_call["stages"] if s["status"] == "missed")
    cell = page.locator(f"#heatmap a[data-manager='{site.managers['anna']}'][data-stage='{missed['id']}']")
    assert cell.inner_text().startswith("0%")
    colour = cell.evaluate("e => getComputedStyle(e.parentElement).backgroundColor")
    cell.click()
    assert f"manager_id={site.managers['anna']}" in page.url and f"stage_missed={missed['id']}" in page.url
    assert "Анна Смирнова" in page.locator("h1").inner_text()
    assert page.locator("table.calls tbody tr").count() == 1
    assert page.locator(f"table.calls a[href='/calls/{site.calls['anna']}']").count() == 1
    page.select_option("select[name=manager_id]", "")  # widen the list: every manager, the same stage missed
    page.click("form.filters button[type=submit]")
    assert "Всего:" in page.locator("main").inner_text() and page.locator("table.calls tbody tr").count() >= 1
    page.go_back()
    page.go_back()
    passed = page.locator("#heatmap a").filter(has_text="100%").first
    assert passed.evaluate("e => getComputedStyle(e.parentElement).backgroundColor") != colour

    page.select_option("select[name=period]", "week")  # a period narrows the drill-down too
    page.click("form.filters button[type=submit]")
    page.locator(f"#heatmap a[data-manager='{site.managers['anna']}'][data-stage='{missed['id']}']").click()
    assert "date_from=" in page.url and page.locator("table.calls tbody tr").count() == 1
    assert "Начиная с" in page.locator("main").inner_text()
    page.go_back()

    export = page.locator(".export a").first
    r = page.request.get(pages.url(export.get_attribute("href")))
    assert r.status == 200 and "csv" in r.headers["content-type"]
    assert "Анна Смирнова" in r.body().decode("utf-8-sig")


def test_manager_reads_feedback_and_disputes_a_verdict(pages, site):
    page = pages.signed_in("manager")
    rows = page.locator("table.calls tbody tr")
    assert rows.count() == 1  # own calls only
    page.click(f"a[href='/calls/{site.calls['anna']}']")
    feedback = page.locator("#feedback")
    text = feedback.inner_text()
    detail = site.api("manager").get(f"/api/v1/calls/{site.calls['anna']}").json()
    unhandled = [o for o in detail["objections"] if o["status"] == "missed"]
    assert unhandled, "the sample call leaves an objection unhandled"
    first = unhandled[0]
    assert f"Не отработано возражение «{first['title']}»" in text
    assert first["recommended"][0] in text
    boris = site.api("admin").get(f"/api/v1/calls/{site.calls['boris']}").json()
    handled = next(o for o in boris["objections"] if o["type"] == first["type"] and o["status"] == "passed")
    example = feedback.locator(".example").first
    assert "Как ответил коллега" in example.inner_text()
    assert handled["client"]["text"] in example.inner_text() and handled["response"]["text"] in example.inner_text()
    assert page.locator(f"a[href='/calls/{site.calls['boris']}']").count() == 0  # a colleague's call stays closed

    passed = next(s for s in detail["stages"] if s["status"] == "passed" and not s["reviewed"])
    item = page.locator(f"#stage-{passed['id']}")
    item.locator("summary").click()
    item.locator("textarea").fill("я так не говорила, проверьте запись")
    item.locator("button[type=submit]").click()
    assert page.locator(".flash").inner_text() == "Спор отправлен контролёру."
    disputes = site.api("quality_controller").get("/api/v1/disputes", params={"status": "open"}).json()["items"]
    assert any(d["item"] == passed["id"] and d["reason"] == "я так не говорила, проверьте запись" for d in disputes)

    qc = pages.signed_in("quality_controller")
    first_row = qc.locator("#queue tbody tr").first
    assert f"/calls/{site.calls['anna']}" in first_row.locator("a").get_attribute("href")
    assert "спор: 1" in first_row.inner_text()

    # the quality controller accepts it: the verdict flips and the manager sees the outcome
    first_row.locator("a").click()
    dispute = qc.locator("#disputes + .disputes li").first
    assert "я так не говорила" in dispute.inner_text() and passed["title"] in dispute.inner_text()
    dispute.locator("select").select_option("accept")
    dispute.locator("input[name=comment]").fill("переслушала: этапа нет")
    dispute.locator("button[type=submit]").click()
    assert qc.locator(".flash").inner_text() == "Спор решён."
    stage = next(st for st in site.api("manager").get(f"/api/v1/calls/{site.calls['anna']}").json()["stages"]
                 if st["id"] == passed["id"])
    assert (stage["machine_status"], stage["status"]) == ("passed", "missed")
    page.reload()
    assert "принят" in page.locator(".disputes").inner_text()


def test_script_editor_shows_an_error_at_its_field_and_tries_a_transcript(pages):
    page = pages.signed_in("head_of_sales", "/scripts/ru_b2b_outbound")
    body = page.locator("#body")
    yaml_text = body.input_value()
    lines = yaml_text.splitlines()
    needs = lines.index("  - id: needs_discovery")
    weight = next(i for i in range(needs, len(lines)) if lines[i].strip().startswith("weight:"))
    lines[weight] = "    weight: -5"
    body.fill("\n".join(lines))
    page.fill("#transcript", "manager: Добрый день! Меня зовут Анна, компания Вектор. Вам удобно говорить?\n"
                             "client: Да, слушаю. Но у вас, наверное, дорого.\n"
                             "manager: Понимаю. А с чем вы сравниваете?")
    page.click("button[value=save]")
    error = page.locator(".field-error").first
    assert error.locator("code").inner_text() == "stages.3.weight"
    assert error.locator(".goto-line").inner_text() == f"строка {weight + 1}"
    assert "greater than or equal to 0" in error.inner_text()
    assert page.locator("#body").get_attribute("aria-invalid") == "true"
    assert "-5" in page.locator("#body").input_value()  # the edit is kept for correcting
    error.locator(".goto-line").click()
    selected = page.evaluate("() => { const a = document.getElementById('body'); return a.value.slice(a.selectionStart, a.selectionEnd); }")
    assert selected.strip() == "weight: -5"

    body = page.locator("#body")
    fixed = body.input_value().replace("    weight: -5", "    weight: 20").replace('version: "1.0"', 'version: "1.1-web"', 1)
    body.fill(fixed)
    page.click("button[value=try]")
    result = page.locator("#try-result")
    assert "Приветствие" in result.inner_text() and "выполнен" in result.inner_text()
    assert "Понимаю. А с чем вы сравниваете?" in result.inner_text()  # the handling, with its evidence
    page.click("button[value=save]")
    assert page.locator(".flash").inner_text() == "Версия 1.1-web сохранена."
    assert "1.1-web" in page.locator("main").inner_text()


def test_a_reviewed_objection_teaches_the_script_and_the_head_sees_the_change_before_activating(pages, site):
    boris = site.api("quality_controller").get(f"/api/v1/calls/{site.calls['boris']}").json()
    objection = next(o for o in boris["objections"] if o["status"] == "passed")
    script_id = boris["script"]["id"]
    before = site.api("head_of_sales").get(f"/api/v1/scripts/{script_id}").json()["active_version"]
    r = site.api("quality_controller").post(f"/api/v1/calls/{site.calls['boris']}/reviews", json={
        "kind": "objection", "item": objection["key"], "value": "passed", "comment": "отработал хорошо"})
    assert r.status_code == 201, r.text

    # the controller sees what the reviews would teach, in words, and downloads them for Excel
    qc = pages.signed_in("quality_controller", f"/scripts/{script_id}")
    counts = qc.locator("#learn-counts").inner_text()
    assert "Примеров: 2, звонков: 1." in counts  # no "из 1 звонков": counts without a noun to agree and f"{objection['title']}: 1" in counts and "отработано 1" in counts
    download = qc.request.get(pages.url(f"/scripts/{script_id}/examples.csv"))
    assert download.status == 200 and download.body().startswith("\ufeff".encode())
    rows = [line.split(";") for line in download.body().decode("utf-8-sig").splitlines()]
    assert rows[0] == ["Что", "Решение контролёра", "Отработка", "Слова", "Перед этим", "Звонок"]
    assert sorted((r[0], r[1], r[2], r[5]) for r in rows[1:]) == [
        ("ответ менеджера", objection["title"], "отработано", f"№ {site.calls['boris']}"),
        ("реплика клиента", objection["title"], "", f"№ {site.calls['boris']}")]
    assert qc.locator("#activate-learned").count() == 0
    manager = pages.signed_in("manager")
    assert manager.request.get(pages.url(f"/scripts/{script_id}/examples.csv")).status == 403

    # the head of sales learns a version: stored inactive, with what it would change, then activates it
    head = pages.signed_in("head_of_sales", f"/scripts/{script_id}")
    head.click("#learn-button")
    result = head.locator("#learn-result").inner_text()
    learned, label = f"{before}+learned.1", f"{before} (обучение 1)"  # the API's name; the page's words
    assert f"Версия {label} обучена (примеров: 2, звонков: 1) и сохранена неактивной." in result
    assert "изменятся оценки звонков" in result or "ничего не изменит" in result
    assert site.api("head_of_sales").get(f"/api/v1/scripts/{script_id}").json()["active_version"] == before
    pages.expected.append("status of 409")
    head.click("#learn-button")  # nothing new since
    assert head.locator("#learn-error").inner_text() == f"Новых разборов нет: версия {label} обучена на этих же примерах."
    try:
        # activating is a separate step, for those who may: from the learned version's own page
        head.goto(pages.url("/scripts"))
        head.get_by_role("link", name=label, exact=True).click()
        assert head.locator("main p.muted").first.inner_text().startswith(f"{script_id} · версия {label}")
        head.locator("#activate-version").click()
        assert head.locator(".flash").inner_text() == f"Версия {label} теперь активна."
        assert site.api("head_of_sales").get(f"/api/v1/scripts/{script_id}").json()["active_version"] == learned
    finally:  # the other tests score with the version they expect
        site.api("admin").post(f"/api/v1/scripts/{script_id}/versions/{before}/activate")


def test_upload_a_recording_and_watch_it_finish_without_reloading(pages, site, wait_until):
    page = pages.signed_in("quality_controller", "/upload")
    page.select_option("#d-manager", str(site.managers["boris"]))
    page.select_option("#d-direction", "inbound")
    page.fill("#d-phone", "8 912 345-67-89")
    page.fill("#d-started", "2026-11-20T10:30")
    page.set_input_files("#files", str(DATA / "clip_ru_alaw.wav"))
    row = page.locator("#file-table tbody tr")
    assert row.count() == 1 and "clip_ru_alaw.wav" in row.inner_text()
    page.evaluate("window.sameDocument = true")
    page.click("#start")
    wait_until(lambda: page.evaluate("() => document.querySelector('#file-table progress').value === 100"), what="the upload")
    wait_until(lambda: row.get_attribute("data-call-id") is not None, what="the upload's answer")
    # the call's own page, opened while it is processed, shows it once it is scored
    watcher = pages.signed_in("quality_controller", f"/calls/{row.get_attribute('data-call-id')}")
    wait_until(lambda: row.get_attribute("data-status") in ("done", "failed"), what="the call finishing")
    assert row.get_attribute("data-status") == "done", row.inner_text()
    assert "готов" in row.inner_text() and "Оценка" in row.inner_text()
    assert page.evaluate("window.sameDocument === true")  # no reload happened
    call_id = int(row.get_attribute("data-call-id"))
    call = site.api("admin").get(f"/api/v1/calls/{call_id}").json()
    assert call["manager"]["id"] == site.managers["boris"] and call["direction"] == "inbound"
    assert call["client_phone"] == "+79123456789"
    wait_until(lambda: watcher.locator(".score-big").count() == 1, seconds=30, what="the call page showing the score")
    row.locator("a").click()
    assert page.url == pages.url(f"/calls/{call_id}")
