"""What a password-guessing run costs the people using the service, with and without throttling.

    python -m benchmarks.signin_attack [--seconds 15] [--attackers 8] [--rate 10] [--throttling on off] [--json]

For each setting of throttling: a fresh ``callqa serve --workers 0 --no-access-log`` on SQLite with
the first administrator, then two phases of ``--seconds`` each, both under an open-loop load of
``--rate`` call-list requests a second signed in (requests leave on schedule whatever the answers
do; latency counts from the scheduled moment):

1. quiet: the list load alone;
2. attack: beside it, ``--attackers`` keep-alive connections guess the administrator's password as
   fast as they are answered (each answer a 401, or a 429 once the username and the address are
   locked).

Reports the list's p50/p95/p99 in both phases, the guesses answered per second and how many of
them the server had to hash (401) or refused at once (429), and the server's CPU. "off" raises the
limits out of reach (5,000 failures of a username, 100,000 of an address), as before throttling.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks.api_latency import ADMIN_PASSWORD, cpu_seconds, free_port, start_server, stop_server
from benchmarks.common import machine


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


def _list_load(base: str, token: str, *, rate: float, seconds: float) -> list[float]:
    """Open loop: one GET /api/v1/calls every 1/rate s, on schedule; latency from the scheduled moment."""
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def one(due: float) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        r = client.get("/api/v1/calls", params={"limit": 50})
        r.raise_for_status()
        with lock:
            latencies.append(time.monotonic() - due)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        n = 0
        while (due := start + n / rate) < start + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            pool.submit(one, due)
            n += 1
    return latencies


def _guess(base: str, stop: threading.Event, counts: dict[int, int], lock: threading.Lock) -> None:
    """Guess as fast as answered; a connection the server drops is opened again (counted as status 0)."""
    i = 0
    while not stop.is_set():
        with httpx.Client(base_url=base, timeout=30) as client:
            while not stop.is_set():
                try:
                    status = client.post("/api/v1/auth/token", data={"username": "admin", "password": f"guess-{i}"}).status_code
                except httpx.TransportError:
                    status = 0
                i += 1
                with lock:
                    counts[status] = counts.get(status, 0) + 1
                if status == 0:
                    break


def run(throttling: bool, *, seconds: float, attackers: int, rate: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="callqa-signin-"))
    port = free_port()
    env = {} if throttling else {"CALLQA_SIGNIN_USER_FAILURES": "1000", "CALLQA_SIGNIN_ADDRESS_FAILURES": "100000"}
    server = start_server(f"sqlite:///{work / 'callqa.db'}", port=port, workers=1, data_dir=work, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).json()["access_token"]
        _list_load(base, token, rate=rate, seconds=2)  # warm-up
        cpu0 = cpu_seconds(server.pid)
        quiet = _list_load(base, token, rate=rate, seconds=seconds)
        cpu1 = cpu_seconds(server.pid)
        stop, lock, counts = threading.Event(), threading.Lock(), {}
        threads = [threading.Thread(target=_guess, args=(base, stop, counts, lock)) for _ in range(attackers)]
        for t in threads:
            t.start()
        attacked = _list_load(base, token, rate=rate, seconds=seconds)
        stop.set()
        for t in threads:
            t.join()
        cpu2 = cpu_seconds(server.pid)
    finally:
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)
    guesses = sum(counts.values())
    return {
        "throttling": "on" if throttling else "off",
        "list_quiet_ms": _percentiles(quiet), "list_under_attack_ms": _percentiles(attacked),
        "guesses_per_s": round(guesses / seconds, 1), "guesses_hashed": counts.get(401, 0), "guesses_refused_429": counts.get(429, 0),
        "other_answers": {str(k): v for k, v in counts.items() if k not in (401, 429)},
        "server_cpu_quiet": round((cpu1 - cpu0) / seconds, 2), "server_cpu_under_attack": round((cpu2 - cpu1) / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--attackers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10, help="call-list requests a second")
    parser.add_argument("--throttling", nargs="+", choices=["on", "off"], default=["off", "on"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [run(t == "on", seconds=args.seconds, attackers=args.attackers, rate=args.rate) for t in args.throttling]
    report = {"machine": machine(), "seconds": args.seconds, "attackers": args.attackers, "rate": args.rate, "runs": results}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return
    print(f"{report['machine']}; {args.attackers} guessing connections, the call list at {args.rate:g}/s, {args.seconds:g} s a phase")
    for r in results:
        print(f"throttling {r['throttling']:>3}: list p50/p95/p99 quiet {r['list_quiet_ms']['p50']}/{r['list_quiet_ms']['p95']}/"
              f"{r['list_quiet_ms']['p99']} ms, under attack {r['list_under_attack_ms']['p50']}/{r['list_under_attack_ms']['p95']}/"
              f"{r['list_under_attack_ms']['p99']} ms; {r['guesses_per_s']} guesses/s answered, {r['guesses_hashed']} hashed (401), "
              f"{r['guesses_refused_429']} refused (429); server CPU {r['server_cpu_quiet']} -> {r['server_cpu_under_attack']} cores")


if __name__ == "__main__":
    main()
