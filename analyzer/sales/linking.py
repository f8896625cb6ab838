"""Who is who across the CRM and the calls: CRM rows to managers by name, calls to leads and deals.

Pure: frames in, frames out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from analyzer.sales.imports import normalise_phone

# --- managers --------------------------------------------------------------------------------

def _name_key(name: Any) -> str | None:
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return None
    words = re.sub(r"[^\w\s]", " ", str(name).casefold().replace("ё", "е")).split()
    return " ".join(sorted(words)) or None


def attach_manager_ids(frame: pd.DataFrame, managers: pd.DataFrame, *, column: str = "manager") -> tuple[pd.DataFrame, list[str]]:
    """Add ``manager_id`` by the CRM's responsible-user name (or ``external_id``). Returns the unmatched names.

    Names match case- and word-order-insensitively (``Ляхов Игорь`` = ``игорь ляхов``), ``ё`` = ``е``.
    """
    lookup: dict[str, Any] = {}
    if "external_id" in managers:
        for ext, mid in zip(managers["external_id"], managers["manager_id"], strict=True):
            if ext is not None and not (isinstance(ext, float) and np.isnan(ext)):
                lookup[str(ext).strip().casefold()] = mid
    for name, mid in zip(managers["name"], managers["manager_id"], strict=True):
        k = _name_key(name)
        if k:
            lookup.setdefault(k, mid)
    names = frame[column]
    uniq = pd.unique(names.dropna().astype(str).to_numpy())
    mapping = {u: lookup.get(u.strip().casefold(), lookup.get(_name_key(u) or "")) for u in uniq}
    out = frame.copy()
    out["manager_id"] = names.map(mapping)
    unmatched = sorted(u for u, m in mapping.items() if m is None)
    return out, unmatched


# --- linking calls to leads and deals ----------------------------------------------------------

LINK_COLUMNS = ["call_id", "lead_id", "deal_id", "rule"]
_E164 = re.compile(r"^\+\d{11,15}$")
_NAT = np.iinfo(np.int64).min


def _shared_codes(parts: Sequence[pd.Series], normalise: Callable[[Any], str | None]) -> tuple[list[np.ndarray], np.ndarray]:
    """One code space over several columns: the values normalised (each distinct raw value once),
    then numbered; -1 where missing or not valid. Returns (codes per column, value of each code)."""
    raw = np.concatenate([np.asarray(p.to_numpy(dtype=object, na_value=None), dtype=object) for p in parts]) \
        if parts else np.empty(0, dtype=object)
    codes, uniq = pd.factorize(raw, use_na_sentinel=True)
    norm = np.array([normalise(u) for u in uniq], dtype=object)
    ncodes, values = pd.factorize(norm, use_na_sentinel=True)
    ncodes = np.append(np.asarray(ncodes, dtype=np.int64), -1)  # code -1 stays -1
    final = ncodes[np.asarray(codes, dtype=np.int64)]
    bounds = np.cumsum([0, *(len(p) for p in parts)])
    return [final[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)], np.asarray(values, dtype=object)


def _phone_or_none(value: Any, default_country: str) -> str | None:
    text = str(value)
    if _E164.match(text):
        return text
    try:
        return normalise_phone(text, default_country=default_country)
    except ValueError:
        return None


def _id_or_none(value: Any) -> str | None:
    text = str(value).strip()
    return text or None


def _utc_ns(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A time column as int64 UTC nanoseconds (``_NAT`` where missing)."""
    if name not in frame.columns:
        return np.full(len(frame), _NAT, dtype=np.int64)
    s = frame[name]
    s = s.dt.tz_convert("UTC") if isinstance(s.dtype, pd.DatetimeTZDtype) else pd.to_datetime(s, utc=True)
    return np.asarray(s.astype("datetime64[ns, UTC]").array.asi8, dtype=np.int64)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame.columns else pd.Series(None, index=frame.index, dtype=object)


