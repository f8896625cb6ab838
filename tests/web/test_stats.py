"""The figures behind the UI's pages, on SQLite and on PostgreSQL: the review queue's order, the
heatmap's shares (uncertain verdicts left out) and the weekly score trend as pages read them from the
KPI service, and the colleague's example answer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from analyzer import Transcript, load_script, score_transcript
from api.auth.scope import Scope
from api.calls.results import result_values
from api.core.config import get_service_settings
from api.core.db import Base, Database, upgrade
from api.kpi import service as kpi
from api.models import Call, CallStatus, Dispute, Manager, Role, Team
from api.scripts.service import seed_builtin_scripts
from api.web import stats

PG_URL = os.environ.get("CALLQA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/callqa_test")


def _pg_url() -> str:
    """A database of its own beside the API tests' one, so both suites can run at once."""
    u = make_url(PG_URL)
    url = u.set(database=f"{u.database}_web")
    admin = create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.scalar(text("select 1 from pg_database where datname = :n"), {"n": url.database}):
            c.execute(text(f'create database "{url.database}"'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("drop schema public cascade"))
        c.execute(text("create schema public"))
    engine.dispose()
    rendered = url.render_as_string(hide_password=False)
    upgrade(rendered)
    return rendered


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('stats') / 'callqa.db'}"
        upgrade(url)
    else:
        url = _pg_url()
    db = Database(get_service_settings(database_url=url, data_dir=Path(tmp_path_factory.mktemp("data"))))
    with db.sessions() as s:
        seed_builtin_scripts(s)
    yield db
    if request.param == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as c:
            c.execute(text(f"truncate {tables} restart identity cascade"))
    db.dispose()


SCRIPT = load_script("ru_b2b_outbound")
GAVE_UP = [("manager", "Добрый день! Меня зовут Анна, компания Вектор. Вам удобно говорить?"),
           ("client", "Да. Но у вас, наверное, слишком дорого для нас."), ("manager", "Хорошо, до свидания.")]
HANDLED = [("manager", "Добрый день! Меня зовут Борис, компания Вектор. Вам удобно говорить?"),
           ("manager", "Мы возим грузы по всей России, быстро и недорого."),
           ("client", "Это слишком дорого для нас."),
           ("manager", "Понимаю вас. А с чем вы сравниваете? Давайте посчитаем, во что обходится нынешнее решение."),
           ("manager", "Давайте встретимся в четверг в 11 и всё покажу. До свидания!")]


def _call(s: Session, manager: Manager, turns: list[tuple[str, str]], *, days: int, uncertain: str | None = None) -> Call:
    t = [{"speaker": who, "text": said, "start": 3.0 * i, "end": 3.0 * i + 2.5} for i, (who, said) in enumerate(turns)]
    report = score_transcript(Transcript.from_dict({"language": "ru", "turns": t}), SCRIPT).to_dict()
    if uncertain:  # as when the recogniser was unsure of the evidence's words
        next(st for st in report["stages"] if st["id"] == uncertain)["status"] = "uncertain"
    call = Call(manager_id=manager.id, status=CallStatus.done, started_at=datetime.now(UTC) - timedelta(days=days),
                report=report)
    s.add(call)
    s.flush()
    values = result_values(s, call.id, report, SCRIPT)
    values.pop("duration", None)
    for k, v in values.items():
        setattr(call, k, v)
    s.commit()
    return call


@pytest.fixture(scope="module")
def department(database: Database) -> dict[str, int]:
    with database.sessions() as s:
        team = Team(name="Москва")
        s.add(team)
        s.flush()
        anna, boris = Manager(name="Анна", team_id=team.id), Manager(name="Борис", team_id=team.id)
        s.add_all([anna, boris])
        s.flush()
        ids = {"anna": _call(s, anna, GAVE_UP, days=1).id, "boris": _call(s, boris, HANDLED, days=8).id,
               "boris_unsure": _call(s, boris, HANDLED, days=2, uncertain="greeting").id,
               "anna_disputed": _call(s, anna, GAVE_UP, days=3).id, "anna_id": anna.id, "boris_id": boris.id}
        s.add(Dispute(call_id=ids["anna_disputed"], kind="stage", item="greeting", reason="я поздоровалась"))
        s.commit()
        return ids


def test_the_queue_puts_disputes_first_then_uncertain_then_low_scores(database, department):
    with database.sessions() as s:
        queue = stats.review_queue(s, scope=Scope.system())
    order = [q.call.id for q in queue]
    assert order == [department["anna_disputed"], department["boris_unsure"], department["anna"]]
    assert queue[0].open_disputes == 1
    assert "needs_discovery" in queue[-1].missed
    with database.sessions() as s:  # a head of sales of another team sees none of them
        assert stats.review_queue(s, scope=Scope(user_id=None, role=Role.manager, manager_ids=frozenset({department["boris_id"]}), team_ids=frozenset()))[0].call.id == department["boris_unsure"]


def _report(s, period: str, **options):
    """The KPI service's report for a page's period, as the dashboard asks for it (everyone in scope)."""
    return kpi.kpi_report(s, user=None, period=stats.report_period(s, period, scope=Scope.system()), outcome=False,
                          **options)


def test_heatmap_shares_leave_uncertain_verdicts_out(database, department):
    with database.sessions() as s:
        order, _ = stats.stage_titles(s, lang="ru")
        heat = stats.heatmap(_report(s, "all", by="manager"), stage_order=order)
        week = stats.heatmap(_report(s, "week", by="manager"), stage_order=order)
    assert [name for _, name in heat.managers] == ["Анна", "Борис"]
    assert heat.stages[0] == "greeting"  # in the script's order
    anna, boris = department["anna_id"], department["boris_id"]
    assert (heat.cells[(anna, "needs_discovery")].passed, heat.cells[(anna, "needs_discovery")].total) == (0, 2)
    assert heat.cells[(boris, "greeting")].total == 1  # the uncertain greeting is not counted either way
    assert heat.cells[(boris, "next_step")].share == 1.0
    assert week.cells[(boris, "next_step")].total == 1  # the call 8 days ago is outside the week


def test_the_kpi_table_and_the_weekly_score_trend(database, department):
    with database.sessions() as s:
        report = _report(s, "all", by="manager")
        trend = stats.weekly(_report(s, "all", by="all", trend="week"), "score_mean", count="scored_calls")
    rows = {r["name"]: r for r in report["summary"]}
    assert rows["Анна"]["calls"] == 2 and rows["Анна"]["objections_handled_rate"] == 0.0
    assert rows["Борис"]["objections_handled_rate"] == 1.0
    assert rows["Борис"]["score_mean"] > rows["Анна"]["score_mean"]
    greeting = next(r for r in report["stages"] if r["name"] == "Борис" and r["stage_id"] == "greeting")
    assert (greeting["passed"], greeting["uncertain"]) == (1, 1)  # the unsure verdict waits for a person
    assert sum(p.n for p in trend) == 4 and all(p.week.weekday() == 0 for p in trend)


def test_a_colleague_who_handled_the_same_objection_is_the_example(database, department):
    with database.sessions() as s:
        example = stats.colleague_example(s, objection_type="price", manager_id=department["anna_id"])
        none = stats.colleague_example(s, objection_type="price", manager_id=department["boris_id"])
    assert example is not None and example.call_id in (department["boris"], department["boris_unsure"])
    assert example.client == "Это слишком дорого для нас."
    assert example.answer.startswith("Понимаю вас. А с чем вы сравниваете?")
    assert none is None  # Anna never handled it: Boris gets no example from her
