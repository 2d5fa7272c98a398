"""ShipStation sync benchmark: throughput, memory and rate-limit behaviour of products + inventory.

    .venv/bin/python -m benchmarks.shipstation_sync [--products 100000] [--scaled-products 20000]
        [--window-seconds 6] [--skip-unlimited] [--skip-limited] [--profile]

A measurement, not a test: nothing here asserts on timings. It prints a results table and writes
the figures to ``benchmarks/results/shipstation_sync.json``. Next to wall times it records the CPU
seconds of the sync process, the PostgreSQL cluster and the sandbox for each run (``cpu_seconds``):
on a shared machine those move far less than wall time does. Method and measured figures are in
``docs/benchmarks.md``.

Self-contained: it starts its own throwaway embedded PostgreSQL (a temp dir, a free port,
``fast=False`` so fsync and synchronous commit are on, as in a durable database) and points
``DATABASE_URL`` at it; the cluster is stopped and deleted at the end, also on error, Ctrl-C or
SIGTERM. Each scenario
starts its own ShipStation sandbox as a *separate process* (``python -m
sync_pipelines.sandbox.server``), so the peak RSS measured here is the sync side only.

Only the ``products`` and ``inventory`` assets are materialized: nothing in their tables refers to
the foundation tables (no foreign keys), and they are the two streams whose size grows with the
catalogue. Both run in one ``dg.materialize`` call, which, like the production job, uses the
in-process executor: the two steps run one after the other.

Scenarios:

1. unlimited: ``--products`` products and as many inventory rows, sandbox rate limit off, client
   ``requests_per_minute=None``; then a second, no-change run of the same.
2. rate-limited, time scaled by 60/``--window-seconds``: ShipStation's 200 requests per 60 s
   becomes 200 requests per ``--window-seconds`` in the sandbox, and the client's
   ``requests_per_minute`` is scaled the same way (2000 for a 6 s window).

``--profile`` runs both unlimited syncs (full, then no-change) under cProfile (slower, so their
figures go to ``shipstation_sync.profiled.json``, never over the headline results) and prints
where the time went in each.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    QUIET_RUN_CONFIG,
    RESULTS_DIR,
    Interrupts,
    SandboxProcess,
    ThrowawayPostgres,
    current_rss_mb,
    in_worker_thread,
    machine_facts,
    metadata_by_asset,
    now_iso,
    peak_rss_mb,
    report_interrupted,
    results_header,
    wal_mb_since,
    wal_position,
    write_results,
)

PROVIDER = "shipstation"
SANDBOX_STORE = "bench"  # the sandbox's api key is sandbox-shipstation-<store>
SHIPSTATION_REQUESTS_PER_WINDOW = 200  # ShipStation's default: 200 requests ...
SHIPSTATION_WINDOW_SECONDS = 60.0  # ... per 60 s window, per api key
PER_ASSET_KEYS = (
    "records_fetched", "records_inserted", "records_updated", "records_unchanged",
    "records_skipped_before_cursor", "batches_committed", "api_calls", "retries", "http_429s",
    "http_5xx", "wait_seconds", "duration_seconds",
)


# ----------------------------------------------------------------------------- helpers
def _per_asset(meta: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {asset: {k: values.get(k) for k in PER_ASSET_KEYS} for asset, values in sorted(meta.items())}


def _sum(per_asset: dict[str, dict[str, Any]], key: str) -> float:
    return sum(values.get(key) or 0 for values in per_asset.values())


# ----------------------------------------------------------------------------- sandbox process
class ShipStationSandboxProcess(SandboxProcess):
    """`python -m sync_pipelines.sandbox.server` in a child process, one store named `bench`."""

    def __init__(self, *, products: int, requests_per_minute: int, window_seconds: float,
                 log_path: Path, startup_timeout: float = 600.0):
        self.api_key = f"sandbox-shipstation-{SANDBOX_STORE}"
        command = [
            sys.executable, "-m", "sync_pipelines.sandbox.server",
            "--host", "127.0.0.1", "--port", "0",  # port 0: the server binds a free port and prints it
            "--stores", SANDBOX_STORE, "--products", str(products),
            "--requests-per-minute", str(requests_per_minute),
            "--window-seconds", str(window_seconds),
        ]
        super().__init__(command, ready_pattern=r"ShipStation sandbox on (http://\S+)", log_path=log_path,
                         startup_timeout=startup_timeout)

    def stats(self) -> dict[str, Any]:
        import requests

        return requests.get(f"{self.url}/_sandbox/stats", timeout=10).json()


# ----------------------------------------------------------------------------- sync runs
def register_store(account: str, api_key: str) -> None:
    """Registry row (credentials in an env var, as in production) + the dynamic partition."""
    from sync_pipelines.core.registry import upsert_account
    from sync_pipelines.core.dg.resources import AppDatabase

    env_var = f"SHIPSTATION_BENCH_KEY_{account.upper().replace('-', '_')}"
    os.environ[env_var] = api_key
    with AppDatabase().connect() as conn:
        upsert_account(conn, PROVIDER, account, credentials_env=env_var)


class CpuClock:
    """CPU seconds (user + system) used so far by this process, the PostgreSQL cluster (the
    postmaster and its backends, ended or running) and the sandbox process. Unlike wall time,
    hardly moved by other work on a shared machine, so runs on a busy machine stay comparable."""

    def __init__(self, sandbox_pid: int):
        import psutil
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            self._postmaster = psutil.Process(psutil.Process(conn.info.backend_pid).ppid())
        self._sandbox = psutil.Process(sandbox_pid)

    @staticmethod
    def _tree(process: Any) -> float:
        import psutil

        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system  # reaped children
        for child in process.children():
            with contextlib.suppress(psutil.Error):  # ended meanwhile: counted as reaped next time
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        return total

    def read(self) -> dict[str, float]:
        return {"sync_process": time.process_time(), "postgres": self._tree(self._postmaster),
                "sandbox": self._tree(self._sandbox)}


def run_sync(instance: Any, account: str, client: Any, profiler: cProfile.Profile | None = None,
             cpu: CpuClock | None = None) -> dict[str, Any]:
    """One materialization of products + inventory for `account`, with its figures."""
    import dagster as dg

    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.shipstation.assets import inventory, products

    def sync() -> tuple[Any, float]:
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()  # profiles the calling thread only: this one
        try:
            result = dg.materialize(
                [products, inventory],
                partition_key=account,
                instance=instance,
                resources={"app_db": AppDatabase(), "shipstation": client},
                run_config=QUIET_RUN_CONFIG,
            )
        finally:
            if profiler is not None:
                profiler.disable()
        return result, time.perf_counter() - started

    wal_before = wal_position(os.environ["DATABASE_URL"])
    cpu_before = cpu.read() if cpu else {}
    result, wall = in_worker_thread(sync)
    cpu_seconds = {k: round(v - cpu_before[k], 2) for k, v in cpu.read().items()} if cpu else None
    wal_mb = wal_mb_since(os.environ["DATABASE_URL"], wal_before)
    # A step retried by the RetryPolicy would inflate wall time and split the counts: say so.
    step_retries = sum(1 for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY")
    if step_retries:
        print(f"WARNING: {step_retries} step retr{'y' if step_retries == 1 else 'ies'} in this run; "
              "its figures are not a clean measurement", file=sys.stderr, flush=True)
    per_asset = _per_asset(metadata_by_asset(result))
    fetched = int(_sum(per_asset, "records_fetched"))
    inserted = int(_sum(per_asset, "records_inserted"))
    updated = int(_sum(per_asset, "records_updated"))
    sync_seconds = _sum(per_asset, "duration_seconds")
    return {
        "success": result.success,
        "step_retries": step_retries,
        "wall_seconds": round(wall, 2),
        "sync_step_seconds": round(sync_seconds, 2),
        "records_synced": fetched,
        "records_inserted": inserted,
        "records_updated": updated,
        "rows_written": inserted + updated,
        "records_per_second_wall": round(fetched / wall, 1) if wall else None,
        "records_per_second_sync_steps": round(fetched / sync_seconds, 1) if sync_seconds else None,
        "api_calls": int(_sum(per_asset, "api_calls")),
        "http_429s": int(_sum(per_asset, "http_429s")),
        "retries": int(_sum(per_asset, "retries")),
        "client_wait_seconds": round(_sum(per_asset, "wait_seconds"), 3),
        "wal_mb": wal_mb,
        "cpu_seconds": cpu_seconds,
        "per_asset": per_asset,
    }


def table_counts(account: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*) FROM shipstation.{table} WHERE account = %s", (account,)
            ).fetchone()[0]
            for table in ("products", "inventory")
        }


def scenario_unlimited(products: int, work: Path, profile_to: Path | None) -> dict[str, Any]:
    import dagster as dg

    from sync_pipelines.defs.shipstation.assets import stores
    from sync_pipelines.defs.shipstation.client import ShipStationClient

    account = "bench-unlimited"
    print(f"\n[unlimited] starting sandbox with {products:,} products (rate limit off) ...", flush=True)
    with ShipStationSandboxProcess(products=products, requests_per_minute=0, window_seconds=60,
                                   log_path=work / "sandbox-unlimited.log") as sandbox:
        print(f"[unlimited] sandbox on {sandbox.url} (ready after {sandbox.startup_seconds}s)", flush=True)
        register_store(account, sandbox.api_key)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(stores.name, [account])
        client = ShipStationClient(base_url=sandbox.url, requests_per_minute=None)
        cpu = CpuClock(sandbox.proc.pid)
        rss_before = peak_rss_mb()

        profiler = cProfile.Profile() if profile_to else None
        print("[unlimited] first (full) sync ...", flush=True)
        first = run_sync(instance, account, client, profiler, cpu)
        first["peak_rss_mb"] = peak_rss_mb()
        first["rss_after_mb"] = current_rss_mb()
        print(f"[unlimited] first sync: {first['records_synced']:,} records in {first['wall_seconds']}s", flush=True)
        profile = summarize_profile(profiler, profile_to, "full sync") if profiler else None

        print("[unlimited] second (no-change) sync ...", flush=True)
        profiler = cProfile.Profile() if profile_to else None
        second = run_sync(instance, account, client, profiler, cpu)
        second["peak_rss_mb"] = peak_rss_mb()
        if profiler:
            no_change_profile = summarize_profile(profiler, profile_to.with_suffix(".no_change.prof"), "no-change sync")
        print(f"[unlimited] second sync: {second['rows_written']} rows written in {second['wall_seconds']}s",
              flush=True)
        stats = sandbox.stats()
        sandbox_rss = sandbox.rss_mb()
        counts = table_counts(account)
    return {
        "products": products,
        "sandbox": {"command": sandbox.command, "startup_seconds": sandbox.startup_seconds,
                    "rss_mb_at_end": sandbox_rss, "stats": stats},
        "client": {"requests_per_minute": None, "page_size": client.page_size},
        "peak_rss_mb_before_sync": rss_before,
        "first_run": first,
        "no_change_run": second,
        "table_rows_after": counts,
        "profile": profile,
        "no_change_profile": no_change_profile if profile_to else None,
    }


def scenario_limited(products: int, window_seconds: float, work: Path) -> dict[str, Any]:
    import dagster as dg

    from sync_pipelines.defs.shipstation.assets import stores
    from sync_pipelines.defs.shipstation.client import ShipStationClient

    # Own account name: the client's token bucket is process-wide per account, first caller's
    # rate wins, so reusing the unlimited account would silently keep its unlimited bucket.
    account = "bench-limited"
    per_window = SHIPSTATION_REQUESTS_PER_WINDOW
    client_rpm = round(per_window * 60 / window_seconds)
    allowed_rate = per_window / window_seconds
    print(f"\n[limited] starting sandbox with {products:,} products, "
          f"{per_window} requests per {window_seconds:g}s window ...", flush=True)
    with ShipStationSandboxProcess(products=products, requests_per_minute=per_window,
                                   window_seconds=window_seconds, log_path=work / "sandbox-limited.log") as sandbox:
        print(f"[limited] sandbox on {sandbox.url} (ready after {sandbox.startup_seconds}s)", flush=True)
        register_store(account, sandbox.api_key)
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(stores.name, [account])
        client = ShipStationClient(base_url=sandbox.url, requests_per_minute=client_rpm)
        print(f"[limited] sync with client requests_per_minute={client_rpm} ...", flush=True)
        run = run_sync(instance, account, client)
        stats = sandbox.stats()
        counts = table_counts(account)
    sync_seconds = run["sync_step_seconds"]
    achieved = run["api_calls"] / sync_seconds if sync_seconds else 0.0
    # The sandbox's window is fixed and starts at a key's first request: N calls cannot finish
    # sooner than (ceil(N / per_window) - 1) windows after the first one.
    floor_seconds = max(0, -(-run["api_calls"] // per_window) - 1) * window_seconds
    return {
        "products": products,
        "time_scale": SHIPSTATION_WINDOW_SECONDS / window_seconds,
        "sandbox": {"command": sandbox.command, "startup_seconds": sandbox.startup_seconds,
                    "requests_per_window": per_window, "window_seconds": window_seconds, "stats": stats},
        "client": {"requests_per_minute": client_rpm, "page_size": client.page_size,
                   "token_bucket_burst": 5},
        "run": run,
        "achieved_requests_per_second": round(achieved, 2),
        "achieved_requests_per_second_wall": round(run["api_calls"] / run["wall_seconds"], 2),
        "allowed_requests_per_second": round(allowed_rate, 2),
        "share_of_allowed_rate_percent": round(100 * achieved / allowed_rate, 1),
        "fixed_window_floor_seconds": floor_seconds,
        "table_rows_after": counts,
    }


# ----------------------------------------------------------------------------- profiling
_PROFILE_BUCKETS = (
    # (label, file suffix, function name, caller (file suffix, function) or None)
    ("HTTP round trips (requests + waiting on the sandbox)", "core/http.py", "get", None),
    ("JSON decoding of responses", "core/rowcodec.py", "response_json", None),
    ("building rows (typed columns + raw jsonb dump)", "core/entities.py", "build", None),
    ("DB: stored-version lookups (full listings)", "core/sync.py", "lookup", None),
    ("DB: COPY rows into staging", "psycopg/_copy.py", "write_row", ("core/writer.py", "write_batch")),
    ("DB: upsert statement (server side)", "psycopg/connection.py", "execute", ("core/writer.py", "merge")),
    ("DB: whole write_batch (COPY + upsert + staging DDL)", "core/writer.py", "write_batch", None),
    ("DB: seen keys for delete propagation", "core/sync.py", "add", None),
    ("DB: delete propagation (anti-join update)", "core/writer.py", "soft_delete_missing", None),
    ("DB: commits", "psycopg/transaction.py", "__exit__", None),
    ("sync loop total (sync_stream)", "core/sync.py", "sync_stream", None),
)


def summarize_profile(profiler: cProfile.Profile, path: Path, label: str) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(path))
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    buckets: dict[str, float] = {}
    for label, suffix, func, caller in _PROFILE_BUCKETS:
        seconds = 0.0
        for (filename, _line, name), (_cc, _nc, _tt, ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
            if name != func or not filename.replace("\\", "/").endswith(suffix):
                continue
            if caller is None:
                seconds += ct
            else:
                for (cfile, _cl, cname), cstats in callers.items():
                    if cname == caller[1] and cfile.replace("\\", "/").endswith(caller[0]):
                        seconds += cstats[3]
        buckets[label] = round(seconds, 2)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    top_text = out.getvalue()
    print(f"\n[profile: {label}] cumulative seconds by part (parts nest; profiler overhead inflates all):")
    print(f"  {'profiled total':<55} {total:8.2f}")
    for label, seconds in buckets.items():
        print(f"  {label:<55} {seconds:8.2f}")
    print(f"\n[profile: {label}] top functions by own time:")
    print("\n".join(top_text.splitlines()[:45]))
    return {"profile_file": str(path), "profiled_total_seconds": round(total, 2), "parts_seconds": buckets,
            "top_by_tottime": top_text}


# ----------------------------------------------------------------------------- reporting
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cpu(run: dict[str, Any]) -> str:
    cpu = run.get("cpu_seconds")
    return " / ".join(f"{cpu[k]:.2f}" for k in ("sync_process", "postgres", "sandbox")) if cpu else "-"


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = []
    unlimited = results.get("unlimited")
    if unlimited:
        first, second = unlimited["first_run"], unlimited["no_change_run"]
        rows += [
            ("UNLIMITED", ""),
            ("  products / inventory rows in sandbox", f"{unlimited['products']:,} / {unlimited['products']:,}"),
            ("  full sync: records synced", first["records_synced"]),
            ("  full sync: rows written", first["rows_written"]),
            ("  full sync: wall time (s)", first["wall_seconds"]),
            ("  full sync: sync steps (s)", first["sync_step_seconds"]),
            ("  full sync: records/s (wall)", first["records_per_second_wall"]),
            ("  full sync: API calls", first["api_calls"]),
            ("  full sync: peak RSS of this process (MB)", first["peak_rss_mb"]),
            ("  full sync: WAL written (MB)", first["wal_mb"]),
            ("  full sync: CPU s (sync process / PostgreSQL / sandbox)", _cpu(first)),
            ("  no-change sync: wall time (s)", second["wall_seconds"]),
            ("  no-change sync: sync steps (s)", second["sync_step_seconds"]),
            ("  no-change sync: WAL written (MB)", second["wal_mb"]),
            ("  no-change sync: CPU s (sync process / PostgreSQL / sandbox)", _cpu(second)),
            ("  no-change sync: API calls", second["api_calls"]),
            ("  no-change sync: rows written", second["rows_written"]),
            ("  peak RSS after both runs (MB)", second["peak_rss_mb"]),
        ]
        for asset, values in first["per_asset"].items():
            rows.append((f"  full sync [{asset}] fetched / inserted / calls / s",
                         f"{_fmt(values['records_fetched'])} / {_fmt(values['records_inserted'])} / "
                         f"{_fmt(values['api_calls'])} / {_fmt(values['duration_seconds'])}"))
    limited = results.get("rate_limited")
    if limited:
        run = limited["run"]
        stats = limited["sandbox"]["stats"]
        rows += [
            ("RATE-LIMITED (time scaled x{:g})".format(limited["time_scale"]), ""),
            ("  products / inventory rows in sandbox", f"{limited['products']:,} / {limited['products']:,}"),
            ("  API calls", run["api_calls"]),
            ("  wall time (s)", run["wall_seconds"]),
            ("  sync steps (s)", run["sync_step_seconds"]),
            ("  achieved request rate (calls/s, sync steps)", limited["achieved_requests_per_second"]),
            ("  allowed request rate (calls/s)", limited["allowed_requests_per_second"]),
            ("  share of allowed rate (%)", limited["share_of_allowed_rate_percent"]),
            ("  HTTP 429s received (client)", run["http_429s"]),
            ("  client wait in limiter/backoff (s)", run["client_wait_seconds"]),
            ("  sandbox: requests / 429s", f"{sum(stats['requests_by_key'].values()):,} / {stats['total_429']}"),
        ]
    width = max(len(label) for label, _ in rows) + 2 if rows else 0
    print("\n" + "=" * (width + 24))
    for label, value in rows:
        print(f"{label:<{width}}{_fmt(value) if value != '' else ''}")
    print("=" * (width + 24))


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shipstation_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000, help="products (and inventory rows), unlimited scenario")
    parser.add_argument("--scaled-products", type=int, default=20_000, help="products, rate-limited scenario")
    parser.add_argument("--window-seconds", type=float, default=6.0,
                        help="the sandbox's rate-limit window standing in for ShipStation's 60 s")
    parser.add_argument("--skip-unlimited", action="store_true")
    parser.add_argument("--skip-limited", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile both unlimited syncs (figures go to *.profiled.json)")
    args = parser.parse_args(argv)
    Interrupts.install()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / ("shipstation_sync.profiled.json" if args.profile else "shipstation_sync.json")
    results: dict[str, Any] = {**results_header("shipstation_sync", argv), "profiled": args.profile}
    with ThrowawayPostgres(prefix="sync-bench-") as postgres:
        try:
            postgres.start()
            results["machine"] = machine_facts(postgres.use_database("bench"), postgres.data)
            print(f"PostgreSQL: {results['machine']['postgresql']}", flush=True)
            if not args.skip_unlimited:
                profile_to = RESULTS_DIR / "shipstation_sync.prof" if args.profile else None
                results["unlimited"] = scenario_unlimited(args.products, postgres.work, profile_to)
            if not args.skip_limited:
                results["rate_limited"] = scenario_limited(args.scaled_products, args.window_seconds, postgres.work)
            results["peak_rss_mb_at_end"] = peak_rss_mb()
            results["finished_at"] = now_iso()
        except KeyboardInterrupt:
            return report_interrupted("the sandbox and the throwaway PostgreSQL")
    print_table(results)
    write_results(out_path, results)
    return 0

if __name__ == "__main__":
    sys.exit(main())
