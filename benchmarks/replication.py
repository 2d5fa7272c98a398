"""Replication benchmark: our source → destination sync against a hand-written limit and a naive loop.

    .venv/bin/python -m benchmarks.replication [--rows 1000000] [--naive-budget-seconds 90]
        [--skip-naive]

A measurement, not a test: nothing here asserts on timings. It prints a results table and writes
the figures to ``benchmarks/results/replication.json``. Method and measured figures are in
``docs/benchmarks-replication.md``.

Self-contained: it starts its own throwaway embedded PostgreSQL (temp dir, free port,
``fast=False``: fsync, synchronous_commit and full_page_writes on) with two databases, ``source``
(one ``public.orders`` table of ``--rows`` rows, the demo shape: bigint key, text, numeric(12,2),
jsonb, a nullable text, two timestamptz, an index on updated_at) and ``destination``. Every
variant writes its own schema of the destination, so they never share a table. The cluster is
stopped and deleted at the end, also on error or Ctrl-C.

Scenarios, in this order:

1. ``full_empty``: the destination table does not exist yet.
2. ``full_populated``: the destination equals the source; everything is read and compared
   (ours: a run with ``full_refresh``), nothing changes.
3. ``incremental``: 1 % of the rows updated (every 100th id, so nearly every page of the table is
   touched) and 1 % new rows, stamped over one 6-hour schedule interval; read from
   (high-water mark − 10 min).
4. ``incremental_idle``: nothing changed since 3: only the 10-minute overlap is re-read.
5. ``incremental_recent``: like 3, but the updates hit the newest 1 % of the rows (fresh orders
   change, old ones rarely do).

Variants, each run in a **fresh subprocess** so its peak RSS is its own:

- ``ours``: the ``replication/orders`` asset through ``dg.materialize`` (what production runs);
  time = the step's own ``duration_seconds``, wall time of ``materialize`` also recorded.
- ``ours_staging`` (scenario 1 only): the same engine (``replicate``) called directly with
  ``bulk_load=False``: COPY into a staging table and upsert even though the table is empty.
- ``raw``: hand-written psycopg with the same plan and nothing else (the limit): binary COPY out →
  binary COPY in (straight into a table created in the same transaction, FREEZE, primary key
  after; else into a temp staging table and one ``INSERT … ON CONFLICT … WHERE … IS DISTINCT
  FROM``, fed only the staged rows a primary-key probe finds new or different),
  high-water mark stored in the same transaction.
- ``naive``: a server-side cursor fetching 1,000 rows at a time and ``executemany`` of an
  ``INSERT … ON CONFLICT DO UPDATE`` (no change guard: every existing row is rewritten, as the
  seed's "update all fields" does), in one transaction. It stops after
  ``--naive-budget-seconds`` and its full time is extrapolated from the rows it did (flagged).

Between runs the parent (unmeasured) VACUUM ANALYZEs what the previous run loaded, so autovacuum
does not wake up inside someone else's measurement, and CHECKPOINTs, so no run pays for the
previous run's dirty pages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PROJECT_ROOT,
    QUIET_RUN_CONFIG,
    RESULTS_DIR,
    Interrupts,
    ThrowawayPostgres,
    machine_facts,
    now_iso,
    peak_rss_mb,
    report_interrupted,
    results_header,
    wal_mb_since,
    wal_position,
    write_results,
)

COLUMNS = "id, customer_id, status, amount, attributes, note, created_at, updated_at"
OVERLAP = timedelta(minutes=10)

SOURCE_DDL = """
CREATE TABLE public.orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    amount numeric(12,2) NOT NULL,
    attributes jsonb NOT NULL,
    note text NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX orders_updated_at_idx ON public.orders (updated_at);
