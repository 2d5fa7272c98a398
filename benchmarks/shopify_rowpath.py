"""Shopify row path benchmark: orders per CPU-second of the sync process, page bytes → committed
rows, with the rate limit off; and dlt's ``rest_api`` source on the same sandbox in the same run.

    .venv/bin/python -m benchmarks.shopify_rowpath [--orders 50000] [--runs 3] [--shapes slim,full]
        [--variants baseline,optimized[,ablation]] [--no-dlt] [--gc default|freeze] [--profile]

A measurement, not a test: nothing here asserts on timings. It prints a results table and writes
the figures to ``benchmarks/results/shopify_rowpath.json``. Method and figures are in
``docs/benchmarks-rowpath.md``.

Set-up, like the other benchmarks: a throwaway embedded PostgreSQL (``fast=False``: fsync and
synchronous commit on) and the Shopify sandbox in a *separate process* on 127.0.0.1 with the
leaky bucket effectively off (size 10⁹, leaking 10⁹/s), so the CPU seconds of this process are the
sync side only. Our path is the production one minus Dagster: ``ShopifyClient.session(account)``
(requests, retries, bucket header) → ``sync_stream`` (row building, ``COPY`` into staging, one
upsert, cursor in the same transaction), batches of 5,000, into a fresh (truncated) table each run.
The client's limiter for the shop is created first with no rate, so nothing here waits on it.

Order shapes: ``slim`` is the sandbox as it is (≈ 1.7 KB of JSON per order); ``full`` is the same
sandbox with Shopify's full REST order (``benchmarks.shopify_full_orders``, ≈ 7.3 KB), each in its
own sandbox process. Variants of our path: ``baseline`` swaps the row path back to the code it had
before this benchmark was written (``levers_on``), ``optimized`` is the code as it is, ``ablation``
is the optimized path without one lever at a time; they run interleaved with dlt in each round.

Figures per run of our path:
- wall orders/s: orders / wall seconds of ``sync_stream`` (on a 2-core machine the sandbox and
  PostgreSQL compete for the same cores, so this is a machine figure, not a per-core one);
- orders per CPU-second: orders / (user + system CPU seconds of this process during the sync), i.e.
  what one core of the sync process does from response bytes to committed rows; the sandbox's and
  PostgreSQL's CPU seconds are reported next to it (from psutil), not in it.

dlt (``--no-dlt`` skips it) runs ``benchmarks/dlt_shopify_runner.py`` in its own virtualenv
(``.venv-dlt``, made from ``benchmarks/requirements-dlt.txt`` on first use; ``--dlt-python`` points
elsewhere) against the same sandbox, loading into a fresh dataset of the same PostgreSQL with
dlt's ``postgres`` destination; its figures are measured the same way (wall, and CPU seconds of
its process and children), so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks.common import (
    PROJECT_ROOT,
    RESULTS_DIR,
    Interrupts,
    SandboxProcess,
    ThrowawayPostgres,
    machine_facts,
    now_iso,
    peak_rss_mb,
    report_interrupted,
    results_header,
    write_results,
)

PROVIDER = "shopify"
SHOP_NAME = "rowpath"
UNLIMITED_BUCKET = 10**9  # calls, leaking as many per second: the rate limit is off
DLT_VENV = PROJECT_ROOT / ".venv-dlt"
DLT_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-dlt.txt"
DLT_RUNNER = Path(__file__).resolve().parent / "dlt_shopify_runner.py"


def cpu_seconds(pid: int | None = None) -> float | None:
    """user + system CPU seconds of `pid` (default: this process, all threads)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except Exception:  # another user's process or gone: not worth failing over
        return None


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 3)


# ----------------------------------------------------------------------------- levers
LEVERS = ("decode", "build", "encode", "rawbytes", "project")
LEVER_DOC = {
    "decode": "response bytes parsed by orjson (rowcodec.response_json) instead of requests' .json()",
    "build": "row builder with paths split once and plain-dict reads (entities.digger) instead of dig()",
    "encode": "raw/jsonb columns serialized by orjson (rowcodec.dumps_json) instead of json.dumps",
    "rawbytes": "raw column written from each record's own bytes in the page (rowcodec.loads_page, "
                "raw_json) instead of re-serializing the parsed record (needs decode)",
    "project": "only the record keys the orders table reads are decoded (Stream(project=True), "
               "rowcodec.projected); the rest of each record is skipped by the parser (needs rawbytes)",
}


