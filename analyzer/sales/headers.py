"""What the columns of a CRM export mean: the headers amoCRM, Bitrix24 and the generic format write,
and which CRM and which kind of export a header row comes from.

- **amoCRM** "Сделки → Экспорт" (CSV or Excel): ``ID``, ``Название сделки``, ``Бюджет``,
  ``Ответственный``, ``Дата создания сделки`` (or ``Дата создания``), ``Кем создана сделка``,
  ``Дата закрытия`` (``не закрыта`` when open), ``Теги``, ``Этап сделки``, ``Воронка``,
  ``Полное имя контакта``, ``Компания``, ``Рабочий телефон``, ``Мобильный телефон``, ...,
  ``Источник``. amoCRM has no lead entity apart from the deal: reading leads from an amoCRM
  export gives one lead per deal (:func:`analyzer.sales.imports.leads_from_deals`).
- **Bitrix24** deal and lead lists exported to CSV or Excel: ``ID``, ``Название`` /
  ``Название лида``, ``Стадия сделки`` / ``Статус``, ``Сумма``, ``Валюта``, ``Ответственный``,
  ``Дата создания``, ``Дата закрытия`` / ``Предполагаемая дата закрытия``, ``Направление``,
  ``Источник``, ``Контакт``, ``Компания``, ``Телефон`` / ``Рабочий телефон`` / ``Мобильный телефон``.
- **generic**: English snake_case headers, documented in ``sample_calls/crm/FORMAT.md``; the only
  format for plans and stage history, which CRMs do not export as tables.

Headers are compared normalised (:func:`normalise_header`): case, ``ё``, a BOM, units in brackets
and currency signs do not matter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

CrmSource = Literal["amocrm", "bitrix24", "generic"]
Entity = Literal["leads", "deals", "plans", "stage_history"]


def normalise_header(header: str) -> str:
    """A header as it is compared: casefolded, ``ё`` = ``е``, no BOM, no units or currency signs, single spaces."""
    h = header.replace("\ufeff", "").casefold().replace("ё", "е")
    h = re.sub(r"\(.*?\)|[₽$€:*]|,\s*руб\.?", " ", h)
    return re.sub(r"\s+", " ", h).strip()


PHONE_HEADERS = ("client_phone", "phone", "телефон", "мобильный телефон", "рабочий телефон", "рабочий прямой телефон",
                 "телефон контакта", "домашний телефон", "другой телефон", "телефон клиента")
"""Phone columns, most likely the client's first: the first non-empty one of a row is its phone."""

