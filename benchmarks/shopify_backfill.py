"""Shopify orders backfill benchmark: how close a full backfill gets to the leaky-bucket ceiling.

    .venv/bin/python -m benchmarks.shopify_backfill [--orders 100000] [--scale 1]

A measurement, not a test: nothing here asserts on timings. It prints a results table and writes
the figures to ``benchmarks/results/shopify_backfill.json`` (``shopify_backfill.scaled-<K>.json``
with ``--scale K``). Method and measured figures are in ``docs/benchmarks-shopify.md``.

Self-contained, like ``benchmarks.shipstation_sync``: a throwaway embedded PostgreSQL (temp dir,
free port, ``fast=False`` so fsync and synchronous commit are on) that ``DATABASE_URL`` points at,
stopped and deleted at the end, also on error; the Shopify sandbox runs as a *separate process*
(``python -m sync_pipelines.sandbox.shopify --port 0 ...``), so the peak RSS measured here is the
sync side only.

Rate limit: Shopify's standard plan is a leaky bucket of 40 calls leaking 2 per second. The
sandbox gets ``--bucket-size 40 --leak-per-second 2×K``; ``--scale K`` (default 1, the real rate)
time-scales the leak only, the bucket keeps its size. The client's limiter is built from
``PLANS[plan]`` (always 2/s for "standard"), so the benchmark creates the limiter for the shop's
key (``shopify:<shop>``) itself, with ``rate_limiter_for(key, rate_per_second=2×K, burst=40)``,
before the run: the process-wide registry then hands the client this limiter (first caller's
settings win). For K = 1 it is exactly what the client would have built.

The allowed ceiling: a leaky bucket of size S leaking L/s admits at most S + L×T calls in any
interval of T seconds that starts with an empty bucket (S to fill it, then one per leaked unit),
so no client can average more than (S + L×T) / T calls/s over a run of T seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    QUIET_RUN_CONFIG,
    RESULTS_DIR,
    SHOPIFY_BUCKET_SIZE,
    SHOPIFY_LEAK_PER_SECOND,
    Interrupts,
    ShopifySandboxProcess,
    ThrowawayPostgres,
    in_worker_thread,
    machine_facts,
    metadata_by_asset,
    now_iso,
    peak_rss_mb,
    register_shop,
    report_interrupted,
    results_header,
    write_results,
)

PROVIDER = "shopify"
SHOP_NAME = "bench"  # sandbox shop = bench.myshopify.com, token sandbox-shopify-bench
BUCKET_SIZE = SHOPIFY_BUCKET_SIZE  # Shopify standard plan: 40 calls ...
LEAK_PER_SECOND = SHOPIFY_LEAK_PER_SECOND  # ... leaking 2 per second
PAGE_SIZE = 250
PER_ASSET_KEYS = (
    "records_fetched", "records_inserted", "records_updated", "records_unchanged", "batches_committed",
    "api_calls", "retries", "http_429s", "http_5xx", "malformed_pages", "wait_seconds", "duration_seconds",
)


# ----------------------------------------------------------------------------- instrumentation
class LimiterTrace:
    """Records what the shared limiter did, without changing it: each acquire (when, how long it
    waited) and each bucket-header sync (the free capacity the sandbox reported vs our own count).
    Wraps the instance's bound methods; the core code is untouched."""

    def __init__(self, limiter: Any):
        self.limiter = limiter
        self.acquires: list[tuple[float, float]] = []  # (monotonic time granted, seconds waited)
        self.syncs: list[tuple[float, float, float]] = []  # (time, reported available, own tokens before)
        self.penalties: list[tuple[float, float]] = []
        original_acquire, original_sync, original_penalize = limiter.acquire, limiter.sync_available, limiter.penalize

        def acquire() -> float:
            waited = original_acquire()
            self.acquires.append((time.monotonic(), waited))
            return waited

        def sync_available(available: float) -> None:
            with limiter._lock:
                now = limiter._clock()
                own = min(limiter.burst, limiter._tokens + (now - limiter._updated) * limiter.rate)
            self.syncs.append((time.monotonic(), float(available), own))
            original_sync(available)

        def penalize(seconds: float) -> None:
            self.penalties.append((time.monotonic(), seconds))
            original_penalize(seconds)

        limiter.acquire, limiter.sync_available, limiter.penalize = acquire, sync_available, penalize

    def summary(self, leak: float) -> dict[str, Any]:
        if not self.acquires:
            return {}
        times = [t for t, _ in self.acquires]
        gaps = [b - a for a, b in zip(times, times[1:])]
        # Capacity the header sync took away from our own count (it only ever lowers it).
        clamps = [own - min(own, available) for _, available, own in self.syncs]
        first, last = times[0], times[-1]
        # Calls granted in the first second (the initial burst) and the steady rate after the burst.
        burst_calls = sum(1 for t in times if t - first <= 1.0)
        after = [t for t in times if t - first > 1.0]
        steady_rate = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 2 else None
        return {
            "calls_granted": len(times),
            "first_to_last_grant_seconds": round(last - first, 3),
            "calls_granted_in_first_second": burst_calls,
            "steady_rate_after_first_second_calls_per_second": round(steady_rate, 4) if steady_rate else None,
            "steady_rate_share_of_leak_percent": round(100 * steady_rate / leak, 1) if steady_rate else None,
            "limiter_wait_seconds_total": round(sum(w for _, w in self.acquires), 3),
            "gap_between_grants_seconds": {
                "p50": round(statistics.median(gaps), 4) if gaps else None,
                "max": round(max(gaps), 4) if gaps else None,
                "over_2x_leak_interval": sum(1 for g in gaps if g > 2 / leak),
            },
            "header_syncs": len(self.syncs),
            "header_syncs_that_lowered_our_count": sum(1 for c in clamps if c > 1e-6),
            "tokens_removed_by_header_syncs": round(sum(clamps), 3),
            "penalties": len(self.penalties),
            "penalty_seconds_total": round(sum(s for _, s in self.penalties), 3),
        }