def _legacy_row_builder(table: Any, dumps: Any, raw: Any = None) -> Any:
    """The row builder as it was before the row-path work (entities.row_builder at 042cf5b),
    verbatim but for `dumps`, the raw/jsonb serializer (the `encode` lever), and `raw`, the raw
    column's (default `dumps`; the `rawbytes` lever)."""
    raw = raw or dumps
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import JSONB

    from sync_pipelines.core.entities import dig, parse_instant

    def _getter(column: Any) -> Any:
        path = column.info.get("path", column.name)
        if isinstance(column.type, JSONB):
            def get_json(account: str, record: Any) -> Any:
                value = dig(record, path)
                return None if value is None else dumps(value)

            return get_json
        if isinstance(column.type, sa.DateTime):
            return lambda account, record: parse_instant(dig(record, path))
        return lambda account, record: dig(record, path)

    getters: list[Any] = []
    updated_at_path = table.info.get("updated_at_path")
    for column in table.columns:
        name = column.name
        if name == "synced_at":
            continue
        if name == "account":
            getters.append(lambda account, record: account)
        elif name == "raw":
            getters.append(lambda account, record: raw(record))
        elif name == "source_updated_at":
            getters.append(
                (lambda account, record: parse_instant(dig(record, updated_at_path)))
                if updated_at_path
                else (lambda account, record: None)
            )
        else:
            getters.append(_getter(column))

    def build(account: str, record: Any) -> tuple:
        return tuple(get(account, record) for get in getters)

    return build


@contextlib.contextmanager
def levers_on(enabled: set[str]):
    """Switch the levers not in `enabled` back to the code they replaced, for one run (module
    attributes are swapped and restored; no lever on = the row path as it was before)."""
    from sync_pipelines.core import entities, http, rowcodec, sync

    def json_dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    dumps = rowcodec.dumps_json if "encode" in enabled else json_dumps
    raw = rowcodec.raw_json if "rawbytes" in enabled else dumps
    swaps = [(entities, "dumps_json", dumps), (entities, "raw_json", raw)]
    if "decode" not in enabled:
        swaps.append((http, "response_json", lambda resp, list_key=None: resp.json()))
    elif "rawbytes" not in enabled:
        swaps.append((http, "response_json", lambda resp, list_key=None: rowcodec.response_json(resp)))
    if "build" not in enabled:
        swaps.append((sync, "row_builder", lambda table: _legacy_row_builder(table, dumps, raw)))
    saved = [(module, name, getattr(module, name)) for module, name, _ in swaps]
    try:
        for module, name, value in swaps:
            setattr(module, name, value)
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


# ----------------------------------------------------------------------------- our path
def run_ours(sandbox: SandboxProcess, dsn: str, levers: set[str], profile: Path | None = None) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    from sync_pipelines.core import cursors
    from sync_pipelines.core.database import ensure_tables, qualified
    from sync_pipelines.core.http import rate_limiter_for
    from sync_pipelines.core.registry import Account
    from sync_pipelines.core.sync import Stream, sync_stream
    from sync_pipelines.defs.shopify.client import ShopifyClient
    from sync_pipelines.defs.shopify.tables import ORDERS

    shop = sandbox.shops[0]
    env_var = "SHOPIFY_ROWPATH_TOKEN"
    os.environ[env_var] = sandbox.tokens[shop]
    account = Account(provider=PROVIDER, account=shop, display_name=shop, active=True, credentials_env=env_var,
                      sync_enabled=True, cadence="", lookback_days=0)
    # The process-wide registry hands the client this limiter (first caller wins): no rate.
    rate_limiter_for(f"{PROVIDER}:{shop}", rate_per_second=None, burst=1)
    client = ShopifyClient(base_url_template=sandbox.base_url_template(), plan="plus")
    stream = Stream(name=f"{PROVIDER}/orders", table=ORDERS, ordered=True, project="project" in levers)
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_tables(conn, [ORDERS, cursors.CURSORS])
        conn.execute(sql.SQL("TRUNCATE {}").format(qualified(ORDERS)))
        conn.execute(sql.SQL("DELETE FROM {} WHERE stream = %s AND account = %s").format(qualified(cursors.CURSORS)),
                     (stream.name, shop))
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with client.session(account) as session:
            sandbox_cpu0, backend_cpu0 = cpu_seconds(sandbox.proc.pid), cpu_seconds(backend)
            profiler = None
            if profile is not None:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            with levers_on(levers):
                cpu0, wall0 = cpu_seconds(), time.perf_counter()
                report = sync_stream(conn, stream, shop, session.orders)
                wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            sandbox_cpu, backend_cpu = cpu_seconds(sandbox.proc.pid), cpu_seconds(backend)
            calls = session.http.stats.calls
            throttled = session.http.stats.throttled
        rows = conn.execute("SELECT count(*) FROM shopify.orders WHERE account = %s", (shop,)).fetchone()[0]
    orders = report.fetched
    return {
        "levers": sorted(levers, key=LEVERS.index),
        "orders_fetched": orders,
        "rows_in_table": rows,
        "inserted": report.counts.inserted,
        "batches": report.batches,
        "api_calls": calls,
        "http_429s": throttled,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "wall_orders_per_second": round(orders / wall, 1),
        "orders_per_cpu_second": round(orders / cpu, 1),
        "sandbox_cpu_seconds": _delta(sandbox_cpu0, sandbox_cpu),
        "postgres_backend_cpu_seconds": _delta(backend_cpu0, backend_cpu),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],  # the machine is shared
        "profiled": profile is not None,
    }


