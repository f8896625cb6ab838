"""The call list's filters, counts and sorting, from columns kept in memory.

A quality controller's or head of sales's list asks, for a quarter of calls, which ones missed a
stage or left an objection unhandled, how many there are, and which 50 come first by date or by
score. A database answers that by reading every matching call (and every matching verdict row) for
the count, and often again to sort them: 10-20 ms of CPU a request at 100,000 calls, too much
for a few dozen people on two cores. This index keeps, per process, the few columns those
filters and sorts read (manager, started_at, status, score, uncertain count, and which stages were
missed and which objection types left unhandled) as arrays, one slot per call id: a filter is a
few vectorised comparisons, the count a sum, the page a slice of a kept sort order. The page's
rows themselves are then read from the database by id, so what a row says is always current.

It is never behind what this process wrote, and it follows other processes (workers, other API
processes, other machines) by the calls' ``updated_at``, which every write to a call or to its
verdicts moves (``result_values`` sets it): before answering (at most every ``PROBE_EVERY``,
0.05 s), one indexed query asks for the newest ``updated_at``, and when it moved, the calls changed
since (less a margin, for transactions that commit a little after they stamped their rows) are
read again. The rows of a page it sent before are sent again as they were while the call's
``updated_at`` and the managers' names are unchanged, so a list of calls that did not change
needs no query at all; managers' names and teams are read again every ``NAMES_TTL`` (5 s). For a
transaction that commits long after it stamped its rows, the whole index is rebuilt in the
background every few minutes. A filter it does not hold (the PBX ``external_id``, a unique
lookup the database's index answers at once) goes to the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from api.core.db import PerDatabase
from api.models import Call, CallObjection, CallStage, CallStatus, Manager

if TYPE_CHECKING:
    from api.calls.service import CallFilters

log = logging.getLogger(__name__)
_STATUS_CODES = {s: i for i, s in enumerate(CallStatus)}
_NAT = np.datetime64("NaT", "us")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NEWEST = select(func.max(Call.updated_at))
_COLUMNS = (Call.id, Call.manager_id, Call.started_at, Call.status, Call.score, Call.uncertain, Call.updated_at)
_MANAGERS = select(Manager.id, Manager.name, Manager.team_id)
NAMES_TTL = 5.0  # seconds: how long a manager's new name or team may take to show in another process
PROBE_EVERY = 0.05  # seconds: how often the newest updated_at is asked for (so another process's change shows within it)
MAX_KEPT_ROWS = 50_000
_STEP = 8192  # slots of a sort order read at a time when the page is near its start


@dataclass
class _Arrays:
    """One slot per call id (slot = id); ``exists`` says which ids are calls."""

    exists: np.ndarray
    manager: np.ndarray  # int64, -1 when the call has no manager
    started: np.ndarray  # datetime64[us], NaT when unknown
    status: np.ndarray  # int8 code of CallStatus
    score: np.ndarray  # float64, NaN when unscored
    uncertain: np.ndarray  # int32
    updated: np.ndarray  # int64 microseconds: the call's updated_at, which says whether a kept row is current
    missed_stage: dict[str, np.ndarray]  # stage id -> bool per slot
    unhandled: dict[str, np.ndarray]  # objection type -> bool per slot

    @classmethod
    def empty(cls, capacity: int) -> _Arrays:
        return cls(np.zeros(capacity, bool), np.full(capacity, -1, np.int64), np.full(capacity, _NAT),
                   np.zeros(capacity, np.int8), np.full(capacity, np.nan), np.zeros(capacity, np.int32),
                   np.zeros(capacity, np.int64), {}, {})

    @property
    def capacity(self) -> int:
        return len(self.exists)

    def grow(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        new = max(needed, self.capacity * 2, 1024)
        bigger = _Arrays.empty(new)
        for name in ("exists", "manager", "started", "status", "score", "uncertain", "updated"):
            getattr(bigger, name)[: self.capacity] = getattr(self, name)
        for src, dst in ((self.missed_stage, bigger.missed_stage), (self.unhandled, bigger.unhandled)):
            for key, column in src.items():
                dst[key] = np.zeros(new, bool)
                dst[key][: self.capacity] = column
        self.__dict__.update(bigger.__dict__)

    def flag(self, table: dict[str, np.ndarray], key: str) -> np.ndarray:
        column = table.get(key)
        if column is None:
            column = table[key] = np.zeros(self.capacity, bool)
        return column


class CallListIndex:
    """See the module. One per database engine and process; thread-safe."""

    def __init__(self, engine: Engine, *, margin: float = 10.0, rebuild_every: float = 300.0):
        self.engine = engine
        self.margin = timedelta(seconds=margin)
        self.rebuild_every = rebuild_every
        # the database's NULLs sort first ascending on SQLite, last on PostgreSQL: the kept orders do
        # the same, so a page is the one the database would give
        self.nulls_first = engine.dialect.name == "sqlite"
        self._lock = threading.RLock()
        self._a: _Arrays | None = None
        self._watermark: datetime | None = None  # the newest updated_at read
        self._recent_until = 0.0  # re-read the margin until then (monotonic), after a change
        self._window_read_at = 0.0
        self._probed_at = -PROBE_EVERY
        self._poked = False  # this process committed since the last look
        self._built_at = 0.0
        self._orders: dict[str, np.ndarray] = {}
        self._member_masks: dict[frozenset[int], np.ndarray] = {}
        self._rebuilding = False
        # list rows as sent (JSON), by call id, with the updated_at and manager names they were made from
        self._kept_rows: dict[int, tuple[int, int, bytes]] = {}
        self._managers: dict[int, tuple[str, int | None]] | None = None
        self._names_version = 0
        self._names_read_at = -NAMES_TTL

    # -- answering -------------------------------------------------------------------------------

    def page(self, session: Session, filters: CallFilters, visible: AbstractSet[int] | None, *, limit: int, offset: int,
             order: str) -> tuple[int, list[int]] | None:
        """How many calls match and the ids of the page in order; None when the filter is not held here."""
        if filters.external_id is not None:
            return None
        with self._lock:
            if self._a is None:  # read in the background; until then the database answers
                self._start_rebuild()
                return None
            self._refresh(session)
            a = self._a
            assert a is not None
            team_managers = None
            if filters.team_id is not None:
                team_managers = {m for m, (_, team) in self._read_managers(session).items() if team == filters.team_id}
            mask = a.exists.copy()
            for allowed in (visible, team_managers):
                if allowed is not None:
                    mask &= self._members(allowed)
            if filters.manager_id is not None:
                mask &= a.manager == filters.manager_id
            if filters.date_from is not None:
                mask &= a.started >= _np_time(filters.date_from)
            if filters.date_to is not None:
                mask &= a.started < _np_time(filters.date_to)
            if filters.status is not None:
                mask &= a.status == _STATUS_CODES[CallStatus(filters.status)]
            if filters.score_min is not None:
                mask &= a.score >= filters.score_min
            if filters.score_max is not None:
                mask &= a.score <= filters.score_max
            for table, key in ((a.missed_stage, filters.stage_missed), (a.unhandled, filters.objection_unhandled)):
                if key:
                    column = table.get(key)
                    mask &= column if column is not None else False
            if filters.uncertain is True:
                mask &= a.uncertain > 0
            elif filters.uncertain is False:
                mask &= a.uncertain == 0
            total = int(np.count_nonzero(mask))
            if offset >= total:
                return total, []
            ids = _page_of(self._order(order.lstrip("-")), mask, total, offset=offset, limit=limit,
                           descending=order.startswith("-"))
            return total, ids.tolist()

    def kept_rows(self, session: Session, ids: list[int]) -> list[bytes | None]:
        """The list rows of these calls as last sent, where still current: the call's updated_at is
        the one the index holds (as fresh as the page's ids) and no manager was renamed since (other
        processes' renames are seen within ``NAMES_TTL``); None for each row to read again."""
        with self._lock:
            a = self._a
            if a is None:
                return [None] * len(ids)
            self._read_managers(session)
            out: list[bytes | None] = []
            for i in ids:
                kept = self._kept_rows.get(i)
                ok = kept is not None and i < a.capacity and kept[0] == a.updated[i] and kept[1] == self._names_version
                out.append(kept[2] if ok and kept is not None else None)
            return out

    def _read_managers(self, session: Session) -> dict[int, tuple[str, int | None]]:
        """Every manager's name and team, read again when ``NAMES_TTL`` has passed or this process
        committed (a rename or a move to another team here shows at once, elsewhere within the TTL)."""
        now = time.monotonic()
        if self._managers is None or now - self._names_read_at >= NAMES_TTL:
            managers = {m: (name, team) for m, name, team in session.execute(_MANAGERS)}
            if managers != self._managers:
                self._managers, self._names_version = managers, self._names_version + 1
            self._names_read_at = now
        return self._managers

    def keep_rows(self, rows: list[tuple[int, bytes]]) -> None:
        """Remembers list rows just read (``kept_rows`` checked the names' version this request)."""
        with self._lock:
            a = self._a
            if a is None:
                return
            if len(self._kept_rows) + len(rows) > MAX_KEPT_ROWS:
                self._kept_rows.clear()
            for i, body in rows:
                if i < a.capacity:
                    self._kept_rows[i] = (int(a.updated[i]), self._names_version, body)

    def _members(self, allowed: AbstractSet[int]) -> np.ndarray:
        """Which slots belong to these managers; kept for the last few sets (a head's teams, a team)
        until a call comes or changes manager."""
        key = frozenset(allowed)
        kept = self._member_masks.get(key)
        if kept is None:
            assert self._a is not None
            if len(self._member_masks) > 64:
                self._member_masks.clear()
            kept = self._member_masks[key] = _member(self._a.manager, key)
        return kept

    def _order(self, key: str) -> np.ndarray:
        kept = self._orders.get(key)
        if kept is None:
            assert self._a is not None
            kept = self._orders[key] = _sorted(self._a, key, self.nulls_first)
        return kept

    # -- keeping up ------------------------------------------------------------------------------

    def changed_here(self) -> None:
        """A transaction of this process committed: look at the latest changes at the next question,
        even if its rows' stamps are older than the newest seen, and the managers' names (a rename here
        shows at once)."""
        self._poked = True
        self._names_read_at = -NAMES_TTL

    def _refresh(self, session: Session) -> None:
        now = time.monotonic()
        if now - self._built_at > self.rebuild_every:
            self._start_rebuild()
        if not self._poked and now - self._probed_at < PROBE_EVERY:
            return  # asked a moment ago: a list of the same moment needs no query at all
        self._probed_at = now
        newest = session.scalar(_NEWEST)
        moved = newest is not None and (self._watermark is None or newest > self._watermark)
        # after a change, transactions stamped a little before the newest may still be committing:
        # the margin is looked at again for a while, a few times a second at most
        again = now < self._recent_until and now - self._window_read_at >= 0.2
        if not (moved or self._poked or again):
            return
        self._poked = False
        self._window_read_at = now
        since = (self._watermark or newest or datetime.now(UTC)) - self.margin
        self._apply(session, since)
        if moved:
            self._watermark = newest
            self._recent_until = now + self.margin.total_seconds()

    def _apply(self, session: Session, since: datetime) -> None:
        rows = session.execute(
            select(*_COLUMNS).where(Call.updated_at >= since)
        ).all()
        if not rows:
            return
        a = self._a
        assert a is not None
        ids = [r[0] for r in rows]
        known = [i for i in ids if i < a.capacity]
        before = (a.exists[known].copy(), a.started[known].view(np.int64).copy(), a.score[known].copy(), a.manager[known].copy())
        self._put(a, rows)
        for table in (a.missed_stage, a.unhandled):
            for column in table.values():
                column[ids] = False
        self._flags(session, a, ids)
        # the kept sort orders hold while no call came, went or moved in them
        same = (len(known) == len(ids) and np.array_equal(before[0], a.exists[known])
                and np.array_equal(before[1], a.started[known].view(np.int64))
                and np.array_equal(before[2], a.score[known], equal_nan=True))
        if not same:
            self._orders.clear()
        if not (len(known) == len(ids) and np.array_equal(before[3], a.manager[known])):
            self._member_masks.clear()

    def _put(self, a: _Arrays, rows: Sequence[Any]) -> None:
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        a.grow(int(ids.max()) + 1)
        a.exists[ids] = True
        a.manager[ids] = [r[1] if r[1] is not None else -1 for r in rows]
        a.started[ids] = [_np_time(r[2]) if r[2] is not None else _NAT for r in rows]
        a.status[ids] = [_STATUS_CODES[CallStatus(r[3])] for r in rows]
        a.score[ids] = [r[4] if r[4] is not None else np.nan for r in rows]
        a.uncertain[ids] = [r[5] or 0 for r in rows]
        a.updated[ids] = [_micros(r[6]) for r in rows]

    def _flags(self, session: Session, a: _Arrays, ids: list[int] | None) -> None:
        """Which of the calls ``ids`` (all when None) missed which stage or left which objection unhandled."""
        for model, key, table in ((CallStage, CallStage.stage_id, a.missed_stage), (CallObjection, CallObjection.type, a.unhandled)):
            for chunk in _chunks(ids):
                query = select(model.call_id, key).where(model.status == "missed")
                if chunk is not None:
                    query = query.where(model.call_id.in_(chunk))
                by_key: dict[str, list[int]] = {}
                for call_id, k in session.execute(query):
                    by_key.setdefault(k, []).append(call_id)
                for k, members in by_key.items():
                    a.flag(table, k)[members] = True

    def _start_rebuild(self) -> None:
        if not self._rebuilding:
            self._rebuilding = True
            threading.Thread(target=self._rebuild_in_background, name="callqa-list-index", daemon=True).start()

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Reads the index now if it is not yet (tests, and a benchmark's warm-up); True when ready."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._a is None:
                self._start_rebuild()
        while self._a is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._a is not None

    def _read_all(self, session: Session) -> tuple[_Arrays, datetime | None]:
        newest = session.scalar(select(func.max(Call.updated_at)))
        top = session.scalar(select(func.max(Call.id))) or 0
        a = _Arrays.empty(top + 1024)
        rows = session.execute(select(*_COLUMNS)).all()
        if rows:
            self._put(a, rows)
        self._flags(session, a, None)
        return a, newest

    def _rebuild_in_background(self) -> None:
        try:
            with Session(self.engine) as session:
                fresh, newest = self._read_all(session)
            orders = {key: _sorted(fresh, key, self.nulls_first) for key in ("started_at", "score", "created_at")}
            with self._lock:
                # a change committed while it was read is newer than its newest stamp, or within the
                # margin of it, which is looked at again at the next questions
                self._a, self._orders, self._watermark = fresh, orders, newest
                self._member_masks = {}
                self._recent_until = time.monotonic() + self.margin.total_seconds()
                self._built_at = time.monotonic()
        except Exception:  # the database answers meanwhile; the next list tries again
            log.exception("the call list index could not be read")
            with self._lock:
                self._built_at = time.monotonic()
        finally:
            self._rebuilding = False


def _sorted(a: _Arrays, key: str, nulls_first: bool) -> np.ndarray:
    """Slots of every call sorted ascending by ``key`` (started_at, score or created_at = id), ties
    by id: the descending order is this one reversed, as the database's (key desc, id desc)."""
    slots = np.flatnonzero(a.exists)
    if key == "created_at":
        return slots
    if key == "started_at":
        missing = np.isnat(a.started[slots])
        values: np.ndarray = a.started[slots].view(np.int64)
    else:
        values = a.score[slots]
        missing = np.isnan(values)
    # NULL first or last, then the value, then the id (lexsort's last key is the first)
    return slots[np.lexsort((slots, np.where(missing, 0, values), missing != nulls_first))]


def _page_of(ascending: np.ndarray, mask: np.ndarray, total: int, *, offset: int, limit: int,
             descending: bool) -> np.ndarray:
    """The slots of one page: the ``offset``-th to ``offset + limit``-th matching slot of the order.
    When matches are common the page is found near the end it starts from, so the order is read in
    steps from there instead of all of it."""
    want = offset + limit
    n = len(ascending)
    step = _STEP
    if total and want * n / total < n / 2:
        found: list[np.ndarray] = []
        have = 0
        for start in range(0, n, step):
            segment = ascending[n - start - step if n - start - step > 0 else 0: n - start] if descending \
                else ascending[start: start + step]
            hits = segment[mask[segment]]
            found.append(hits[::-1] if descending else hits)
            have += len(hits)
            if have >= want:
                break
        return np.concatenate(found)[offset: want]
    hits = ascending[mask[ascending]]
    if descending:
        end = len(hits) - offset
        return hits[max(0, end - limit): end][::-1]
    return hits[offset: want]


def _micros(value: datetime | None) -> int:
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1)


def _np_time(value: datetime) -> np.datetime64:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return np.datetime64(value.astimezone(UTC).replace(tzinfo=None), "us")


def _member(managers: np.ndarray, allowed: Iterable[int]) -> np.ndarray:
    allowed = [m for m in allowed if m >= 0]
    if not allowed:
        return np.zeros(len(managers), bool)
    lookup = np.zeros(max(int(managers.max(initial=0)), max(allowed)) + 2, bool)
    lookup[allowed] = True
    return lookup[managers]  # -1 (no manager) reads the last slot, which is never allowed


def _chunks(ids: list[int] | None, size: int = 5000) -> Iterable[list[int] | None]:
    if ids is None:
        yield None
        return
    for i in range(0, len(ids), size):
        yield ids[i: i + size]


# -- one index per engine ----------------------------------------------------------------------

list_indexes: PerDatabase[CallListIndex] = PerDatabase()


def enable_list_index(engine: Engine, *, also: Engine | None = None, **options: Any) -> CallListIndex:
    """Lists on sessions of ``engine`` (and of ``also``, the same database with other options) are
    answered from a :class:`CallListIndex` (the app does this)."""
    return list_indexes.enable(engine, lambda: CallListIndex(engine, **options), also=also)


def list_index(session: Session) -> CallListIndex | None:
    return list_indexes.of(session)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    index = list_index(session)
    if index is not None:
        index.changed_here()