# ----------------------------------------------------------------------------- the run
def run_backfill(orders: int, scale: float, work: Path) -> dict[str, Any]:
    import dagster as dg

    from sync_pipelines.core.http import rate_limiter_for
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.shopify import assets as shopify_assets
    from sync_pipelines.defs.shopify.client import PLANS, ShopifyClient

    leak = LEAK_PER_SECOND * scale
    print(f"\n[backfill] starting Shopify sandbox with {orders:,} orders, bucket {BUCKET_SIZE} "
          f"leaking {leak:g}/s ...", flush=True)
    with ShopifySandboxProcess(shops=[SHOP_NAME], orders=orders, bucket_size=BUCKET_SIZE, leak_per_second=leak,
                               log_path=work / "sandbox-shopify-backfill.log") as sandbox:
        shop = sandbox.shops[0]
        print(f"[backfill] sandbox on {sandbox.url} (ready after {sandbox.startup_seconds}s)", flush=True)
        register_shop(shop, sandbox.tokens[shop])
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(shopify_assets.shops.name, [shop])
        client = ShopifyClient(base_url_template=sandbox.base_url_template(), plan="standard")
        plan_size, plan_leak = PLANS[client.plan]
        # The client would build rate_limiter_for("shopify:<shop>", PLANS["standard"]) = (40, 2/s);
        # creating it first with the scaled leak makes the registry hand the client ours.
        limiter = rate_limiter_for(f"{PROVIDER}:{shop}", rate_per_second=leak, burst=BUCKET_SIZE)
        assert (limiter.rate, limiter.burst) == (leak, BUCKET_SIZE), "limiter for this shop already existed"
        trace = LimiterTrace(limiter)
        rss_before = peak_rss_mb()

        def sync() -> tuple[Any, float]:
            started = time.perf_counter()
            result = dg.materialize(
                [shopify_assets.orders], partition_key=shop, instance=instance,
                resources={"app_db": AppDatabase(), "shopify": client}, run_config=QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            return result, time.perf_counter() - started

        print(f"[backfill] materializing shopify/orders for {shop} (expect ≈ "
              f"{max(0.0, (orders / PAGE_SIZE - BUCKET_SIZE) / leak):.0f}s of rate limit) ...", flush=True)
        result, wall = in_worker_thread(sync)
        step_retries = sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")
        step_failures = sum(1 for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        if step_retries or not result.success:
            print(f"WARNING: run success={result.success}, {step_retries} step retries: "
                  "its figures are not a clean measurement", file=sys.stderr, flush=True)
        meta = metadata_by_asset(result).get("orders", {})
        stats = sandbox.stats()
        sandbox_rss = sandbox.rss_mb()
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            table_rows = conn.execute("SELECT count(*) FROM shopify.orders WHERE account = %s", (shop,)).fetchone()[0]

    per_asset = {k: meta.get(k) for k in PER_ASSET_KEYS}
    calls = int(meta.get("api_calls") or 0)
    duration = float(meta.get("duration_seconds") or 0.0)
    achieved = calls / duration if duration else 0.0
    ceiling = (BUCKET_SIZE + leak * duration) / duration if duration else 0.0
    # The shortest possible backfill: the first BUCKET_SIZE calls free, then one per leak interval.
    ideal_seconds = max(0.0, (calls - BUCKET_SIZE) / leak)
    return {
        "orders_in_sandbox": orders,
        "time_scale": scale,
        "sandbox": {"command": sandbox.command, "startup_seconds": sandbox.startup_seconds,
                    "bucket_size": BUCKET_SIZE, "leak_per_second": leak, "rss_mb_at_end": sandbox_rss,
                    "stats": stats},
        "client": {"plan": client.plan, "plans_entry": [plan_size, plan_leak], "page_size": client.page_size,
                   "limiter_key": f"{PROVIDER}:{shop}", "limiter_rate_per_second": limiter.rate,
                   "limiter_burst": limiter.burst,
                   "limiter_preconstructed": True, "max_retries": client.max_retries},
        "run": {
            "success": result.success,
            "step_retries": step_retries,
            "step_failures": step_failures,
            "wall_seconds": round(wall, 2),
            **per_asset,
        },
        "orders_synced": int(meta.get("records_fetched") or 0),
        "table_rows_after": table_rows,
        "api_calls": calls,
        "step_duration_seconds": round(duration, 3),
        "http_429s_client": int(meta.get("http_429s") or 0),
        "http_429s_sandbox": stats.get("rate_limited_429"),
        "achieved_calls_per_second": round(achieved, 4),
        "ceiling_calls_per_second": round(ceiling, 4),
        "share_of_ceiling_percent": round(100 * achieved / ceiling, 1) if ceiling else None,
        "ideal_seconds_for_these_calls": round(ideal_seconds, 2),
        "seconds_over_ideal": round(duration - ideal_seconds, 2),
        "peak_rss_mb_before_sync": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "limiter_trace": trace.summary(leak),
    }


# ----------------------------------------------------------------------------- reporting
def print_table(run: dict[str, Any]) -> None:
    rows = [
        (f"orders in sandbox / synced / rows in table",
         f"{run['orders_in_sandbox']:,} / {run['orders_synced']:,} / {run['table_rows_after']:,}"),
        ("bucket (size, leak/s)", f"{run['sandbox']['bucket_size']}, {run['sandbox']['leak_per_second']:g}"),
        ("run success / step retries", f"{run['run']['success']} / {run['run']['step_retries']}"),
        ("API calls", f"{run['api_calls']:,}"),
        ("step wall time, duration_seconds (s)", f"{run['step_duration_seconds']:.2f}"),
        ("dg.materialize wall time (s)", f"{run['run']['wall_seconds']:.2f}"),
        ("ideal time for these calls (s)", f"{run['ideal_seconds_for_these_calls']:.2f}"),
        ("HTTP 429s (client / sandbox)", f"{run['http_429s_client']} / {run['http_429s_sandbox']}"),
        ("achieved call rate (calls/s)", f"{run['achieved_calls_per_second']:.3f}"),
        ("ceiling (size + leak×T)/T (calls/s)", f"{run['ceiling_calls_per_second']:.3f}"),
        ("share of ceiling (%)", f"{run['share_of_ceiling_percent']}"),
        ("client wait in limiter/backoff (s)", f"{run['run']['wait_seconds']}"),
        ("peak RSS, benchmark process (MB)", f"{run['peak_rss_mb']}"),
        ("sandbox process RSS at end (MB)", f"{run['sandbox']['rss_mb_at_end']}"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    print("\n" + "=" * (width + 30))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print("=" * (width + 30))


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shopify_backfill",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the sandbox shop")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="time scale: the bucket leaks 2×K calls/s (size stays 40); 1 = Shopify's real rate")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.scale <= 0:
        parser.error("--orders must be >= 1 and --scale > 0")
    Interrupts.install()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = "shopify_backfill" if args.scale == 1 else f"shopify_backfill.scaled-{args.scale:g}"
    out_path = RESULTS_DIR / f"{name}.json"
    results: dict[str, Any] = results_header("shopify_backfill", argv)
    with ThrowawayPostgres(prefix="shopify-bench-") as postgres:
        try:
            postgres.start()
            results["machine"] = machine_facts(postgres.use_database("bench"), postgres.data)
            print(f"PostgreSQL: {results['machine']['postgresql']}", flush=True)
            results["backfill"] = run_backfill(args.orders, args.scale, postgres.work)
            results["peak_rss_mb_at_end"] = peak_rss_mb()
            results["finished_at"] = now_iso()
        except KeyboardInterrupt:
            return report_interrupted("the sandbox and the throwaway PostgreSQL")
    print_table(results["backfill"])
    write_results(out_path, results)
    return 0 if results["backfill"]["run"]["success"] else 1

if __name__ == "__main__":
    sys.exit(main())
