"""Sample CRM exports that match the sample calls, for the KPI table end to end.

    python -m sample_calls.crm.generate [--out sample_calls/crm]

Every labelled dialogue in ``sample_calls/dialogues`` is one call of April 2024 to one client;
each client has a lead and a deal. The department has two teams in two CRMs (mid-migration):

- team ``north`` (two Russian-speaking managers) works in amoCRM: ``amocrm_deals.csv`` (cp1251,
  ``;``, Russian headers, ``1 234 567,89`` amounts, ``dd.mm.yyyy hh:mm:ss`` local times);
  amoCRM deals are their own leads;
- team ``south`` (two Russian-speaking and two English-speaking managers) works in Bitrix24:
  ``bitrix24_deals.xlsx`` and ``bitrix24_leads.csv`` (UTF-8 with BOM).

Plus the generic files: ``stage_history.csv`` (deal stage history), ``plans.csv`` (April plans),
``managers.csv`` (external id = the PBX extension, name as in the CRM, team, department) and
``calls.csv``: the metadata of each sample call (manager extension, client phone, direction,
start, CRM ids for half of them; the rest are linked by phone), to import the recordings with.

The outcome follows the labels, so script quality and conversion are related as in life: a deal
is won when the manager closed on a next step and left no objection unhandled, lost when there
was no next step or an objection was dropped, and every fifth deal is still open.
Deterministic: the same rows every run (the XLSX zip records when it was written).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parent.parent
DIALOGUES = ROOT / "dialogues"
AUDIO = ROOT / "audio"
MSK = ZoneInfo("Europe/Moscow")

MANAGERS = [  # external_id (PBX extension), name as in the CRM, team, department, language
    ("101", "Игорь Ляхов", "north", "sales", "ru"),
    ("102", "Наталья Орлова", "north", "sales", "ru"),
    ("201", "Анна Смирнова", "south", "sales", "ru"),
    ("202", "Олег Новиков", "south", "sales", "ru"),
    ("203", "Emma Clarke", "south", "sales", "en"),
    ("204", "James Porter", "south", "sales", "en"),
]
FUNNEL_AMO = ["Первичный контакт", "Переговоры", "Принимают решение", "Успешно реализовано"]
LOST_AMO = "Закрыто и не реализовано"
FUNNEL_B24 = ["Новая", "Подготовка документов", "Счёт на предоплату", "Сделка успешна"]
LOST_B24 = "Сделка провалена"
AMOUNTS = {"logistics": 480000, "crm": 156000, "saas": 96000, "office_supplies": 38500, "cleaning": 124000,
           "leasing": 2350000, "advertising": 210000, "insurance": 87000, "recruiting": 145000,
           "construction": 1250000, "accounting": 66000, "water": 18400, "telecom": 54000, "training": 99000,
           "security": 310000, "packaging": 72500, "edo": 42000, "workwear": 268000, "medical_leasing": 3100000,
           "printing": 33000, "roofing": 870000, "it_outsourcing": 390000, "english_courses": 57000,
           "fuel_cards": 150000, "billboards": 640000, "catering": 185000, "tasks_saas": 48000,
           "bus_ads": 120000, "building_supply": 560000, "marketing": 230000, "it_support": 175000,
           "staffing": 205000, "bookkeeping": 64000}


@dataclass
class Row:
    call_id: str
    manager: tuple[str, str, str, str, str]
    phone: str
    direction: str
    started: datetime
    lead_id: str
    deal_id: str
    lead_created: datetime
    deal_created: datetime
    closed: datetime | None
    status: str
    amount: float
    reached: int
    title: str
    client: str
    source: str
    crm_ids: bool


def _outcome(labels: dict, i: int) -> str:
    unhandled = any(not o.get("handled") for o in labels.get("objections", []))
    if i % 5 == 4:
        return "open"
    return "won" if "next_step" in labels.get("stages", []) and not unhandled else "lost"


def build_rows() -> list[Row]:
    dialogues = [yaml.safe_load(f.read_text(encoding="utf-8")) for f in sorted(DIALOGUES.glob("*.yaml"))]
    ru = [m for m in MANAGERS if m[4] == "ru"]
    en = [m for m in MANAGERS if m[4] == "en"]
    rows = []
    counters = {"ru": 0, "en": 0}
    for i, d in enumerate(dialogues):
        lang = d["language"]
        pool = ru if lang == "ru" else en
        k = counters[lang]
        counters[lang] += 1
        manager = pool[k % len(pool)]
        day = 1 + (k * 29 // max(len(dialogues) // 2, 1)) % 29  # spread over April
        started = datetime(2024, 4, day, 10 + (k * 3) % 8, (k * 17) % 60, tzinfo=MSK)
        inbound = "inbound" in d["id"]
        lead_created = started + timedelta(minutes=1) if inbound else started - timedelta(minutes=7 + (k * 37) % 300)
        deal_created = lead_created + timedelta(minutes=30)
        status = _outcome(d.get("labels", {}), i)
        closed = started + timedelta(days=3 + k % 12, hours=2) if status != "open" else None
        reached = 3 if status == "won" else (1 + k % 2)
        industry = d.get("industry", "other")
        phone = f"+7912{5000000 + i:07d}" if lang == "ru" else f"+4420{7946000 + i:07d}"
        rows.append(Row(
            call_id=d["id"], manager=manager, phone=phone, direction="inbound" if inbound else "outbound",
            started=started, lead_id=str(7000 + i), deal_id=str(10400 + i), lead_created=lead_created,
            deal_created=deal_created, closed=closed, status=status,
            amount=float(AMOUNTS.get(industry, 100000) + 500 * (i % 7)),
            reached=reached, title=f"{industry.replace('_', ' ').capitalize()}: {d['id'][3:5]}",
            client=f"Клиент {d['id'][:5]}" if lang == "ru" else f"Client {d['id'][:5]}",
            source=["Сайт", "Звонок", "Реклама"][i % 3], crm_ids=i % 2 == 0))
    return rows


def _rendered_audio() -> dict[str, str]:
    """Dialogue id -> the name of its recording in ``sample_calls/audio``. The labels file says which
    dialogue a recording is (a mono rendering is named ``<id>_mono.*``), and the recording is the
    file beside it with the same name (``ru_12_telecom_hangup_mono.labels.json`` ->
    ``ru_12_telecom_hangup_mono.mp3``)."""
    found: dict[str, str] = {}
    for labels in sorted(AUDIO.glob("*.labels.json")):
        stem = labels.name[: -len(".labels.json")]
        data = json.loads(labels.read_text(encoding="utf-8"))
        files = [p for p in AUDIO.glob(f"{stem}.*") if p != labels and not p.name.endswith(".json")]
        if files:
            found[str(data["id"])] = files[0].name
    return found


def _local(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(MSK).strftime("%d.%m.%Y %H:%M:%S")


def _ru_amount(x: float) -> str:
    whole, frac = f"{x:,.2f}".split(".")
    return whole.replace(",", " ") + "," + frac


def _phone_variants(phone: str, i: int) -> str:
    if not phone.startswith("+7"):
        return phone
    d = phone[2:]
    return [f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}", f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}", f"8{d}"][i % 3]


def amocrm_csv(rows: list[Row]) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(["ID", "Название сделки", "Бюджет", "Ответственный", "Дата создания сделки", "Кем создана сделка",
                "Дата редактирования", "Кем редактирована", "Дата закрытия", "Теги", "Примечание", "Этап сделки",
                "Воронка", "Полное имя контакта", "Компания контакта", "Рабочий телефон", "Мобильный телефон", "Источник"])
    for i, r in enumerate(rows):
        stage = FUNNEL_AMO[-1] if r.status == "won" else LOST_AMO if r.status == "lost" else FUNNEL_AMO[r.reached]
        w.writerow([r.deal_id, r.title, _ru_amount(r.amount), r.manager[1], _local(r.lead_created), r.manager[1],
                    _local(r.closed or r.deal_created), r.manager[1], _local(r.closed) or "не закрыта", "",
                    "Образец" if i % 4 else "Перезвонить\nв четверг", stage, "Продажи", r.client, r.client, "",
                    _phone_variants(r.phone, i), r.source])
    return out.getvalue().encode("cp1251")


def bitrix24_xlsx(rows: list[Row]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Сделки"
    ws.append(["ID", "Название", "Стадия сделки", "Сумма", "Валюта", "Ответственный", "Дата создания", "Дата изменения",
               "Предполагаемая дата закрытия", "Сделка закрыта", "Направление", "Источник", "Контакт", "Телефон",
               "ID лида"])
    for i, r in enumerate(rows):
        stage = FUNNEL_B24[-1] if r.status == "won" else LOST_B24 if r.status == "lost" else FUNNEL_B24[r.reached]
        closed = r.closed or r.started + timedelta(days=20)
        naive = [t.astimezone(MSK).replace(tzinfo=None) for t in (r.deal_created, closed)]
        ws.append([int(r.deal_id), r.title, stage, r.amount, "RUB", r.manager[1], naive[0], naive[1], naive[1],
                   "Нет" if r.status == "open" else "Да", "Общее", r.source, r.client, _phone_variants(r.phone, i),
                   int(r.lead_id)])
    wb.properties.created = datetime(2024, 5, 1)
    wb.properties.modified = datetime(2024, 5, 1)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def bitrix24_leads_csv(rows: list[Row]) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=";", lineterminator="\r\n")
    w.writerow(["ID", "Название лида", "Статус", "Источник", "Ответственный", "Дата создания", "Название компании",
                "Мобильный телефон"])
    for i, r in enumerate(rows):
        w.writerow([r.lead_id, f"Заявка: {r.title}", "Качественный лид", r.source, r.manager[1], _local(r.lead_created),
                    r.client, _phone_variants(r.phone, i)])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def generic_files(rows: list[Row]) -> dict[str, bytes]:
    def table(header: list[str], body: list[list[object]]) -> bytes:
        out = io.StringIO(newline="")
        w = csv.writer(out, lineterminator="\n")
        w.writerow(header)
        w.writerows(body)
        return out.getvalue().encode("utf-8")

    history = []
    for r in rows:
        amo = r.manager[2] == "north"
        funnel, lost = (FUNNEL_AMO, LOST_AMO) if amo else (FUNNEL_B24, LOST_B24)
        steps = funnel[: r.reached + 1] if r.status != "won" else funnel
        for j, stage in enumerate(steps):
            history.append([r.deal_id, stage, (r.deal_created + timedelta(days=j)).isoformat()])
        if r.status == "lost":
            history.append([r.deal_id, lost, r.closed.isoformat() if r.closed else ""])
    rendered = _rendered_audio()

    def audio(call_id: str) -> str:
        return rendered.get(call_id, "")

    calls = [[r.call_id, audio(r.call_id), r.manager[0],
              r.phone, r.direction, r.started.isoformat(), r.lead_id if r.crm_ids else "",
              r.deal_id if r.crm_ids else ""] for r in rows]
    return {
        "stage_history.csv": table(["deal_id", "stage", "entered_at"], history),
        "plans.csv": table(["manager", "period", "revenue_plan", "activity_plan", "activity_kind"],
                           [[m[1], "2024-04", 1_500_000 if m[4] == "ru" else 600_000, 12, "calls"] for m in MANAGERS]),
        "managers.csv": table(["external_id", "name", "team_id", "department_id"], [list(m[:4]) for m in MANAGERS]),
        "calls.csv": table(["call_id", "audio", "manager_external_id", "client_phone", "direction", "started_at",
                            "crm_lead_id", "crm_deal_id"], calls),
    }


def generate(out: Path) -> list[Path]:
    """Write every sample export to ``out``; returns the paths."""
    rows = build_rows()
    north = [r for r in rows if r.manager[2] == "north"]
    south = [r for r in rows if r.manager[2] == "south"]
    files = {"amocrm_deals.csv": amocrm_csv(north), "bitrix24_deals.xlsx": bitrix24_xlsx(south),
             "bitrix24_leads.csv": bitrix24_leads_csv(south), **generic_files(rows)}
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        paths.append(out / name)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args(argv)
    for p in generate(args.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