ALIASES: dict[Entity, dict[str, tuple[str, ...]]] = {
    # canonical field -> the (normalised) headers that hold it, the first present wins
    "deals": {
        "deal_id": ("deal_id", "id", "id сделки", "номер сделки"),
        "lead_id": ("lead_id", "id лида", "лид id"),
        "title": ("title", "название сделки", "название", "сделка"),
        "amount": ("amount", "бюджет", "сумма", "сумма сделки", "budget", "opportunity"),
        "currency": ("currency", "валюта"),
        "manager": ("manager", "ответственный", "менеджер", "responsible", "ответственный менеджер"),
        "created_at": ("created_at", "дата создания сделки", "дата создания", "создана"),
        "closed_at": ("closed_at", "дата закрытия", "дата закрытия сделки", "дата завершения",
                      "предполагаемая дата закрытия"),
        "status": ("status",),
        "stage": ("stage", "этап сделки", "стадия сделки", "этап", "стадия"),
        "pipeline": ("pipeline", "воронка", "направление"),
        "client": ("client", "клиент", "полное имя контакта", "контакт", "компания", "компания контакта"),
        "source": ("source", "источник", "источник сделки", "utm_source"),
    },
    "leads": {
        "lead_id": ("lead_id", "id", "id лида"),
        "title": ("title", "название лида", "название"),
        "created_at": ("created_at", "дата создания", "дата создания лида", "создан"),
        "manager": ("manager", "ответственный", "менеджер", "responsible"),
        "source": ("source", "источник", "utm_source"),
        "client": ("client", "клиент", "название компании", "компания", "контакт", "полное имя контакта", "имя"),
        "status": ("status", "статус", "статус лида", "стадия"),
        "first_response_at": ("first_response_at", "дата первого ответа", "первый ответ"),
    },
    "plans": {
        "manager": ("manager", "менеджер", "ответственный", "сотрудник"),
        "period": ("period", "период", "месяц"),
        "period_start": ("period_start", "начало периода", "с"),
        "period_end": ("period_end", "конец периода", "по"),
        "revenue_plan": ("revenue_plan", "план выручки", "план по выручке", "план продаж", "план"),
        "activity_plan": ("activity_plan", "план активности", "план звонков", "план встреч"),
        "activity_kind": ("activity_kind", "вид активности"),
    },
    "stage_history": {
        "deal_id": ("deal_id", "id сделки", "сделка", "id"),
        "stage": ("stage", "этап", "стадия", "этап сделки", "стадия сделки"),
        "entered_at": ("entered_at", "дата перехода", "дата входа", "дата", "дата изменения"),
    },
}
MANAGER_HEADERS = ("external_id", "team", "team_id", "department", "department_id")
"""Headers of a managers list (``sample_calls/crm/managers.csv``): not a CRM entity, but its header row is found too."""
KNOWN_HEADERS = {a for fields in ALIASES.values() for aliases in fields.values() for a in aliases} | set(PHONE_HEADERS) \
    | set(MANAGER_HEADERS)
"""Every header this package reads: the header row of an export is the first row with two of them."""

SIGNATURES: dict[CrmSource, frozenset[str]] = {
    # headers only that CRM writes (or writes with that spelling)
    "amocrm": frozenset({"название сделки", "бюджет", "этап сделки", "воронка", "дата создания сделки",
                         "кем создана сделка", "кем создана", "полное имя контакта", "ответственный за контакт",
                         "компания контакта", "дата редактирования", "кем редактирована", "теги", "примечание",
                         "рабочий прямой телефон"}),
    "bitrix24": frozenset({"стадия сделки", "сумма", "направление", "название лида", "стадия", "статус",
                           "предполагаемая дата закрытия", "сделка закрыта", "валюта", "дата изменения",
                           "кем создан", "кем изменен", "название компании", "закрыта", "тип", "статус лида",
                           "дата начала", "кем создана", "кем изменена"}),
    "generic": frozenset({"deal_id", "lead_id", "created_at", "closed_at", "amount", "client_phone", "manager",
                          "stage", "status", "revenue_plan", "activity_plan", "entered_at", "period",
                          "first_response_at"}),
}


def detect_source(headers: Sequence[str]) -> CrmSource:
    """Which CRM wrote these headers: the signature set with most hits; ``generic`` when none stands out."""
    normed = {normalise_header(h) for h in headers}
    scores = {src: len(normed & sig) for src, sig in SIGNATURES.items()}
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    if ranked[0][1] == 0 or ranked[0][1] == ranked[1][1]:
        return "generic"
    return ranked[0][0]


DEAL_MARKERS = frozenset({"amount", "бюджет", "сумма", "deal_id", "стадия сделки", "этап сделки", "stage", "closed_at"})
"""Headers only a deals export has: a leads file with one of them is a deals export."""


def detect_entity(headers: Sequence[str]) -> Entity:
    """Which kind of export: plans, stage history, leads or deals."""
    normed = {normalise_header(h) for h in headers}
    if normed & {"revenue_plan", "activity_plan", "план выручки", "план по выручке", "план продаж",
                 "план звонков", "план встреч", "план активности"}:
        return "plans"
    if normed & {"entered_at", "дата перехода", "дата входа"}:
        return "stage_history"
    if normed & DEAL_MARKERS:
        return "deals"
    if normed & {"название лида", "статус лида", "id лида", "lead_id", "first_response_at"}:
        return "leads"
    return "deals"