"""

# Same values as the dev demo, spread 20 s apart so a million rows stay in the past.
SOURCE_ROWS = """
INSERT INTO public.orders
SELECT i,
       1 + mod(i * 7919, 997),
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + mod(i, 5)],
       round(mod(i * 104729, 250000) / 100.0 + 1, 2),
       jsonb_build_object('channel', (ARRAY['web', 'app', 'phone'])[1 + mod(i, 3)],
                          'gift', mod(i, 11) = 0, 'tags', jsonb_build_array('t' || mod(i, 7))),
       CASE WHEN mod(i, 4) = 0 THEN NULL ELSE 'note ' || i END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '20 seconds',
       timestamptz '2024-01-01 00:00:00+00' + i * interval '20 seconds' + mod(i, 48) * interval '1 hour'
FROM generate_series(%s::bigint, %s::bigint) AS i
"""

DEST_DDL = """
CREATE TABLE {table} (
    id bigint NOT NULL,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    amount numeric(12,2) NOT NULL,
    attributes jsonb NOT NULL,
    note text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
    {key}
)
"""

UPSERT_FROM_STAGING = f"""
WITH written AS (
  INSERT INTO raw.orders AS t ({COLUMNS}) SELECT {COLUMNS} FROM stage
  ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
    amount = EXCLUDED.amount, attributes = EXCLUDED.attributes, note = EXCLUDED.note,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
  WHERE (t.customer_id, t.status, t.amount, t.attributes, t.note, t.created_at, t.updated_at)
        IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.status, EXCLUDED.amount, EXCLUDED.attributes,
                          EXCLUDED.note, EXCLUDED.created_at, EXCLUDED.updated_at)
  RETURNING (xmax = 0) AS inserted)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written
"""

# Only staged rows that are new or differ reach the upsert (ON CONFLICT would lock, and WAL-log,
# every identical row too), one primary-key probe each — the same plan as ours.
UPSERT_CHANGED_FROM_STAGING = UPSERT_FROM_STAGING.replace(
    f"SELECT {COLUMNS} FROM stage",
    "SELECT " + ", ".join(f"s.{c}" for c in COLUMNS.split(", ")) + " FROM stage AS s"
    " LEFT JOIN LATERAL (SELECT * FROM raw.orders AS o WHERE o.id = s.id LIMIT 1) AS o ON true"
    " WHERE o.id IS NULL"
    " OR (o.customer_id, o.status, o.amount, o.attributes, o.note, o.created_at, o.updated_at)"
    " IS DISTINCT FROM (s.customer_id, s.status, s.amount, s.attributes, s.note, s.created_at, s.updated_at)",
)

NAIVE_UPSERT = f"""
INSERT INTO naive.orders ({COLUMNS}) VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
  amount = EXCLUDED.amount, attributes = EXCLUDED.attributes, note = EXCLUDED.note,
  created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
"""


# ----------------------------------------------------------------------------- child: variants
def child_main(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in its own process: one variant, one scenario."""
    started_rss = peak_rss_mb()
    runner = {"ours": run_ours, "ours_staging": run_ours_staging, "raw": run_raw, "naive": run_naive}[job["variant"]]
    result = runner(job)
    result.update(variant=job["variant"], scenario=job["scenario"], rss_at_start_mb=started_rss,
                  peak_rss_mb=peak_rss_mb())
    return result


def _spec(schema: str):
    from sync_pipelines.defs.replication.config import TableSpec

    return TableSpec(name="orders", source_schema="public", source_table="orders", destination_schema=schema,
                     destination_table="orders", mode="incremental", cursor_column="updated_at")


