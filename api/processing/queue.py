"""The queue lives in the ``calls`` table: claims with leases, fenced writes, retries with backoff.

Exactly once: a worker claims a call by bumping its ``lease_token`` and setting an expiry; it
renews the lease while it works; every write it makes afterwards (status, transcript, result)
carries ``WHERE lease_token = <its token>``. A worker killed with -9 stops renewing, the lease
expires, another worker claims the call with a new token, and anything the first one might still
try to write is refused. The result is written in the same transaction that marks the call done,
so a call is reported once and never twice.

The same statements run on SQLite (one writer at a time, so the claim is atomic) and PostgreSQL
(``FOR UPDATE SKIP LOCKED`` lets many workers claim different calls at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.models import Call, CallContent, CallRun, CallStatus, utcnow

ACTIVE = (CallStatus.transcribing, CallStatus.scoring)


@dataclass(frozen=True)
class Claim:
    call_id: int
    token: int
    attempts: int
    worker: str


def claimable(now: datetime) -> Any:
    """Which calls a worker may claim at ``now``, as a condition on ``Call``: queued and due, or held by a
    lease that ran out (the Celery executor sends these to its broker)."""
    return or_(
        and_(Call.status == CallStatus.queued, Call.next_attempt_at <= now),
        and_(Call.status.in_(ACTIVE), Call.lease_expires_at < now),
    )


def claim(sessions: sessionmaker[Session], *, worker: str, lease_seconds: float, call_id: int | None = None,
          now: datetime | None = None) -> Claim | None:
    """Claim the next due call (or the given one if it is due); None when there is nothing to do.
    ``now``: the time to judge due calls and expired leases by (default: the clock's)."""
    now = now or utcnow()
    with sessions() as session:
        pick = select(Call.id).where(claimable(now))
        if call_id is not None:
            pick = pick.where(Call.id == call_id)
        pick = pick.order_by(Call.next_attempt_at, Call.id).limit(1).with_for_update(skip_locked=True)
        stmt = (
            update(Call)
            .where(Call.id == pick.scalar_subquery(), claimable(now))
            .values(
                status=CallStatus.transcribing,
                lease_owner=worker,
                lease_token=Call.lease_token + 1,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Call.attempts + 1,
                updated_at=now,
            )
            .returning(Call.id, Call.lease_token, Call.attempts)
            .execution_options(synchronize_session=False)
        )
        row = session.execute(stmt).first()
        if row is None:
            session.rollback()
            return None
        # an earlier run that never finished was lost (its worker died or lost the lease)
        session.execute(
            update(CallRun)
            .where(CallRun.call_id == row.id, CallRun.outcome.is_(None))
            .values(outcome="lost", finished_at=now, error="the worker stopped renewing its lease")
            .execution_options(synchronize_session=False)
        )
        session.add(CallRun(call_id=row.id, lease_token=row.lease_token, worker=worker, started_at=now))
        session.commit()
        return Claim(row.id, row.lease_token, row.attempts, worker)


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _fenced(c: Claim) -> Any:
    return and_(Call.id == c.call_id, Call.lease_token == c.token, Call.status.in_(ACTIVE))


def renew(sessions: sessionmaker[Session], c: Claim, *, lease_seconds: float, now: datetime | None = None) -> bool:
    """Extend the lease (to ``lease_seconds`` from ``now``); False when it is no longer ours."""
    now = now or utcnow()
    with sessions() as session:
        n = _rowcount(session.execute(
            update(Call)
            .where(_fenced(c))
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        ))
        session.commit()
        return n == 1


def write(session: Session, c: Claim, **values: Any) -> bool:
    """A fenced update of the claimed call inside the caller's transaction; False when the lease is lost.
    ``transcript`` and ``report`` go to the call's :class:`~api.models.CallContent` row."""
    content = {key: values.pop(key) for key in ("transcript", "report") if key in values}
    values.setdefault("updated_at", utcnow())
    n = _rowcount(session.execute(update(Call).where(_fenced(c)).values(**values).execution_options(synchronize_session=False)))
    if n == 1 and content:
        # only the lease holder writes here (the fenced update above holds the call's row), so no one
        # inserts the same row between the update and the insert
        updated = session.execute(update(CallContent).where(CallContent.call_id == c.call_id).values(**content)
                                  .execution_options(synchronize_session=False))
        if _rowcount(updated) == 0:
            session.execute(insert(CallContent).values(call_id=c.call_id, **content))
    return n == 1


def _close_run(session: Session, c: Claim, outcome: str, error: str | None = None) -> None:
    session.execute(
        update(CallRun)
        .where(CallRun.call_id == c.call_id, CallRun.lease_token == c.token)
        .values(outcome=outcome, finished_at=utcnow(), error=error)
        .execution_options(synchronize_session=False)
    )


def fail(
    sessions: sessionmaker[Session],
    c: Claim,
    *,
    code: str,
    message: str,
    permanent: bool,
    max_attempts: int,
    backoff_seconds: float,
) -> str | None:
    """Record a failure: retry later with backoff, or end as failed. Returns the new status, None if the lease was lost."""
    with sessions() as session:
        if permanent or c.attempts >= max_attempts:
            if not permanent:
                message = f"processing failed {c.attempts} times; last error: {message}"
            ok = write(
                session, c, status=CallStatus.failed, error_code=code, error_message=message, lease_owner=None,
                lease_expires_at=None, processed_at=utcnow(),
            )
            status = CallStatus.failed.value
        else:
            delay = backoff_seconds * (2 ** (c.attempts - 1))
            ok = write(
                session, c, status=CallStatus.queued, error_code=code, error_message=message, lease_owner=None,
                lease_expires_at=None, next_attempt_at=utcnow() + timedelta(seconds=delay), enqueued_at=None,
            )
            status = CallStatus.queued.value
        if not ok:
            session.rollback()
            return None
        _close_run(session, c, "failed" if status == "failed" else "retry", f"{code}: {message}")
        session.commit()
        return status


def finish(session: Session, c: Claim, **values: Any) -> bool:
    """Mark the call done with its results, fenced, in the caller's transaction (which also writes
    the per-stage rows); the caller commits only when this returns True."""
    ok = write(session, c, status=CallStatus.done, error_code=None, error_message=None, lease_owner=None,
               lease_expires_at=None, processed_at=utcnow(), **values)
    if ok:
        _close_run(session, c, "done")
    return ok


def release_dead(sessions: sessionmaker[Session], *, max_attempts: int, now: datetime | None = None) -> int:
    """Calls whose worker died more than ``max_attempts`` times end as failed instead of being claimed
    again; the run each was in the middle of ends ``lost``. ``now`` as in :func:`claim`."""
    now = now or utcnow()
    dead = and_(Call.status.in_(ACTIVE), Call.lease_expires_at < now, Call.attempts >= max_attempts)
    with sessions() as session:
        ids = list(session.scalars(select(Call.id).where(dead).with_for_update(skip_locked=True)))
        if not ids:
            session.rollback()
            return 0
        n = _rowcount(session.execute(
            update(Call)
            .where(Call.id.in_(ids), dead)
            .values(
                status=CallStatus.failed, error_code="worker_lost", lease_owner=None, lease_expires_at=None, processed_at=now,
                error_message=f"a worker stopped in the middle of this call {max_attempts} times (killed, or out of memory?); "
                "check the worker logs, then retry the call",
            )
            .execution_options(synchronize_session=False)
        ))
        session.execute(
            update(CallRun)
            .where(CallRun.call_id.in_(ids), CallRun.outcome.is_(None))
            .values(outcome="lost", finished_at=now,
                    error=f"the worker stopped renewing its lease; after {max_attempts} attempts the call failed (worker_lost)")
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return n
