"""EcoManager orders and Maystro shipping statuses at scale, through the real Dagster daemon.

    .venv/bin/python -m benchmarks.cod_sync [--stores 100] [--orders 10000] [--new-max 20]
        [--maystro-orders 100000] [--maystro-stores 1] [--changed-fraction 0.01] [--paced-reads]
        [--skip-calls-table] [--no-write]

A measurement, not a test: nothing here asserts on timings. It prints a summary and writes the
figures to ``benchmarks/results/cod_sync.json``; method and figures are in ``docs/benchmarks-cod.md``
(``sync_pipelines_tests/test_cod_benchmark.py`` runs it scaled down and asserts the counts).

Set-up, once: a throwaway embedded PostgreSQL (``fast=False``), a fresh app and Dagster database,
both sandboxes in their own processes (``python -m sync_pipelines.sandbox.ecomanager --stores …
--orders N``, ``python -m sync_pipelines.sandbox.maystro --stores … --orders N``), every store
registered as ``accounts connect`` leaves it (token in an env var), and ``dagster-daemon run -w
workspace.yaml`` with the project's ``dagster.yaml`` (run queue, ``sync/provider`` limit 4,
DefaultRunLauncher: every run its own process). The two schedules are stopped first (``dagster
schedule stop``) so that a real quarter-hour tick cannot launch runs of its own in the middle.

Each pass is launched as production launches it: the schedule's own function is evaluated at a
tick where every store's local hour begins (Africa/Algiers, UTC+1: 07:00 UTC is 08:00 there) and
its run requests — one batch run per 250 stores, not a run per store — are submitted to the
daemon's queue with ``dagster job launch``. Timed from the first submission until the pass's last
run ends; the CLI's own load time is reported apart (the scheduler daemon submits from its
already-loaded code location).

EcoManager: (a) the first sync (08:00 tick, mode ``new`` on empty tables reads every order);
(b) an hourly sync after 0..``--new-max`` new orders per store, every ``--arrival-every``-th store
also getting orders that arrive *during* its sync (``/_sandbox/arrivals``: after its first orders
request), then the next hour's sync which must pick exactly those up; after each, the table is
compared with the sandbox per store (count, lowest and highest id: ids are contiguous, so equal
counts and bounds mean the same set; the primary key rules out repeats); (c) the evening ``full``
reconciliation. Passes (a) and (c) read every page of every store: at the client's production
pacing (60 requests a minute per store, 4 stores at a time per run) 100 × 10,000 orders would take
≥ 42 minutes of pure waiting, so by default those two passes run unpaced (sandbox limit off, the
client's ``requests_per_minute`` null through the run's resource config) and the doc gives the
paced floor; ``--paced-reads`` keeps production pacing. The hourly passes always run as in
production. The API-calls table (history × new orders, one store each) is measured in-process:
it is a call count.

Maystro: one poll (06:00 local tick) of ``--maystro-stores`` stores × ``--maystro-orders`` orders at
production settings (client 600 requests/min per store, 10 pages in flight; sandbox limit 1,200/min,
the seed's pace), then ``--changed-fraction`` of the statuses changed and a second poll. Counted:
requests and 429s (sandbox), peak requests in flight (sandbox), rows, changed rows and history
rows (app database), each store's materialization metadata (Dagster's event log).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.ads_sync import (
    FINISHED,
    Sampler,
    _uptime,
    dagster_env,
    run_pids,
    run_summary,
    runs_between,
    wait_for,
)
from benchmarks.common import (
    evaluate_schedule,
    PROJECT_ROOT,
    RESULTS_DIR,
    SandboxProcess,
    ThrowawayPostgres,
    machine_facts,
    results_header,
    write_results,
)
from benchmarks.realtime_daemon import DaemonProcess, percentiles

PASS_TAG = "bench/pass"
ECO_TOKEN_PREFIX = "sandbox-ecomanager-"
MAYSTRO_KEY_PREFIX = "sandbox-maystro-"
ECO_PAGE = 100  # the client's per_page
MAYSTRO_PAGE = 20
SCHEDULES = ("ecomanager_orders_hourly", "maystro_status_every_6h")
CALLS_HISTORIES = (100, 10_000, 100_000)
CALLS_NEW = (0, 1, 500)


# ----------------------------------------------------------------------------- sandboxes
class EcoManagerSandboxProcess(SandboxProcess):
    """``python -m sync_pipelines.sandbox.ecomanager`` serving `stores`, `orders` each (generated lazily)."""

    def __init__(self, stores: list[str], orders: int, log_path: Path, requests_per_minute: int = 60):
        command = [sys.executable, "-m", "sync_pipelines.sandbox.ecomanager", "--host", "127.0.0.1", "--port", "0",
                   "--stores", ",".join(stores), "--orders", str(orders),
                   "--requests-per-minute", str(requests_per_minute)]
        super().__init__(command, ready_pattern=r"EcoManager sandbox on (http://\S+)", log_path=log_path,
                         thread_name="ecomanager-sandbox-stdout")

    def base_url_template(self) -> str:
        return f"{self.url}/stores/{{store}}"

    def set_rate_limit(self, requests_per_minute: int | None) -> None:
        self.control("POST", "ratelimit", {"requests_per_minute": requests_per_minute, "reset": True})

    def store_counts(self) -> dict[str, dict[str, int]]:
        return self.control("GET", "stores")["stores"]


class MaystroSandboxProcess(SandboxProcess):
    """``python -m sync_pipelines.sandbox.maystro`` serving `stores`, `orders` each."""

    def __init__(self, stores: list[str], orders: int, log_path: Path, requests_per_minute: int = 1200):
        command = [sys.executable, "-m", "sync_pipelines.sandbox.maystro", "--host", "127.0.0.1", "--port", "0",
                   "--stores", ",".join(stores), "--orders", str(orders),
                   "--requests-per-minute", str(requests_per_minute)]
        super().__init__(command, ready_pattern=r"Maystro sandbox on (http://\S+)", log_path=log_path,
                         thread_name="maystro-sandbox-stdout")


def env_var_for(provider: str, store: str) -> str:
    return f"{provider.upper()}_BENCH_TOKEN_{store.upper().replace('-', '_')}"


def register(app_url: str, provider: str, stores: list[str], secret_prefix: str) -> dict[str, str]:
    """Registry rows as `accounts connect` leaves them, each token in its own env var; those vars."""
    import psycopg

    from sync_pipelines.core.registry import upsert_account

    env = {}
    with psycopg.connect(app_url, autocommit=True) as conn, conn.transaction():
        for store in stores:
            env[env_var_for(provider, store)] = f"{secret_prefix}{store}"
            upsert_account(conn, provider, store, credentials_env=env_var_for(provider, store))
    return env


# ----------------------------------------------------------------------------- launching
def schedule_requests(schedule_name: str, tick: datetime, app_url: str) -> list[Any]:
    """The run requests `schedule_name`'s own function makes at `tick` (against the app database)."""
    result = evaluate_schedule(schedule_name.split("_")[0], schedule_name, tick, app_url)
    if not isinstance(result, list):
        raise RuntimeError(f"{schedule_name} at {tick.isoformat()} asked for no run: {result}")
    return result


