"""Webhook → row latency through the real Dagster daemon, at 2, 100 and 1,000 shops.

    .venv/bin/python -m benchmarks.realtime_daemon [--shops 2,100,1000] [--rate 10] [--seconds 120]
        [--warmup 30]

A measurement, not a test: nothing here asserts on timings. It prints a results table and writes
the figures to ``benchmarks/results/realtime_daemon.json``; method and figures are in
``docs/benchmarks-realtime.md``.

What users get is measured, not a stand-in: per scenario a throwaway embedded PostgreSQL
(``fast=False``) holds a fresh app database and a fresh Dagster database; the webhook receiver runs as
its own process (``python -m sync_pipelines.receiver``) and ``dagster-daemon run -w workspace.yaml``
runs with the project's ``dagster.yaml`` (run queue, tag limits, DefaultRunLauncher: every run is a
new process that loads the code location), so sensor intervals, dequeue, launch and the run itself
are all inside the figure. ``--shops`` shops are registered active (``sync_enabled`` off, so the
fixed Shopify schedules do not launch sync runs against shops that exist nowhere).

Load: signed ``orders/updated`` deliveries, each a new order of a shop drawn at random, at
``--rate`` per second (evenly spaced) for ``--warmup`` seconds (not measured: the code server
starts, the first runs load) and then ``--seconds`` seconds (measured). The latency of a delivery
is from the receiver's 200 (taken when the answer reaches the sender) to the moment a poller
(every 50 ms) sees its inbox row processed — the run marks it in the same transaction that writes
the order row, so that is when the row is in the table. At the end every measured order is checked
to be in ``shopify.orders``. Runs launched per minute and their durations come from Dagster's run
storage.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PROJECT_ROOT,
    RESULTS_DIR,
    ChildServer,
    ThrowawayPostgres,
    machine_facts,
    results_header,
    write_results,
)
from benchmarks.receiver_load import SECRET, ReceiverProcess

APPLY_JOB = "shopify_apply_webhooks"
POLL_SECONDS = 0.05


class DaemonProcess(ChildServer):
    """`dagster-daemon run` with the project's workspace and dagster.yaml on the benchmark's databases."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self._spawn([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(PROJECT_ROOT / "workspace.yaml")],
                    log_path, env, read_stdout=False)

    def stop(self) -> None:
        """The daemon, then whatever it started (its code server, a run still going): its session's
        process group, so nothing outlives the benchmark."""
        group = self.proc.pid  # start_new_session: the daemon leads its own group
        super().stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 99
    return {"count": len(ordered), "p50": round(q[49], 2), "p95": round(q[94], 2), "max": round(ordered[-1], 2),
            "mean": round(statistics.fmean(ordered), 2)}


def dagster_env(pg: ThrowawayPostgres, home: Path, dagster_db: str, app_url: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "SHOPIFY_"))}
    env.update(DAGSTER_HOME=str(home), DAGSTER_PG_USERNAME="postgres", DAGSTER_PG_PASSWORD="trust",
               DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(pg.server.port), DAGSTER_PG_DB=dagster_db,
               DATABASE_URL=app_url, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])))
    return env


def register(app_url: str, shops: list[str]) -> None:
    import psycopg

    from sync_pipelines.core.registry import upsert_account

    with psycopg.connect(app_url, autocommit=True) as conn:
        for shop in shops:
            upsert_account(conn, "shopify", shop, credentials_env="SHOPIFY_BENCH_TOKEN", sync_enabled=False)


