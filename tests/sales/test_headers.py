"""Which CRM wrote an export and which rows it holds, told by the header row."""

from __future__ import annotations

import pytest

from analyzer.sales.headers import detect_entity, detect_source


@pytest.mark.parametrize("headers, source, entity", [
    (["ID", "Название сделки", "Бюджет", "Ответственный", "Дата создания сделки", "Этап сделки", "Воронка"],
     "amocrm", "deals"),
    (["ID", "Название", "Стадия сделки", "Сумма", "Валюта", "Ответственный", "Дата создания"], "bitrix24", "deals"),
    (["ID", "Название лида", "Статус", "Источник", "Ответственный", "Дата создания"], "bitrix24", "leads"),
    (["deal_id", "created_at", "closed_at", "status", "amount", "manager"], "generic", "deals"),
    (["lead_id", "created_at", "manager", "client_phone", "status"], "generic", "leads"),
    (["manager", "period", "revenue_plan"], "generic", "plans"),
    (["deal_id", "stage", "entered_at"], "generic", "stage_history"),
    (["\ufeffID", "Название сделки", "Бюджет ₽", "Этап сделки"], "amocrm", "deals"),
])
def test_detect_source_and_entity_by_headers(headers, source, entity):
    assert (detect_source(headers), detect_entity(headers)) == (source, entity)