def link_calls(calls: pd.DataFrame, leads: pd.DataFrame, deals: pd.DataFrame, *,
               before: pd.Timedelta = pd.Timedelta(minutes=30), lead_window: pd.Timedelta = pd.Timedelta(days=30),
               deal_grace: pd.Timedelta = pd.Timedelta(days=1), default_country: str = "7") -> pd.DataFrame:
    """Tie each call to a lead and a deal. Returns ``LINK_COLUMNS``: ``call_id, lead_id, deal_id, rule``.

    The rule, first match wins:

    1. ``rule="deal_id"``: the call's ``crm_deal_id`` names a known deal: that deal and its lead.
    2. ``rule="lead_id"``: the call's ``crm_lead_id`` names a known lead (or a deal's ``lead_id``):
       that lead, and its deal (below).
    3. ``rule="phone"``: by the client's normalised phone. The lead: the latest lead of that phone
       created from ``lead_window`` before the call to ``before`` after it (an inbound call
       usually creates its lead a moment later). The deal: the latest deal of that phone created
       no later than ``before`` after the call and not closed more than ``deal_grace`` before it
       (the deal open at the time of the call); failing that, the deal of the lead.
    4. otherwise ``lead_id``, ``deal_id`` and ``rule`` are None.

    The deal of a lead is the latest of its deals created no later than ``before`` after the call,
    else the first one created after the call (a qualification call belongs to the deal it led to).
    An older deal of the same phone that is still open is not looked at when a newer one closed
    before the call. Ids come out as strings.
    """
    n = len(calls)
    t_call = _utc_ns(calls, "started_at")
    has_time = t_call != _NAT
    d_created, d_closed = _utc_ns(deals, "created_at"), _utc_ns(deals, "closed_at")
    shift, grace, window = before.value, deal_grace.value, lead_window.value

    # one code space each for phones, lead ids and deal ids across the frames (strings hashed once)
    (p_call, p_deal, p_lead), _ = _shared_codes(
        [_column(calls, "client_phone"), _column(deals, "client_phone"), _column(leads, "client_phone")],
        lambda v: _phone_or_none(v, default_country))
    (l_lead, l_deal, l_call), lead_values = _shared_codes(
        [_column(leads, "lead_id"), _column(deals, "lead_id"), _column(calls, "crm_lead_id")], _id_or_none)
    (d_deal, d_call), deal_values = _shared_codes([_column(deals, "deal_id"), _column(calls, "crm_deal_id")], _id_or_none)
    known_lead = np.zeros(len(lead_values) + 1, dtype=bool)
    known_lead[l_lead[l_lead >= 0]] = True
    known_lead[l_deal[l_deal >= 0]] = True
    deal_row = np.full(len(deal_values) + 1, -1, dtype=np.int64)  # first deal row of each deal id
    rows = np.flatnonzero(d_deal >= 0)[::-1]
    deal_row[d_deal[rows]] = rows

    # 1. the deal named by the call
    deal = deal_row[d_call]
    by_deal = deal >= 0
    lead = np.where(by_deal, l_deal[np.maximum(deal, 0)], -1) if len(deals) else np.full(n, -1, dtype=np.int64)
    # 2. the lead named by the call
    by_lead = ~by_deal & (l_call >= 0) & known_lead[np.maximum(l_call, 0)]
    lead = np.where(by_lead, l_call, lead)

    # 3a. the lead by phone
    need = (lead < 0) & (p_call >= 0) & has_time
    if need.any() and len(leads):
        ok = (p_lead >= 0) & (_utc_ns(leads, "created_at") != _NAT)
        hit, row = _asof(t_call[need], p_call[need], _utc_ns(leads, "created_at")[ok] - shift, p_lead[ok],
                         tolerance=window + shift)
        rows = np.flatnonzero(ok)
        sel = np.flatnonzero(need)[hit]
        lead[sel] = l_lead[rows[row]]
    # 3b. the deal open at the call, by phone
    need = (deal < 0) & (p_call >= 0) & has_time & ~by_lead
    if need.any() and len(deals):
        ok = (p_deal >= 0) & (d_created != _NAT)
        hit, row = _asof(t_call[need], p_call[need], d_created[ok] - shift, p_deal[ok])
        rows = np.flatnonzero(ok)[row]
        sel = np.flatnonzero(need)[hit]
        open_then = (d_closed[rows] == _NAT) | (t_call[sel] <= d_closed[rows] + grace)
        sel, rows = sel[open_then], rows[open_then]
        deal[sel] = rows
        fill = lead[sel] < 0
        lead[sel[fill]] = l_deal[rows[fill]]
    # the deal of the lead: backward, then forward
    need = (deal < 0) & (lead >= 0) & has_time
    if need.any() and len(deals):
        ok = (l_deal >= 0) & (d_created != _NAT)
        rows_ok = np.flatnonzero(ok)
        for direction in ("backward", "forward"):
            sel_all = np.flatnonzero(need)
            if not len(sel_all):
                break
            hit, row = _asof(t_call[sel_all], lead[sel_all], d_created[ok] - shift, l_deal[ok], direction=direction)
            deal[sel_all[hit]] = rows_ok[row]
            need[sel_all[hit]] = False

    rule = np.full(n, None, dtype=object)
    rule[(lead >= 0) | (deal >= 0)] = "phone"
    rule[by_lead] = "lead_id"
    rule[by_deal] = "deal_id"
    lead_out = np.full(n, None, dtype=object)
    lead_out[lead >= 0] = np.asarray(lead_values, dtype=object)[lead[lead >= 0]]
    deal_out = np.full(n, None, dtype=object)
    deal_out[deal >= 0] = deal_values[d_deal[deal[deal >= 0]]]
    return pd.DataFrame({"call_id": _column(calls, "call_id").to_numpy(), "lead_id": pd.Series(lead_out, dtype=object),
                         "deal_id": pd.Series(deal_out, dtype=object), "rule": pd.Series(rule, dtype=object)})


def _asof(t_left: np.ndarray, key_left: np.ndarray, t_right: np.ndarray, key_right: np.ndarray, *,
          direction: Literal["backward", "forward"] = "backward", tolerance: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each left (time, key): the right row with the same key and the latest time <= the left's
    (or the earliest >= for forward), within ``tolerance`` ns. Returns (left rows hit, right rows)."""
    left = pd.DataFrame({"t": t_left, "k": key_left, "i": np.arange(len(t_left))}).sort_values("t", kind="stable")
    right = pd.DataFrame({"t": t_right, "k": key_right, "j": np.arange(len(t_right))}).sort_values("t", kind="stable")
    merged = pd.merge_asof(left, right, on="t", by="k", direction=direction,
                           tolerance=tolerance)
    found = merged["j"].notna().to_numpy()
    return merged["i"].to_numpy()[found], merged["j"].to_numpy()[found].astype(np.int64)