class Sender:
    """Signed deliveries at a steady rate; remembers (inbox id, time of the 200) of each."""

    def __init__(self, receiver_url: str, shops: list[str], rate: float, seed: int = 7):
        import requests

        self.url = f"{receiver_url}/webhooks/shopify"
        self.shops, self.rate = shops, rate
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.next_order = 1
        self.sent: dict[int, tuple[float, str, int]] = {}  # inbox id → (t_200, shop, order id)
        self.failures: dict[str, int] = {}

    def send_for(self, seconds: float, record: bool) -> None:
        from sync_pipelines.defs.shopify import webhooks

        start = time.monotonic()
        n = 0
        while (due := start + n / self.rate) < start + seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            n += 1
            shop = self.rng.choice(self.shops)
            order_id, self.next_order = self.next_order, self.next_order + 1
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = json.dumps({"id": order_id, "name": f"#{order_id}", "created_at": now, "updated_at": now,
                               "total_price": "10.00", "currency": "USD"}, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", webhooks.TOPIC_HEADER: "orders/updated",
                       webhooks.HMAC_HEADER: webhooks.signature(SECRET, body), webhooks.SHOP_HEADER: shop,
                       webhooks.WEBHOOK_ID_HEADER: str(uuid.uuid4()), webhooks.TRIGGERED_AT_HEADER: now}
            try:
                response = self.session.post(self.url, data=body, headers=headers, timeout=10)
            except Exception as error:  # counted, never hidden
                self.failures[type(error).__name__] = self.failures.get(type(error).__name__, 0) + 1
                continue
            answered = time.time()
            if response.status_code != 200:
                self.failures[str(response.status_code)] = self.failures.get(str(response.status_code), 0) + 1
                continue
            if record:
                self.sent[int(response.json()["id"])] = (answered, shop, order_id)


class Poller(threading.Thread):
    """Sees each recorded inbox row become processed (its order row committed in the same transaction)."""

    def __init__(self, app_url: str, sender: Sender):
        super().__init__(name="processed-poller", daemon=True)
        self.app_url, self.sender = app_url, sender
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.app_url, autocommit=True) as conn:
            while not self.stop.is_set():
                waiting = [i for i in list(self.sender.sent) if i not in self.seen]
                if waiting:
                    rows = conn.execute("SELECT id FROM sync.inbox WHERE id = ANY(%s) AND processed_at IS NOT NULL",
                                        (waiting,)).fetchall()
                    now = time.time()
                    for (inbox_id,) in rows:
                        self.seen[inbox_id] = now
                self.stop.wait(POLL_SECONDS)


def run_stats(dagster_url: str, since: float, until: float) -> dict[str, Any]:
    """Apply runs created in [since, until] from Dagster's run storage: count, per minute, durations."""
    import psycopg

    with psycopg.connect(dagster_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT status, extract(epoch FROM create_timestamp), start_time, end_time FROM runs"  # stored as UTC
            " WHERE pipeline_name = %s AND create_timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC'"
            " AND create_timestamp <= to_timestamp(%s) AT TIME ZONE 'UTC'",
            (APPLY_JOB, since, until)).fetchall()
        all_runs = conn.execute("SELECT pipeline_name, count(*) FROM runs"
                                " WHERE create_timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC'"
                                " AND create_timestamp <= to_timestamp(%s) AT TIME ZONE 'UTC' GROUP BY 1 ORDER BY 1",
                                (since, until)).fetchall()
    minutes = (until - since) / 60
    started = [(created, start, end) for _, created, start, end in rows if start and end]
    return {
        "apply_runs": len(rows),
        "apply_runs_per_minute": round(len(rows) / minutes, 1),
        "apply_run_statuses": {s: sum(1 for r in rows if r[0] == s) for s in sorted({r[0] for r in rows})},
        "create_to_start_seconds": percentiles([float(start) - float(created) for created, start, _ in started]),
        "run_duration_seconds": percentiles([float(end) - float(start) for _, start, end in started]),
        "all_runs_by_job": {job: n for job, n in all_runs},
    }