def run_ours(job: dict[str, Any]) -> dict[str, Any]:
    import dagster as dg

    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.replication.assets import replication_asset
    from sync_pipelines.defs.replication.resources import SourceDatabase

    rss_after_imports = peak_rss_mb()
    asset = replication_asset(_spec("replica"))
    run_config = {**QUIET_RUN_CONFIG,
                  "ops": {"replication__orders": {"config": {"full_refresh": job["scenario"] == "full_populated"}}}}
    started = time.perf_counter()
    # One instance across the scenarios, as in production: each run sees the previous ones'
    # materializations (the incremental runs derive their row count from the last one).
    Path(job["dagster_home"]).mkdir(exist_ok=True)
    with dg.DagsterInstance.local_temp(job["dagster_home"]) as instance:
        result = dg.materialize(
            [asset], instance=instance, run_config=run_config,
            resources={"app_db": AppDatabase(url=job["dest_url"]), "source_db": SourceDatabase(url=job["source_url"])},
        )
    wall = time.perf_counter() - started
    event = result.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}
    retries = sum(1 for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")
    return {
        "seconds": meta["duration_seconds"], "wall_seconds": round(wall, 3), "rows_read": meta["records_fetched"],
        "inserted": meta["records_inserted"], "updated": meta["records_updated"], "unchanged": meta["records_unchanged"],
        "path": meta["path"], "copy_seconds": meta["copy_seconds"], "write_seconds": meta["write_seconds"],
        "read_scope": meta["read_scope"], "rss_after_imports_mb": rss_after_imports, "step_retries": retries,
        "row_count_from": meta.get("row_count_from"),
    }


def run_ours_staging(job: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    from sync_pipelines.defs.replication.replicate import replicate

    rss_after_imports = peak_rss_mb()
    started = time.perf_counter()
    with psycopg.connect(job["dest_url"], autocommit=True) as conn:
        report = replicate(_spec("ours_staging"), job["source_url"], conn, bulk_load=False)
    return {
        "seconds": round(time.perf_counter() - started, 3), "rows_read": report.fetched,
        "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
        "path": report.path, "copy_seconds": round(report.copy_seconds, 3),
        "write_seconds": round(report.write_seconds, 3), "rss_after_imports_mb": rss_after_imports,
    }


def run_raw(job: dict[str, Any]) -> dict[str, Any]:
    """The limit: the same plan written straight against psycopg, nothing generic."""
    import psycopg

    rss_after_imports = peak_rss_mb()
    started = time.perf_counter()
    scenario = job["scenario"]
    inserted = updated = 0
    with psycopg.connect(job["source_url"]) as src, psycopg.connect(job["dest_url"]) as dst:
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        src.read_only = True
        dst.execute("CREATE SCHEMA IF NOT EXISTS raw")
        dst.execute("CREATE TABLE IF NOT EXISTS raw.cursor (name text PRIMARY KEY, value timestamptz NOT NULL)")
        since = None
        if scenario.startswith("incremental"):
            since = dst.execute("SELECT value FROM raw.cursor WHERE name = 'orders'").fetchone()[0] - OVERLAP
        where, params = (" WHERE updated_at >= %s", (since,)) if since else ("", None)
        high_water = src.execute(f"SELECT max(updated_at) FROM public.orders{where}", params).fetchone()[0]
        copy_out = f"COPY (SELECT {COLUMNS} FROM public.orders{where}) TO STDOUT (FORMAT BINARY)"
        if scenario == "full_empty":
            dst.execute(DEST_DDL.format(table="raw.orders", key=""))
            copy_in = f"COPY raw.orders ({COLUMNS}) FROM STDIN (FORMAT BINARY, FREEZE)"
        else:
            dst.execute("CREATE TEMP TABLE stage (LIKE raw.orders) ON COMMIT DROP")
            copy_in = f"COPY stage ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
        with src.cursor() as out_cur, dst.cursor() as in_cur:
            with out_cur.copy(copy_out, params) as reader, in_cur.copy(copy_in) as writer:
                for block in reader:
                    writer.write(block)
            rows_read = out_cur.rowcount
        copy_seconds = time.perf_counter() - started
        if scenario == "full_empty":
            dst.execute("ALTER TABLE raw.orders ADD PRIMARY KEY (id)")
            inserted = rows_read
        else:
            inserted, updated = dst.execute(UPSERT_CHANGED_FROM_STAGING).fetchone()
        dst.execute("INSERT INTO raw.cursor VALUES ('orders', %s) ON CONFLICT (name) DO UPDATE"
                    " SET value = greatest(raw.cursor.value, EXCLUDED.value)", (high_water,))
        dst.commit()
    return {
        "seconds": round(time.perf_counter() - started, 3), "rows_read": rows_read, "inserted": inserted,
        "updated": updated, "unchanged": rows_read - inserted - updated, "copy_seconds": round(copy_seconds, 3),
        "rss_after_imports_mb": rss_after_imports,
    }


def run_naive(job: dict[str, Any]) -> dict[str, Any]:
    """Row tuples through Python: fetchmany(1000) → executemany(upsert), one transaction."""
    import psycopg
    from psycopg.types.string import TextLoader

    rss_after_imports = peak_rss_mb()
    budget = job["budget_seconds"]
    started = time.perf_counter()
    done = written = 0
    capped = False
    with psycopg.connect(job["source_url"]) as src, psycopg.connect(job["dest_url"]) as dst:
        src.adapters.register_loader("jsonb", TextLoader)  # keep jsonb as text; cast back on insert
        dst.execute("CREATE SCHEMA IF NOT EXISTS naive")
        dst.execute(DEST_DDL.format(table="IF NOT EXISTS naive.orders", key=", PRIMARY KEY (id)"))
        where, params = "", None
        if job["scenario"].startswith("incremental"):
            newest = dst.execute("SELECT max(updated_at) FROM naive.orders").fetchone()[0]
            where, params = " WHERE updated_at >= %s", (newest - OVERLAP,)
        total = src.execute(f"SELECT count(*) FROM public.orders{where}", params).fetchone()[0]
        with src.cursor(name="naive_read") as reader, dst.cursor() as writer:
            reader.itersize = 1000
            reader.execute(f"SELECT {COLUMNS} FROM public.orders{where}", params)
            while batch := reader.fetchmany(1000):
                writer.executemany(NAIVE_UPSERT, batch)
                written += max(writer.rowcount, 0)
                done += len(batch)
                if time.perf_counter() - started > budget:
                    capped = done < total
                    break
        if capped:
            dst.rollback()  # a partial run must not leave half a table for the next scenario
        else:
            dst.commit()
    seconds = time.perf_counter() - started
    rate = done / seconds if seconds else None
    return {
        "seconds": round(seconds, 3), "rows_read": done, "rows_total": total, "rows_written": written,
        "capped_at_budget": capped, "budget_seconds": budget,
        "extrapolated_seconds": round(total / rate, 1) if capped and rate else None,
        "rss_after_imports_mb": rss_after_imports,
    }


# ----------------------------------------------------------------------------- parent
class Bench:
    def __init__(self, source_url: str, dest_url: str, budget: float, work: Path):
        self.source_url, self.dest_url, self.budget, self.work = source_url, dest_url, budget, work
        self.child: subprocess.Popen | None = None

    def run(self, variant: str, scenario: str) -> dict[str, Any]:
        self.settle()
        job = {"variant": variant, "scenario": scenario, "source_url": self.source_url,
               "dest_url": self.dest_url, "budget_seconds": self.budget,
               "dagster_home": str(self.work / "dagster_home")}
        print(f"  {scenario:<18} {variant:<13}", end="", flush=True)
        wal_before = wal_position(self.dest_url)
        log = self.work / f"{scenario}-{variant}.log"
        with open(log, "wb") as stderr:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.replication", "--child", json.dumps(job)],
                cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
            )
            out, _ = self.child.communicate()
        code, self.child = self.child.returncode, None
        if code != 0:
            raise RuntimeError(f"{variant}/{scenario} failed (rc={code}):\n{log.read_text()[-3000:]}")
        result = json.loads(out.strip().splitlines()[-1])
        result["wal_mb"] = wal_mb_since(self.dest_url, wal_before)
        rate = result["rows_read"] / result["seconds"] if result["seconds"] else None
        result["rows_per_second"] = round(rate, 1) if rate else None
        capped = " (capped, extrapolated)" if result.get("capped_at_budget") else ""
        print(f" {result['seconds']:8.2f} s  {result['rows_read']:>9,} rows  {rate or 0:>10,.0f} rows/s"
              f"  {result['peak_rss_mb']:6.1f} MB  {result['wal_mb']:7.1f} MB{capped}", flush=True)
        return result

    def settle(self, vacuum: tuple[str, ...] = ()) -> None:
        import psycopg

        with psycopg.connect(self.dest_url, autocommit=True) as conn:
            for table in vacuum:
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
                    conn.execute(f"VACUUM ANALYZE {table}")
            conn.execute("CHECKPOINT")

    def stop_child(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait(timeout=30)


def seed_source(url: str, rows: int) -> float:
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
        step = 250_000
        for first in range(1, rows + 1, step):
            conn.execute(SOURCE_ROWS, (first, min(first + step - 1, rows)))
        conn.execute("VACUUM (FREEZE, ANALYZE) public.orders")  # no reader pays for hint bits
        conn.execute("CHECKPOINT")
    return round(time.perf_counter() - started, 1)


def mutate_source(url: str, rows: int, *, kind: str, start: str) -> dict[str, Any]:
    """1 % of the original rows updated and 1 % new rows, stamped over the 6 hours from `start`
    (one schedule interval). `uniform`: every 100th row, so nearly every page of the table is
    touched; `recent`: the newest 1 %, as when mostly fresh orders change."""
    import psycopg

    which = "mod(id, 100) = 7" if kind == "uniform" else "id > %(rows)s - %(share)s AND id <= %(rows)s"
    stamp = "%(start)s::timestamptz + mod(id, 21600) * interval '1 second'"
    params = {"rows": rows, "share": rows // 100, "start": start}
    with psycopg.connect(url, autocommit=True) as conn:
        updated = conn.execute(
            "UPDATE public.orders SET status = 'refunded', amount = amount + 1,"
            f" updated_at = {stamp} WHERE {which}",
            params,
        ).rowcount
        inserted = conn.execute(
            "INSERT INTO public.orders"
            f" SELECT top + id, customer_id, 'pending', amount, attributes, note, {stamp}, {stamp}"
            " FROM public.orders, (SELECT max(id) AS top FROM public.orders) AS m WHERE id <= %(share)s",
            params,
        ).rowcount
        conn.execute("VACUUM (FREEZE, ANALYZE) public.orders")
        conn.execute("CHECKPOINT")
    return {"kind": kind, "updated": updated, "inserted": inserted, "stamped_from": start}


def fill_from(dest_url: str, target: str, origin: str) -> None:
    """Setup, not measured: give a capped naive run the populated table the next scenario needs."""
    import psycopg

    with psycopg.connect(dest_url, autocommit=True) as conn, conn.transaction():
        conn.execute(f"TRUNCATE {target}")
        conn.execute(f"INSERT INTO {target} SELECT {COLUMNS} FROM {origin}")


def verify(source_url: str, dest_url: str, table: str) -> bool:
    """Same rows, same values, as PostgreSQL renders them."""
    import psycopg

    query = "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM (SELECT {c} FROM {t}) AS t"
    with psycopg.connect(source_url) as src, psycopg.connect(dest_url) as dst:
        expected = src.execute(query.format(c=COLUMNS, t="public.orders")).fetchone()
        return dst.execute(query.format(c=COLUMNS, t=table)).fetchone() == expected


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    runs = results["runs"]

    def seconds(scenario: str, variant: str) -> float | None:
        found = runs.get(scenario, {}).get(variant)
        if not found:
            return None
        return found.get("extrapolated_seconds") or found["seconds"]

    summary: dict[str, Any] = {}
    for scenario in runs:
        ours, raw = seconds(scenario, "ours"), seconds(scenario, "raw")
        if ours and raw:
            summary[f"{scenario}: ours throughput / raw limit"] = round(raw / ours, 3)
        naive = seconds(scenario, "naive")
        if ours and naive:
            summary[f"{scenario}: naive time / ours"] = round(naive / ours, 1)
    staging = seconds("full_empty", "ours_staging")
    if staging and seconds("full_empty", "ours"):
        speed_up = staging / seconds("full_empty", "ours")
        summary["full_empty: bulk load speed-up over staging upsert"] = round(speed_up, 2)
    for scenario in ("incremental", "incremental_idle", "incremental_recent"):
        incremental = seconds(scenario, "ours")
        for full in ("full_empty", "full_populated"):
            if incremental and seconds(full, "ours"):
                summary[f"ours {scenario} time as % of {full}"] = round(100 * incremental / seconds(full, "ours"), 2)
    peaks = [r["peak_rss_mb"] for s in runs.values() for v, r in s.items() if v.startswith("ours")]
    summary["ours peak RSS, max over runs (MB)"] = max(peaks) if peaks else None
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replication", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the source orders table")
    parser.add_argument("--naive-budget-seconds", type=float, default=90.0,
                        help="time budget per naive run; beyond it the naive time is extrapolated")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(json.loads(args.child)), default=str))
        return 0

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / "replication.json"
    results: dict[str, Any] = {**results_header("replication", argv), "rows": args.rows, "runs": {}}
    bench: Bench | None = None
    with ThrowawayPostgres(prefix="sync-bench-replication-") as postgres:
        Interrupts.install()
        try:
            postgres.start(settings="fsync + synchronous_commit on")
            source_url, dest_url = postgres.database("source"), postgres.database("destination")
            results["machine"] = machine_facts(dest_url, postgres.data)
            results["machine"]["load_average_at_start"] = os.getloadavg()
            print(f"PostgreSQL: {results['machine']['postgresql']}", flush=True)
            print(f"seeding {args.rows:,} source rows ...", flush=True)
            results["seed_seconds"] = seed_source(source_url, args.rows)
            bench = Bench(source_url, dest_url, args.naive_budget_seconds, postgres.work)
            variants = ["ours", "raw"] + ([] if args.skip_naive else ["naive"])
            runs = results["runs"]

            print(f"\n  {'scenario':<18} {'variant':<13} {'time':>10} {'rows read':>15} {'rows/s':>17}"
                  f"  {'peak RSS':>9} {'WAL':>10}", flush=True)
            runs["full_empty"] = {}
            for variant in ["ours", "ours_staging", "raw"] + variants[2:]:
                runs["full_empty"][variant] = bench.run(variant, "full_empty")
                bench.settle(vacuum=(f"{_schema(variant)}.orders",))
            if "naive" in runs["full_empty"] and runs["full_empty"]["naive"]["capped_at_budget"]:
                fill_from(dest_url, "naive.orders", "replica.orders")
                bench.settle(vacuum=("naive.orders",))

            runs["full_populated"] = {}
            for variant in variants:
                runs["full_populated"][variant] = bench.run(variant, "full_populated")
            bench.settle(vacuum=tuple(f"{_schema(v)}.orders" for v in variants))

            results["source_changes"] = [
                mutate_source(source_url, args.rows, kind="uniform", start="2025-01-01 00:00+00")]
            for scenario in ("incremental", "incremental_idle"):
                runs[scenario] = {variant: bench.run(variant, scenario) for variant in variants}
            results["source_changes"].append(
                mutate_source(source_url, args.rows, kind="recent", start="2025-01-01 06:00+00"))
            runs["incremental_recent"] = {variant: bench.run(variant, "incremental_recent") for variant in variants}

            results["verified_equal_to_source"] = {
                variant: verify(source_url, dest_url, f"{_schema(variant)}.orders")
                for variant in variants
                if not (variant == "naive" and runs["incremental_recent"]["naive"]["capped_at_budget"])
            }
            results["summary"] = summarize(results)
            results["peak_rss_mb_parent"] = peak_rss_mb()
            results["machine"]["load_average_at_end"] = os.getloadavg()
            results["finished_at"] = now_iso()
        except KeyboardInterrupt:
            return report_interrupted("the throwaway PostgreSQL")
        finally:
            if bench is not None:
                bench.stop_child()
    print("\nsummary:")
    for label, value in results["summary"].items():
        print(f"  {label:<55} {value}")
    print(f"  verified equal to source: {results['verified_equal_to_source']}")
    write_results(out_path, results)
    return 0


def _schema(variant: str) -> str:
    return {"ours": "replica"}.get(variant, variant)


if __name__ == "__main__":
    sys.exit(main())