# ----------------------------------------------------------------------------- dlt
def dlt_python(explicit: str | None) -> str:
    """The dlt virtualenv's python, made from requirements-dlt.txt on first use."""
    if explicit:
        return explicit
    python = DLT_VENV / "bin" / "python"
    if not python.exists():
        print(f"[dlt] creating {DLT_VENV.relative_to(PROJECT_ROOT)} from "
              f"{DLT_REQUIREMENTS.relative_to(PROJECT_ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(DLT_REQUIREMENTS)], check=True)
    return str(python)


def run_dlt(python: str, sandbox: SandboxProcess, dsn: str, work: Path, dataset: str) -> dict[str, Any]:
    shop = sandbox.shops[0]
    base_url = sandbox.base_url_template().format(shop=shop) + "/admin/api/2025-10"
    # dlt insists on a password in the credentials; the throwaway cluster trusts loopback and ignores it.
    parts = urlsplit(dsn)
    if parts.password is None:
        dsn = urlunsplit(parts._replace(netloc=f"{parts.username}:unused@{parts.hostname}:{parts.port}"))
    command = [python, str(DLT_RUNNER), "--base-url", base_url, "--token", sandbox.tokens[shop], "--dsn", dsn,
               "--work", str(work / f"dlt-{dataset}"), "--dataset", dataset]
    sandbox_cpu0 = cpu_seconds(sandbox.proc.pid)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True)
    outer_wall = time.perf_counter() - started
    sandbox_cpu = cpu_seconds(sandbox.proc.pid)
    if done.returncode != 0:
        raise RuntimeError(f"dlt runner failed (rc={done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    orders = figures["orders_in_table"]
    cpu = figures["cpu_seconds"] + figures["children_cpu_seconds"]
    figures.update({
        "process_wall_seconds_incl_startup": round(outer_wall, 3),
        "wall_orders_per_second": round(orders / figures["wall_seconds"], 1),
        "orders_per_cpu_second": round(orders / cpu, 1) if cpu else None,
        "sandbox_cpu_seconds": _delta(sandbox_cpu0, sandbox_cpu),
    })
    return figures


# ----------------------------------------------------------------------------- sandbox
class RowpathSandbox(SandboxProcess):
    """The Shopify sandbox (``shape="slim"``: as it is; ``"full"``: orders of Shopify's full REST
    shape, ``benchmarks.shopify_full_orders``) in a child process, rate limit off."""

    def __init__(self, *, shape: str, orders: int, log_path: Path):
        module = {"slim": "sync_pipelines.sandbox.shopify", "full": "benchmarks.shopify_full_orders"}[shape]
        self.shops = [f"{SHOP_NAME}.myshopify.com"]
        self.tokens = {self.shops[0]: f"sandbox-shopify-{SHOP_NAME}"}
        command = [
            sys.executable, "-m", module, "--host", "127.0.0.1", "--port", "0", "--shops", SHOP_NAME,
            "--orders", str(orders), "--customers", "5000", "--products", "300",
            "--bucket-size", str(UNLIMITED_BUCKET), "--leak-per-second", str(UNLIMITED_BUCKET),
        ]
        super().__init__(command, ready_pattern=r"Shopify sandbox on (http://\S+)", log_path=log_path,
                         thread_name="shopify-sandbox-stdout")

    def base_url_template(self) -> str:
        return f"{self.url}/shops/{{shop}}"

    def order_bytes(self) -> float:
        """Mean JSON size of an order on a page of 250 (compact, as served)."""
        import requests

        shop = self.shops[0]
        response = requests.get(f"{self.base_url_template().format(shop=shop)}/admin/api/2025-10/orders.json",
                                params={"limit": 250, "status": "any"},
                                headers={"X-Shopify-Access-Token": self.tokens[shop]}, timeout=60)
        response.raise_for_status()
        return round(len(response.content) / len(response.json()["orders"]), 0)


# ----------------------------------------------------------------------------- reporting
def summarize(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [r[key] for r in runs]
    return {"median": round(statistics.median(values), 1), "best": max(values), "worst": min(values)}


def variant_name(levers: set[str]) -> str:
    if levers == set(LEVERS):
        return "optimized"
    if not levers:
        return "baseline"
    missing = [lever for lever in LEVERS if lever not in levers]
    if len(missing) == 1:
        return f"optimized-without-{missing[0]}"
    return "only-" + "+".join(lever for lever in LEVERS if lever in levers)


def _per_cpu(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{run['orders_per_cpu_second']:,.0f}" for run in runs)


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = []
    for shape, block in results["shapes"].items():
        rows.append((f"[{shape}] orders / mean JSON bytes per order",
                     f"{block['orders_in_sandbox']:,} / {block['order_json_bytes']:,.0f}"))
        for name, variant in block["ours"].items():
            rows.append((f"[{shape}] ours {name}: wall orders/s | per CPU-s (median)",
                         f"{variant['wall_orders_per_second']['median']:,.0f} | "
                         f"{variant['orders_per_cpu_second']['median']:,.0f}   "
                         f"(runs per CPU-s: {_per_cpu(variant['runs'])})"))
        if "dlt" in block:
            dlt = block["dlt"]
            rows.append((f"[{shape}] dlt rest_api: wall orders/s | per CPU-s (median)",
                         f"{dlt['wall_orders_per_second']['median']:,.0f} | {dlt['orders_per_cpu_second']['median']:,.0f}"
                         f"   (runs per CPU-s: {_per_cpu(dlt['runs'])})"))
            ratio = block["ratio_optimized_to_dlt"]
            rows.append((f"[{shape}] ratio ours/dlt: wall | per CPU-s", f"{ratio['wall']:.1f}x | {ratio['per_cpu_second']:.1f}x"))
    width = max(len(label) for label, _ in rows) + 2
    print("\n" + "=" * (width + 50))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print("=" * (width + 50))


def parse_variants(text: str) -> list[set[str]]:
    """"baseline,optimized" or lever sets like "decode+copy"; "ablation" = optimized without each lever."""
    variants: list[set[str]] = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item == "baseline":
            variants.append(set())
        elif item == "optimized":
            variants.append(set(LEVERS))
        elif item == "ablation":
            variants.extend(set(LEVERS) - {lever} for lever in LEVERS)
        else:
            levers = set(item.split("+"))
            if not levers <= set(LEVERS):
                raise ValueError(f"unknown lever in {item!r} (levers: {', '.join(LEVERS)})")
            variants.append(levers)
    return variants


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shopify_rowpath", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="orders in the sandbox shop")
    parser.add_argument("--shapes", default="slim,full",
                        help="order shapes: slim (the sandbox's) and/or full (Shopify's full REST order)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each variant and of dlt (fresh table each time)")
    parser.add_argument("--variants", default="baseline,optimized",
                        help="our path's variants: baseline, optimized, ablation, or levers joined by + "
                             f"({', '.join(LEVERS)})")
    parser.add_argument("--no-dlt", action="store_true", help="measure our path only")
    parser.add_argument("--dlt-python", help="python of a virtualenv with dlt[postgres] (default: .venv-dlt)")
    parser.add_argument("--profile", action="store_true",
                        help="one extra run of the optimized path per shape under cProfile "
                             "(benchmarks/results/shopify_rowpath.<shape>.prof)")
    parser.add_argument("--gc", choices=("default", "freeze"), default="default",
                        help="freeze: gc.freeze() after the imports, so the collector never scans the import-time "
                             "heap (a deployment setting this measures, not what production does)")
    parser.add_argument("--output", help="results file name (default shopify_rowpath.json)")
    args = parser.parse_args(argv)
    shapes = [shape.strip() for shape in args.shapes.split(",") if shape.strip()]
    try:
        variants = parse_variants(args.variants)
    except ValueError as error:
        parser.error(str(error))
    if args.orders < 1 or args.runs < 1 or not variants or not set(shapes) <= {"slim", "full"}:
        parser.error("--orders and --runs must be >= 1, --variants not empty, --shapes slim and/or full")
    Interrupts.install()
    python = None if args.no_dlt else dlt_python(args.dlt_python)
    if args.gc == "freeze":
        import gc

        import sync_pipelines.defs.shopify.client  # noqa: F401  -- what a run has imported when it syncs

        gc.collect()
        gc.freeze()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / (args.output or "shopify_rowpath.json")
    results: dict[str, Any] = results_header("shopify_rowpath", argv)
    results["levers"] = LEVER_DOC
    results["gc"] = args.gc
    results["shapes"] = {}
    complete = True
    with ThrowawayPostgres(prefix="shopify-rowpath-") as postgres:
        try:
            postgres.start()
            dsn = postgres.use_database("bench")
            results["machine"] = machine_facts(dsn, postgres.data)
            print(f"PostgreSQL: {results['machine']['postgresql']}", flush=True)
            for shape in shapes:
                print(f"\n[{shape}] starting Shopify sandbox with {args.orders:,} orders, rate limit off ...", flush=True)
                with RowpathSandbox(shape=shape, orders=args.orders,
                                    log_path=postgres.work / f"sandbox-shopify-{shape}.log") as sandbox:
                    block: dict[str, Any] = {
                        "orders_in_sandbox": args.orders, "order_json_bytes": sandbox.order_bytes(),
                        "sandbox": {"command": sandbox.command, "startup_seconds": sandbox.startup_seconds},
                    }
                    print(f"[{shape}] sandbox on {sandbox.url} (ready after {sandbox.startup_seconds}s), "
                          f"{block['order_json_bytes']:,.0f} bytes of JSON per order", flush=True)
                    ours: dict[str, list[dict[str, Any]]] = {variant_name(v): [] for v in variants}
                    dlt: list[dict[str, Any]] = []
                    # Interleaved (variants, dlt, variants, dlt, ...): a drift in machine load hits every side.
                    for i in range(args.runs):
                        for levers in variants:
                            name = variant_name(levers)
                            run = run_ours(sandbox, dsn, levers)
                            ours[name].append(run)
                            complete &= run["rows_in_table"] == args.orders
                            print(f"[{shape}] run {i + 1}/{args.runs} ours {name}: {run['wall_orders_per_second']:,.0f} "
                                  f"orders/s wall, {run['orders_per_cpu_second']:,.0f} per CPU-s", flush=True)
                        if python:
                            run = run_dlt(python, sandbox, dsn, postgres.work, f"dlt_{shape}_{i + 1}")
                            dlt.append(run)
                            complete &= run["orders_in_table"] == args.orders
                            print(f"[{shape}] run {i + 1}/{args.runs} dlt: {run['wall_orders_per_second']:,.0f} "
                                  f"orders/s wall, {run['orders_per_cpu_second']:,.0f} per CPU-s", flush=True)
                    if args.profile:
                        profile = RESULTS_DIR / f"shopify_rowpath.{shape}.prof"
                        print(f"[{shape}] profiled run -> {profile.relative_to(PROJECT_ROOT)}", flush=True)
                        block["profiled_run"] = run_ours(sandbox, dsn, set(LEVERS), profile)
                block["ours"] = {name: {"runs": runs, "wall_orders_per_second": summarize(runs, "wall_orders_per_second"),
                                        "orders_per_cpu_second": summarize(runs, "orders_per_cpu_second")}
                                 for name, runs in ours.items()}
                if dlt:
                    block["dlt"] = {"runs": dlt, "wall_orders_per_second": summarize(dlt, "wall_orders_per_second"),
                                    "orders_per_cpu_second": summarize(dlt, "orders_per_cpu_second")}
                    best = block["ours"].get("optimized") or next(iter(block["ours"].values()))
                    block["ratio_optimized_to_dlt"] = {
                        "wall": round(best["wall_orders_per_second"]["median"]
                                      / block["dlt"]["wall_orders_per_second"]["median"], 2),
                        "per_cpu_second": round(best["orders_per_cpu_second"]["median"]
                                                / block["dlt"]["orders_per_cpu_second"]["median"], 2),
                    }
                results["shapes"][shape] = block
            results["peak_rss_mb_at_end"] = peak_rss_mb()
            results["finished_at"] = now_iso()
        except KeyboardInterrupt:
            return report_interrupted("the sandbox and the throwaway PostgreSQL")
    print_table(results)
    write_results(out_path, results)
    if not complete:
        print("WARNING: a run did not load every order; its figures are not a clean measurement", file=sys.stderr)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
