"""Sign-in throttling: failed sign-ins counted per username and per address, in the database.

A key (``user:<username>`` or ``addr:<IP address>``) that failed ``limit`` times within the window
is locked for ``lock_seconds``, doubled with every further failure up to ``lock_max_seconds``. A
locked key is refused before any password is hashed, whether the username exists or not (so the
answer says nothing about which usernames exist, and a guessing run costs the server nothing once
locked). A successful sign-in forgets the username's failures, not the address's (an attacker who
has one account of their own must not reset the count of the address they guess from).

Kept in the database the service already runs rather than in memory (or a rate-limit library's
store): every API process and machine sees the same counts, with no new server to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.core.config import ServiceSettings
from api.models import SignInFailures


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    user_failures: int = 5
    """failures of one username before it is locked"""
    address_failures: int = 30
    """failures from one address (any usernames) before it is locked"""
    lock_seconds: float = 60
    lock_max_seconds: float = 900
    window_seconds: float = 900
    """failures older than this (and not locked) are forgotten"""

    @classmethod
    def of(cls, settings: ServiceSettings) -> ThrottlePolicy:
        return cls(user_failures=settings.signin_user_failures, address_failures=settings.signin_address_failures,
                   lock_seconds=settings.signin_lock_seconds, lock_max_seconds=settings.signin_lock_max_seconds,
                   window_seconds=settings.signin_window_seconds)


def keys(username: str, address: str | None) -> list[str]:
    """The throttle keys of a sign-in: the username as typed (casefolded), and the address if known."""
    found = ["user:" + username.strip().casefold()[:280]]
    if address:
        found.append("addr:" + address[:280])
    return found


def locked_until(session: Session, keys: list[str], *, now: datetime) -> datetime | None:
    """The end of the longest lock in force on any of ``keys``, or None."""
    ends = [t for t in session.scalars(select(SignInFailures.locked_until).where(SignInFailures.key.in_(keys)))
            if t is not None and t > now]
    return max(ends) if ends else None


def record_failure(session: Session, keys: list[str], *, policy: ThrottlePolicy, now: datetime) -> None:
    """Count a failed sign-in against every key (the caller commits)."""
    for key in keys:
        limit = policy.user_failures if key.startswith("user:") else policy.address_failures
        for attempt in range(2):  # another process may insert the same key at the same moment: once more
            try:
                with session.begin_nested():
                    _count(session, key, limit=limit, policy=policy, now=now)
                break
            except IntegrityError:
                if attempt:
                    raise


def _count(session: Session, key: str, *, limit: int, policy: ThrottlePolicy, now: datetime) -> None:
    row = session.get(SignInFailures, key, with_for_update=True, populate_existing=True)
    if row is None:
        row = SignInFailures(key=key, failures=0, first_at=now)
        session.add(row)
    elif row.first_at < now - timedelta(seconds=policy.window_seconds) and (row.locked_until is None or row.locked_until <= now):
        row.failures, row.first_at, row.locked_until = 0, now, None
    row.failures += 1
    if row.failures >= limit:
        seconds = min(policy.lock_seconds * 2 ** min(row.failures - limit, 30), policy.lock_max_seconds)
        row.locked_until = now + timedelta(seconds=seconds)
    session.flush()


def forget(session: Session, key: str) -> None:
    """Forget a key's failures (a successful sign-in, a new password); the caller commits."""
    row = session.get(SignInFailures, key)
    if row is not None:
        session.delete(row)
