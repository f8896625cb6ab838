"""Does following the script go with winning? Win rates of deals with a script part done vs missed,
with score intervals for proportions and their differences (Wilson; Newcombe's hybrid score).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyzer.sales.frames import prepare
from analyzer.sales.grouping import By, in_period, ratio
from analyzer.sales.periods import Period

Z95 = 1.959963984540054
"""The normal quantile of a two-sided 95% interval."""


def wilson_interval(successes: np.ndarray, n: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n); NaN for n = 0."""
    n = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.asarray(successes, dtype="float64") / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_interval(x1: np.ndarray, n1: np.ndarray, x2: np.ndarray, n2: np.ndarray,
                      z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval (method 10) for p1 - p2 from the two Wilson intervals:
    d - sqrt((p1-l1)² + (u2-p2)²) .. d + sqrt((u1-p1)² + (p2-l2)²)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.asarray(x1, dtype="float64") / np.asarray(n1, dtype="float64")
        p2 = np.asarray(x2, dtype="float64") / np.asarray(n2, dtype="float64")
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    return d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def quality_vs_outcome(calls: pd.DataFrame, call_stages: pd.DataFrame, call_objections: pd.DataFrame,
                       deals: pd.DataFrame, links: pd.DataFrame, *, period: Period, by: By = "all",
                       managers: pd.DataFrame | None = None, min_n: int = 20, z: float = Z95) -> pd.DataFrame:
    """Which script parts go with winning: win rate of deals where a stage was done vs missed.

    Deals: won or lost, closed in the period; their calls: linked by ``links`` and started no later
    than the close. Per deal and script stage: **done** if the stage passed in at least one of its
    calls; **missed** if it was decided in some call and passed in none; otherwise (only uncertain,
    no calls) the deal is left out. Per deal and objection type (only deals where the client raised
    it): **done** (handled) if every decided occurrence was handled; **missed** if one was not.

    Columns: ``factor`` (stage|objection), ``name``, ``deals_done``, ``won_done``, ``win_rate_done``,
    ``deals_missed``, ``won_missed``, ``win_rate_missed``, ``difference`` = win_rate_done -
    win_rate_missed, ``ci_low``/``ci_high`` (Newcombe hybrid score interval, 95% by default),
    ``verdict``: ``not_enough_data`` when either side has fewer than ``min_n`` deals, else ``helps``
    (interval above 0), ``hurts`` (below 0), ``no_clear_effect`` (interval holds 0).
    """
    calls, deals, links = prepare("calls", calls), prepare("deals", deals), prepare("links", links)
    closed, keys = in_period(deals[deals["status"].isin(["won", "lost"])], "closed_at", period, by, managers, None)
    closed = closed.drop_duplicates("deal_id")
    dpos = pd.Index(closed["deal_id"])
    lk = links[links["deal_id"].notna()]
    lk = lk.assign(_d=dpos.get_indexer(lk["deal_id"]))
    lk = lk[lk["_d"] >= 0]
    cpos = pd.Index(calls["call_id"]).get_indexer(lk["call_id"])
    ok = cpos >= 0
    lk, cpos = lk[ok], cpos[ok]
    started = calls["started_at"].array.asi8[cpos]
    before_close = (started != np.iinfo(np.int64).min) & (started <= closed["closed_at"].array.asi8[lk["_d"].to_numpy()])
    lk = lk[before_close]
    call_deal = pd.Series(lk["_d"].to_numpy(), index=lk["call_id"].to_numpy())
    call_deal = call_deal[~call_deal.index.duplicated()]
    won = closed["status"].eq("won").to_numpy()
    gcodes, guniq = pd.factorize(closed[keys[0]], use_na_sentinel=False)
    parts = []
    for factor, frame, item, rule in (("stage", prepare("call_stages", call_stages), "stage_id", "any"),
                                      ("objection", prepare("call_objections", call_objections), "type", "all")):
        pos = pd.Index(call_deal.index).get_indexer(frame["call_id"])
        hit = pos >= 0
        d = call_deal.to_numpy()[pos[hit]]
        icodes, iuniq = pd.factorize(frame[item][hit], use_na_sentinel=False)
        st = frame["status"][hit]
        ni = max(len(iuniq), 1)
        cell = d * ni + icodes
        size = len(closed) * ni
        passed = np.bincount(cell, weights=st.eq("passed").to_numpy(), minlength=size) > 0
        missed = np.bincount(cell, weights=st.eq("missed").to_numpy(), minlength=size) > 0
        done = passed if rule == "any" else passed & ~missed
        miss = missed & ~passed if rule == "any" else missed
        deal_of = np.repeat(np.arange(len(closed)), ni)
        item_of = np.tile(np.arange(ni), len(closed))
        g_of = gcodes[deal_of]
        w = won[deal_of]
        gi = g_of * ni + item_of
        nsz = max(len(guniq), 1) * ni
        res = pd.DataFrame({
            "deals_done": np.bincount(gi, weights=done, minlength=nsz), "won_done": np.bincount(gi, weights=done & w, minlength=nsz),
            "deals_missed": np.bincount(gi, weights=miss, minlength=nsz), "won_missed": np.bincount(gi, weights=miss & w, minlength=nsz),
        })
        res[keys[0]] = np.asarray(guniq, dtype=object)[np.arange(nsz) // ni] if len(guniq) else None
        res["name"] = np.asarray(iuniq, dtype=object)[np.arange(nsz) % ni] if len(iuniq) else None
        res["factor"] = factor
        parts.append(res[(res["deals_done"] + res["deals_missed"]) > 0] if len(iuniq) else res.iloc[0:0])
    out = pd.concat(parts, ignore_index=True)
    for c in ("deals_done", "won_done", "deals_missed", "won_missed"):
        out[c] = out[c].astype("int64")
    out["win_rate_done"] = ratio(out["won_done"], out["deals_done"])
    out["win_rate_missed"] = ratio(out["won_missed"], out["deals_missed"])
    out["difference"] = out["win_rate_done"] - out["win_rate_missed"]
    lo, hi = newcombe_interval(out["won_done"].to_numpy(), out["deals_done"].to_numpy(), out["won_missed"].to_numpy(),
                               out["deals_missed"].to_numpy(), z)
    out["ci_low"], out["ci_high"] = lo, hi
    small = np.minimum(out["deals_done"], out["deals_missed"]) < min_n
    out["verdict"] = np.select([small, out["ci_low"] > 0, out["ci_high"] < 0],
                               ["not_enough_data", "helps", "hurts"], "no_clear_effect")
    out = out[[keys[0], "factor", "name", "deals_done", "won_done", "win_rate_done", "deals_missed", "won_missed",
               "win_rate_missed", "difference", "ci_low", "ci_high", "verdict"]]
    out = out.sort_values([keys[0], "factor", "name"], key=lambda s: s.astype(str), kind="stable").reset_index(drop=True)
    for c in ("win_rate_done", "win_rate_missed", "difference", "ci_low", "ci_high"):
        out[c] = out[c].astype("float64").replace([np.inf, -np.inf], np.nan).astype("Float64")
    for c in ("deals_done", "won_done", "deals_missed", "won_missed"):
        out[c] = out[c].astype("Int64")
    return out