def scenario(pg: ThrowawayPostgres, work: Path, shops_n: int, rate: float, seconds: float, warmup: float) -> dict:
    import psycopg

    tag = f"s{shops_n}"
    app_url, dagster_url = pg.database(f"app_{tag}"), pg.database(f"dagster_{tag}")
    shops = [f"bench-{n:04d}.myshopify.com" for n in range(shops_n)]
    register(app_url, shops)
    env = dagster_env(pg, work / f"home_{tag}", f"dagster_{tag}", app_url)
    print(f"\n[{shops_n} shops] starting the receiver and dagster-daemon ...", flush=True)
    with ReceiverProcess(app_url, work / f"receiver_{tag}.log") as receiver, \
            DaemonProcess(env, work / f"daemon_{tag}.log") as daemon:
        sender = Sender(receiver.url, shops, rate)
        poller = Poller(app_url, sender)
        poller.start()
        print(f"[{shops_n} shops] warm-up {warmup:.0f}s at {rate:g}/s ...", flush=True)
        sender.send_for(warmup, record=False)
        print(f"[{shops_n} shops] measuring {seconds:.0f}s at {rate:g}/s ...", flush=True)
        began = time.time()
        sender.send_for(seconds, record=True)
        ended = time.time()
        deadline = time.monotonic() + 120
        while len(poller.seen) < len(sender.sent) and time.monotonic() < deadline:
            time.sleep(0.2)
        poller.stop.set()
        poller.join()
        daemon_rss = daemon.rss_mb()
        if daemon.proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited:\n{(work / f'daemon_{tag}.log').read_text()[-3000:]}")
    latencies = [poller.seen[i] - t for i, (t, _, _) in sender.sent.items() if i in poller.seen]
    with psycopg.connect(app_url, autocommit=True) as conn:
        ids = [order_id for _, _, order_id in sender.sent.values()]
        stored = conn.execute("SELECT count(*) FROM shopify.orders WHERE order_id = ANY(%s)", (ids,)).fetchone()[0]
    result = {
        "shops": shops_n, "rate_per_second": rate, "measured_seconds": round(ended - began, 1),
        "deliveries_measured": len(sender.sent), "send_failures": sender.failures,
        "rows_seen": len(poller.seen), "orders_in_table": stored,
        "all_orders_in_table": stored == len(sender.sent),
        "distinct_shops_measured": len({shop for _, shop, _ in sender.sent.values()}),
        "webhook_to_row_seconds": percentiles(latencies),
        "daemon_rss_mb_at_end": daemon_rss,
        **run_stats(dagster_url, began, ended),
    }
    lat = result["webhook_to_row_seconds"]
    print(f"[{shops_n} shops] webhook→row p50 {lat['p50']}s p95 {lat['p95']}s max {lat['max']}s;"
          f" {result['apply_runs_per_minute']} apply runs/min; all rows stored: {result['all_orders_in_table']}",
          flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realtime_daemon", description=__doc__.split("\n")[0])
    parser.add_argument("--shops", default="2,100,1000", help="comma-separated shop counts, one scenario each")
    parser.add_argument("--rate", type=float, default=10.0, help="deliveries per second (all shops together)")
    parser.add_argument("--seconds", type=float, default=120.0, help="measured seconds per scenario")
    parser.add_argument("--warmup", type=float, default=30.0, help="unmeasured seconds before")
    parser.add_argument("--no-write", action="store_true", help="print only; keep the stored results")
    args = parser.parse_args(argv)
    results = results_header("realtime_daemon", argv)
    load_before = os.getloadavg()
    with ThrowawayPostgres("sync-bench-realtime-") as pg:
        pg.start()
        results["machine"] = machine_facts(pg.database("postgres"), pg.data)
        results["load_average_before"] = [round(x, 2) for x in load_before]
        results["settings"] = {"sensor_minimum_interval_seconds": 5, "sensor_daemon_loop_seconds": 5,
                               "dequeue_interval_seconds": 1, "run_launcher": "DefaultRunLauncher"}
        results["scenarios"] = [scenario(pg, pg.work, int(n), args.rate, args.seconds, args.warmup)
                                for n in args.shops.split(",")]
    if not args.no_write:
        write_results(RESULTS_DIR / "realtime_daemon.json", results)
        print(f"results written to {RESULTS_DIR / 'realtime_daemon.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