def local_tick(hour: int, utc_offset_hours: int = 1) -> datetime:
    """Today's UTC instant at which local hour `hour` begins in a UTC+`utc_offset_hours` zone
    (Africa/Algiers: +1 all year)."""
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(hours=hour - utc_offset_hours)


def dagster_cli() -> str:
    return str(Path(sys.executable).parent / "dagster")


def launch(request: Any, env: dict[str, str], log_path: Path, pass_name: str,
           resources: dict[str, Any] | None = None) -> subprocess.Popen:
    """`dagster job launch` of one run request (into the daemon's run queue), tagged with the pass."""
    tags = {**request.tags, PASS_TAG: pass_name}
    config = dict(request.run_config)
    if resources:
        config["resources"] = resources
    command = [dagster_cli(), "job", "launch", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-j", request.job_name,
               "--config-json", json.dumps(config), "--tags", json.dumps(tags)]
    log = open(log_path, "ab")  # noqa: SIM115 -- the child holds it; closed when this process exits
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_schedules(env: dict[str, str], log_path: Path) -> None:
    """Stop both schedules before the daemon starts: a real tick must not launch runs mid-benchmark."""
    with open(log_path, "ab") as log:
        procs = [subprocess.Popen([dagster_cli(), "schedule", "stop", "-w", str(PROJECT_ROOT / "workspace.yaml"), name],
                                  cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                 for name in SCHEDULES]
        for proc in procs:
            if proc.wait(timeout=600) != 0:
                raise RuntimeError(f"dagster schedule stop failed:\n{log_path.read_text()[-3000:]}")


def pass_runs(dagster_url: str, pass_name: str, since: float) -> list[dict[str, Any]]:
    return [r for r in runs_between(dagster_url, since, time.time() + 1) if r["tags"].get(PASS_TAG) == pass_name]


def materializations(dagster_url: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """Each materialization of the runs: asset, partition (store) and its metadata as plain values."""
    import psycopg
    from dagster._serdes import deserialize_value

    with psycopg.connect(dagster_url, autocommit=True) as conn:
        rows = conn.execute("SELECT event FROM event_logs WHERE run_id = ANY(%s)"
                            " AND dagster_event_type = 'ASSET_MATERIALIZATION'", (run_ids,)).fetchall()
    found = []
    for (event,) in rows:
        m = deserialize_value(event).dagster_event.event_specific_data.materialization
        found.append({"asset": "/".join(m.asset_key.path), "partition": m.partition,
                      "metadata": {k: v.value for k, v in m.metadata.items()}})
    return found


def account_failures(app_url: str, provider: str, since: datetime) -> int:
    import psycopg

    with psycopg.connect(app_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM sync.account_outcomes WHERE provider = %s AND NOT ok"
                            " AND recorded_at >= %s", (provider, since)).fetchone()[0]


class Bench:
    """One daemon, its databases and sandboxes; runs passes and measures them."""

    def __init__(self, server: Any, work: Path, env: dict[str, str], app_url: str, dagster_url: str,
                 sampler: Sampler, daemon: DaemonProcess, timeout: float):
        self.server, self.work, self.env = server, work, env
        self.app_url, self.dagster_url = app_url, dagster_url
        self.sampler, self.daemon, self.timeout = sampler, daemon, timeout

    def alive(self) -> None:
        if self.daemon.proc.poll() is not None:
            raise RuntimeError(f"dagster-daemon exited:\n{self.daemon.log_path.read_text()[-3000:]}")

    def run_pass(self, name: str, schedule_name: str, tick: datetime,
                 resources: dict[str, Any] | None = None) -> dict[str, Any]:
        """Evaluate the schedule at `tick`, submit its requests, wait for their runs; the figures."""
        began, began_dt = time.time(), datetime.now(UTC)
        requests = schedule_requests(schedule_name, tick, self.app_url)
        launches = [launch(r, self.env, self.work / f"launch_{name}.log", name, resources) for r in requests]
        for proc in launches:
            if proc.wait(timeout=600) != 0:
                raise RuntimeError(f"dagster job launch failed:\n{(self.work / f'launch_{name}.log').read_text()[-3000:]}")
        submitted = time.time()
        print(f"  [{name}] {len(requests)} run request(s) ({', '.join(r.tags['sync/kind'] + ' × ' + r.tags['sync/accounts'] for r in requests)})"
              f" submitted in {submitted - began:.1f}s ...", flush=True)

        def done() -> bool:
            self.alive()
            runs = pass_runs(self.dagster_url, name, began)
            return len(runs) >= len(requests) and all(r["status"] in FINISHED for r in runs)

        wait_for(f"the {name} runs to end", done, self.timeout)
        ended = time.time()
        runs = pass_runs(self.dagster_url, name, began)
        ids = [r["run_id"] for r in runs]
        pids = run_pids(self.dagster_url, ids)
        first_created = min(r["created"] for r in runs)
        summary = run_summary(runs, [mb for pid, mb in list(self.sampler.run_peaks.items()) if pid in pids])
        result = {
            "tick_utc": tick.isoformat(), "run_requests": len(requests),
            "seconds_total": round(ended - began, 1), "seconds_submitting": round(submitted - began, 1),
            "seconds_first_run_created_to_last_end": round(ended - first_created, 1),
            **summary, "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "_materializations": materializations(self.dagster_url, ids), "_began": began_dt,
        }
        print(f"  [{name}] done in {result['seconds_total']}s ({result['runs']} runs: "
              f"{result['runs_by_job_trigger_kind_status']})", flush=True)
        return result


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


# ----------------------------------------------------------------------------- EcoManager
def order_calls(stats: dict[str, Any]) -> dict[str, int]:
    return dict(stats.get("calls", {}).get("orders", {}))


def calls_delta(before: dict[str, Any], after: dict[str, Any], stores: list[str]) -> dict[str, int]:
    b, a = order_calls(before), order_calls(after)
    return {s: a.get(s, 0) - b.get(s, 0) for s in stores}


def statuses_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Responses by status and the sandbox's rate-limit 429s between two stats snapshots."""
    b = before.get("status_counts", {})
    counts = {k: v - b.get(k, 0) for k, v in sorted(after.get("status_counts", {}).items()) if v - b.get(k, 0)}
    return {"status_counts": counts,
            "quota_errors_429": after.get("rate_limited_429", 0) - before.get("rate_limited_429", 0)}


def table_vs_sandbox(app_url: str, sandbox: EcoManagerSandboxProcess, stores: list[str],
                     not_yet: dict[str, int] | None = None) -> dict[str, Any]:
    """Per store, the table's live orders against the sandbox's: count, lowest and highest id.
    `not_yet`: orders per store that arrived after the sync's first page (expected only next sync)."""
    import psycopg

    upstream = sandbox.store_counts()
    with psycopg.connect(app_url, autocommit=True) as conn:
        stored = {account: (n, distinct, low, high) for account, n, distinct, low, high in conn.execute(
            "SELECT account, count(*), count(DISTINCT order_id), min(order_id), max(order_id)"
            " FROM ecomanager.orders WHERE deleted_at IS NULL GROUP BY account").fetchall()}
    mismatched = []
    for store in stores:
        up = upstream[store]
        late = (not_yet or {}).get(store, 0)
        expected = (up["orders"] - late, up["orders"] - late, up["first_id"], up["max_id"] - late)
        got = stored.get(store, (0, 0, None, None))
        if tuple(got) != expected:
            mismatched.append({"store": store, "expected": expected, "stored": got})
    return {"stores_checked": len(stores), "stores_exact": len(stores) - len(mismatched),
            "rows": sum(v[0] for v in stored.values()), "sandbox_orders": sum(upstream[s]["orders"] for s in stores),
            "orders_expected_next_sync": sum((not_yet or {}).values()), "mismatched": mismatched[:10]}


def eco_pass_figures(result: dict[str, Any], calls: dict[str, int]) -> dict[str, Any]:
    mats = [m for m in result["_materializations"] if m["asset"] == "ecomanager/orders"]
    values = list(calls.values())
    records = {k: sum(int(m["metadata"].get(f"records_{k}", 0) or 0) for m in mats)
               for k in ("fetched", "inserted", "updated", "unchanged", "deleted")}
    return {**_strip(result), "records": records,
            "api_calls": sum(values),
            "api_calls_per_store": {"min": min(values, default=0), "max": max(values, default=0),
                                    "mean": round(sum(values) / max(1, len(values)), 2),
                                    "histogram": {str(k): values.count(k) for k in sorted(set(values))}},
            "stores_materialized": len(mats), "orders_fetched": records["fetched"]}


def ecomanager_passes(bench: Bench, sandbox: EcoManagerSandboxProcess, stores: list[str], *, orders: int,
                      new_max: int, arrival_every: int, paced_reads: bool, rng: random.Random) -> dict[str, Any]:
    unpaced = None if paced_reads else {"ecomanager": {"config": {"requests_per_minute": None}}}
    found: dict[str, Any] = {}

    def measured(name: str, hour: int, run_config: dict | None = None) -> dict[str, Any]:
        """One pass of the hourly schedule at `hour` local: its runs, calls and statuses, failures."""
        before = sandbox.stats()
        done = bench.run_pass(name, "ecomanager_orders_hourly", local_tick(hour), run_config)
        after = sandbox.stats()
        return {**eco_pass_figures(done, calls_delta(before, after, stores)), **statuses_delta(before, after),
                "account_failures": account_failures(bench.app_url, "ecomanager", done["_began"])}

    # (a) first sync: 08:00 local, mode new, empty tables.
    sandbox.set_rate_limit(60 if paced_reads else None)
    found["first_sync"] = {**measured("eco_first", 8, unpaced), "paced": paced_reads,
                           "paced_floor_seconds": paced_floor(stores, orders),
                           "check": table_vs_sandbox(bench.app_url, sandbox, stores)}

    # (b) hourly with new orders, some arriving during the sync; then the next hour picks them up.
    sandbox.set_rate_limit(60)
    new = {s: rng.randint(0, new_max) for s in stores}
    late = {s: rng.randint(1, 5) for i, s in enumerate(stores) if arrival_every and i % arrival_every == 0}
    for store, n in new.items():
        if n:
            sandbox.control("POST", "orders/add", {"store": store, "n": n})
    for store, n in late.items():
        sandbox.control("POST", "arrivals", {"store": store, "after_requests": 1, "add": n})
    found["hourly"] = {**measured("eco_hourly", 9), "new_orders_before": sum(new.values()),
                       "stores_with_new_orders": sum(1 for n in new.values() if n),
                       "new_orders_arriving_during_sync": sum(late.values()), "stores_with_arrivals": len(late),
                       "check": table_vs_sandbox(bench.app_url, sandbox, stores, late)}
    found["next_hour"] = {**measured("eco_next_hour", 10), "check": table_vs_sandbox(bench.app_url, sandbox, stores)}

    # (c) the evening's full reconciliation (21:00 local).
    sandbox.set_rate_limit(60 if paced_reads else None)
    found["full_reconciliation"] = {**measured("eco_full", 21, unpaced), "paced": paced_reads,
                                    "paced_floor_seconds": paced_floor(stores, orders),
                                    "check": table_vs_sandbox(bench.app_url, sandbox, stores)}
    sandbox.set_rate_limit(60)
    return found


def paced_floor(stores: list[str], orders: int, per_minute: int = 60, burst: int = 1, parallel: int = 16,
                batch: int = 250) -> float:
    """Seconds a complete read of every store needs at the client's pacing: each store's pages at
    `per_minute` after a burst, `parallel` stores at a time per run, runs of `batch` (4 at once)."""
    pages = max(1, math.ceil(orders / ECO_PAGE))
    per_store = max(0, pages - burst) * 60 / per_minute
    runs = math.ceil(len(stores) / batch)
    stores_per_run = math.ceil(len(stores) / max(1, runs))
    return round(math.ceil(stores_per_run / parallel) * per_store, 1)


def calls_table(app_url: str, histories: tuple[int, ...], new_counts: tuple[int, ...]) -> dict[str, Any]:
    """API calls of one hourly (`new`) sync of one store per (history, new orders), in-process.

    Each store is put where its first sync would leave it — the id mark at its highest order —
    without reading its history again (the mark is all a `new` sync starts from), then gets its
    new orders, and one sync runs; its requests are the sandbox's count."""
    import psycopg

    from sync_pipelines.core import cursors
    from sync_pipelines.core.database import ensure_tables
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.core.registry import Account
    from sync_pipelines.core.sync_newest import mark_name
    from sync_pipelines.defs.ecomanager.assets import NEW, ORDERS, sync_store
    from sync_pipelines.defs.ecomanager.client import EcoManagerClient
    from sync_pipelines.sandbox.ecomanager import EcoManagerSandbox
    from sync_pipelines.sandbox.server import serve_in_thread

    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = app_url
    box = EcoManagerSandbox(seed=7, requests_per_minute=None)
    rows, env_vars = [], []
    try:
        with serve_in_thread(box.app) as running:
            client = EcoManagerClient(base_url_template=box.base_url_template(running.url), requests_per_minute=None)
            for history in histories:
                for new in new_counts:
                    store = f"calls-h{history}-n{new}"
                    env_var = env_var_for("ecomanager", store)
                    os.environ[env_var] = box.add_store(store, orders=history)
                    env_vars.append(env_var)
                    with psycopg.connect(app_url, autocommit=True) as conn:
                        ensure_tables(conn, [cursors.CURSORS])
                        top = box.store(store).counts()["max_id"]
                        cursors.save_id(conn, mark_name(ORDERS), store, top)
                    box.add_orders(store, new)
                    before = box.stats()["calls"].get("orders", {}).get(store, 0)
                    account = Account(provider="ecomanager", account=store, display_name=store, active=True,
                                      credentials_env=env_var, sync_enabled=True, cadence="hourly", lookback_days=0,
                                      timezone="Africa/Algiers")
                    done = sync_store(AppDatabase(), client, account, NEW)
                    if not done.ok:
                        raise RuntimeError(f"calls table: {store}: {done.error}")
                    calls = box.stats()["calls"].get("orders", {}).get(store, 0) - before
                    rows.append({"history": history, "new": new, "api_calls": calls,
                                 "fetched": int(done.metadata["records_fetched"].value),
                                 "first_sync_calls": max(1, math.ceil(history / ECO_PAGE))})
    finally:
        box.close()
        for env_var in env_vars:
            os.environ.pop(env_var, None)
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
    return {"page_size": ECO_PAGE, "rows": rows}


# ----------------------------------------------------------------------------- Maystro
def maystro_counts(app_url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(app_url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('maystro.status_history')").fetchone()[0] is None:
            return {"shipments": 0, "shipments_unknown_status": 0, "history_rows_by_source": {}}
        shipments, unknown = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT status_known) FROM maystro.shipments").fetchone()
        history = dict(conn.execute("SELECT source, count(*) FROM maystro.status_history GROUP BY source").fetchall())
    return {"shipments": shipments, "shipments_unknown_status": unknown, "history_rows_by_source": history}


def maystro_pass(bench: Bench, sandbox: MaystroSandboxProcess, name: str, tick: datetime,
                 requests_per_minute: int) -> dict[str, Any]:
    sandbox.control("POST", "stats/reset")
    before_db = maystro_counts(bench.app_url)
    result = bench.run_pass(name, "maystro_status_every_6h", tick,
                            {"maystro": {"config": {"requests_per_minute": requests_per_minute}}})
    stats = sandbox.stats()
    after_db = maystro_counts(bench.app_url)
    mats = [m["metadata"] for m in result["_materializations"] if m["asset"] == "maystro/shipments"]
    totals = {k: sum(int(m.get(f"statuses_{k}", 0) or 0) for m in mats)
              for k in ("read", "new", "changed", "unchanged", "unknown", "matched", "batches")}
    history = {k: v - before_db["history_rows_by_source"].get(k, 0) for k, v in after_db["history_rows_by_source"].items()}
    return {**_strip(result),
            "api_requests": sum(stats.get("requests_by_key", {}).values()),
            "orders_requests": sum(stats.get("calls", {}).get("orders", {}).values()) or None,
            "status_counts": stats.get("status_counts", {}), "quota_errors_429": stats.get("rate_limited_429", 0),
            "sandbox_peak_in_flight": stats.get("peak_in_flight"),
            "statuses": totals, "history_rows_written": history, "table": after_db,
            "account_failures": account_failures(bench.app_url, "maystro", result["_began"])}


def change_statuses(sandbox: MaystroSandboxProcess, stores: list[str], orders: int, fraction: float,
                    rng: random.Random) -> int:
    """About `fraction` of each store's orders get another status (no webhooks): what a poll must
    find. The codes (10 EN TRANSIT POUR RETOUR, 12 EN RUPTURE DE STOCK) are ones the sandbox never
    generates, so every pick is a real change."""
    changed = 0
    for store in stores:
        picks = rng.sample(range(1, orders + 1), max(1, round(orders * fraction)))
        for i in range(0, len(picks), 500):
            chunk = [{"index": idx, "status": rng.choice([10, 12])} for idx in picks[i:i + 500]]
            changed += len(sandbox.control("POST", "orders/status", {
                "api_key": f"{MAYSTRO_KEY_PREFIX}{store}", "changes": chunk, "send_webhooks": False})["changed"])
    return changed


# ----------------------------------------------------------------------------- the benchmark
def run_benchmark(server: Any, work: Path, *, stores: int, orders: int, new_max: int, arrival_every: int,
                  paced_reads: bool, maystro_stores: int, maystro_orders: int, changed_fraction: float,
                  maystro_rpm: int = 1200, seed: int = 13, timeout: float = 3600.0,
                  name: str = "cod") -> dict[str, Any]:
    """Both providers through one daemon (fresh databases); `server` is an EmbeddedPostgres."""
    rng = random.Random(seed)
    app_url, dagster_url = server.ensure_database(f"app_{name}"), server.ensure_database(f"dagster_{name}")
    eco_stores = [f"s{i:03d}" for i in range(stores)]
    maystro_names = [f"m{i:03d}" for i in range(maystro_stores)]
    result: dict[str, Any] = {"stores": stores, "orders_per_store": orders, "new_orders_max_per_store": new_max,
                              "arrival_every_nth_store": arrival_every, "maystro_stores": maystro_stores,
                              "maystro_orders_per_store": maystro_orders, "changed_fraction": changed_fraction,
                              "uptime_before": _uptime()}
    with contextlib.ExitStack() as stack:
        eco = stack.enter_context(EcoManagerSandboxProcess(eco_stores, orders, work / f"sandbox_eco_{name}.log"))
        may = stack.enter_context(MaystroSandboxProcess(maystro_names, maystro_orders, work / f"sandbox_may_{name}.log"))
        extra = {"ECOMANAGER_BASE_URL": eco.base_url_template(), "MAYSTRO_BASE_URL": may.url,
                 **register(app_url, "ecomanager", eco_stores, ECO_TOKEN_PREFIX),
                 **register(app_url, "maystro", maystro_names, MAYSTRO_KEY_PREFIX)}
        env = dagster_env(server, work / f"home_{name}", f"dagster_{name}", app_url, extra)
        stop_schedules(env, work / f"schedules_{name}.log")
        load_before = os.getloadavg()
        daemon = stack.enter_context(DaemonProcess(env, work / f"daemon_{name}.log"))
        sampler = Sampler(daemon.proc.pid, {"ecomanager": eco, "maystro": may}, app_url, [])
        sampler.start()
        stack.callback(sampler.stop.set)
        bench = Bench(server, work, env, app_url, dagster_url, sampler, daemon, timeout)
        result["load_average_before"] = [round(x, 2) for x in load_before]
        print(f"[ecomanager] {stores} stores × {orders} orders", flush=True)
        result["ecomanager"] = ecomanager_passes(bench, eco, eco_stores, orders=orders, new_max=new_max,
                                                 arrival_every=arrival_every, paced_reads=paced_reads, rng=rng)
        print(f"[maystro] {maystro_stores} store(s) × {maystro_orders} orders", flush=True)
        first = maystro_pass(bench, may, "maystro_poll", local_tick(6), maystro_rpm)
        changed = change_statuses(may, maystro_names, maystro_orders, changed_fraction, rng)
        second = maystro_pass(bench, may, "maystro_poll_changed", local_tick(12), maystro_rpm)
        pages = math.ceil(maystro_orders / MAYSTRO_PAGE)
        result["maystro"] = {"client_requests_per_minute": maystro_rpm, "first_poll": first,
                             "statuses_changed_in_sandbox": changed, "second_poll": second,
                             "pages_per_store": pages,
                             "paced_floor_seconds": round(max(0, pages - 10) * 60 / maystro_rpm, 1),
                             "paced_floor_seconds_at_client_default_600": round(max(0, pages - 10) * 60 / 600, 1)}
        sampler.stop.set()
        sampler.join(5)
        bench.alive()
        result["peak_rss_mb"] = dict(sorted(sampler.peaks.items()))
        result["run_peak_rss_mb"] = percentiles(list(sampler.run_peaks.values()))
        result["cpu_seconds_by_process_role"] = sampler.cpu_seconds_by_role()
        result["load_average_1min_max"] = round(max((x for _, x in sampler.load), default=0.0), 2)
        result["uptime_after"] = _uptime()
    return result


def summary(r: dict[str, Any]) -> str:
    e, m = r["ecomanager"], r["maystro"]
    lines = [f"EcoManager {r['stores']} × {r['orders_per_store']}:"]
    for key in ("first_sync", "hourly", "next_hour", "full_reconciliation"):
        p = e[key]
        lines.append(f"  {key}: {p['seconds_total']}s ({p['seconds_first_run_created_to_last_end']}s from the first"
                     f" run), {p['runs']} runs, {p['api_calls']} calls ({p['api_calls_per_store']['histogram']}),"
                     f" {p['orders_fetched']} fetched, 429s {p['quota_errors_429']}; exact stores {p['check']['stores_exact']}/"
                     f"{p['check']['stores_checked']}; run peak RSS {p['run_peak_rss_mb']['max']} MB")
    for key in ("first_poll", "second_poll"):
        p = m[key]
        lines.append(f"Maystro {key}: {p['seconds_total']}s, {p['api_requests']} requests, peak in flight"
                     f" {p['sandbox_peak_in_flight']}, 429s {p['quota_errors_429']}, statuses {p['statuses']},"
                     f" history {p['history_rows_written']}, run peak RSS {p['run_peak_rss_mb']['max']} MB")
    lines.append(f"peak RSS: {r['peak_rss_mb']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cod_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--stores", type=int, default=100, help="EcoManager stores")
    parser.add_argument("--orders", type=int, default=10_000, help="historical orders per EcoManager store")
    parser.add_argument("--new-max", type=int, default=20, help="new orders per store before the hourly sync: 0..N")
    parser.add_argument("--arrival-every", type=int, default=5,
                        help="every N-th store also gets 1-5 orders during its hourly sync (0: none)")
    parser.add_argument("--paced-reads", action="store_true",
                        help="first sync and reconciliation at the client's production pacing (60/min per store)")
    parser.add_argument("--maystro-stores", type=int, default=1)
    parser.add_argument("--maystro-orders", type=int, default=100_000, help="orders per Maystro store")
    parser.add_argument("--maystro-rpm", type=int, default=1200,
                        help="the Maystro client's requests per minute per store (its default is 600; 1200 is the"
                             " seed's pace and the sandbox's limit)")
    parser.add_argument("--changed-fraction", type=float, default=0.01, help="statuses changed before the 2nd poll")
    parser.add_argument("--calls-histories", default=",".join(map(str, CALLS_HISTORIES)))
    parser.add_argument("--calls-new", default=",".join(map(str, CALLS_NEW)))
    parser.add_argument("--skip-calls-table", action="store_true")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a pass may take before giving up")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "cod_sync.json", help="results file")
    parser.add_argument("--no-write", action="store_true", help="print only; keep the stored results")
    args = parser.parse_args(argv)
    results = results_header("cod_sync", argv)
    with ThrowawayPostgres("sync-bench-cod-") as pg:
        pg.start()
        results["machine"] = machine_facts(pg.database("postgres"), pg.data)
        results["settings"] = {"SYNC_BATCH_SIZE": os.environ.get("SYNC_BATCH_SIZE", "250 (default)"),
                               "run_tag_limit_sync_provider": 4, "ecomanager_parallel_stores_per_run": 16,
                               "maystro_parallel_stores_per_run": 4,
                               "ecomanager_client_requests_per_minute_per_store": 60,
                               "ecomanager_sandbox_requests_per_minute_per_store": 60,
                               "maystro_client_requests_per_minute_per_store": args.maystro_rpm,
                               "maystro_max_in_flight": 10,
                               "maystro_sandbox_requests_per_minute": 1200}
        if not args.skip_calls_table:
            print("API calls per hourly sync (in-process) ...", flush=True)
            results["api_calls_table"] = calls_table(
                pg.database("app_calls"), tuple(int(x) for x in args.calls_histories.split(",")),
                tuple(int(x) for x in args.calls_new.split(",")))
            for row in results["api_calls_table"]["rows"]:
                print(f"  history {row['history']:>7} new {row['new']:>4}: {row['api_calls']} calls", flush=True)
        results["scenario"] = run_benchmark(
            pg.server, pg.work, stores=args.stores, orders=args.orders, new_max=args.new_max,
            arrival_every=args.arrival_every, paced_reads=args.paced_reads, maystro_stores=args.maystro_stores,
            maystro_orders=args.maystro_orders, changed_fraction=args.changed_fraction,
            maystro_rpm=args.maystro_rpm, seed=args.seed,
            timeout=args.timeout)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(summary(results["scenario"]), flush=True)
    if not args.no_write:
        path = args.output.resolve()
        if path.is_relative_to(PROJECT_ROOT):
            write_results(path, results)
        else:
            path.write_text(json.dumps(results, indent=2, default=str) + "\n")
            print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
