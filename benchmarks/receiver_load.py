"""Webhook receiver benchmark: delivery throughput/latency, then webhook-to-row latency.

    .venv/bin/python -m benchmarks.receiver_load [--deliveries 5000] [--concurrency 16] [--workers 1]
        [--client raw|requests] [--skip-latency] [--updates 200] [--batch-size 10] [--batch-interval 1.0] [--tick-seconds 0.5]

A measurement, not a test: nothing here asserts on timings. It prints a results table and writes
the figures to ``benchmarks/results/receiver_load.json``. Method and measured figures are in
``docs/benchmarks-shopify.md``.

Self-contained, like ``benchmarks.shipstation_sync``: a throwaway embedded PostgreSQL (temp dir,
free port, ``fast=False``: fsync and synchronous commit on, so every stored delivery is a durable
commit) that ``DATABASE_URL`` points at, stopped and deleted at the end, also on error. The
receiver runs as its own process, ``python -m sync_pipelines.receiver --port P``, with
``DATABASE_URL`` and ``SHOPIFY_WEBHOOK_SECRET`` in its environment. Everything is on 127.0.0.1.

1. Load: one active shop is registered (``upsert_account``), then ``--deliveries`` correctly signed
   ``orders/updated`` deliveries (unique ``X-Shopify-Webhook-Id`` each, compact order JSON of
   roughly 2-4 KB) are POSTed from a pool of ``--concurrency`` threads, one ``requests.Session``
   per thread. Bodies and signatures are prepared before the clock starts.
2. Webhook-to-row latency: the Shopify sandbox runs as a separate process delivering to the
   receiver; a second shop is backfilled (``orders`` asset) and subscribed through
   ``management.manage(..., "register", address)``. A trigger thread updates ``--updates`` distinct
   orders through ``/_sandbox/mutate`` (``--batch-size`` per batch, batches ``--batch-interval``
   seconds apart on average, each gap drawn from [0.5, 1.5]× that so that batches arrive at every
   phase of the sensor tick), while an in-process loop evaluates ``shopify_inbox_sensor`` every
   ``--tick-seconds`` (``dg.build_sensor_context`` on a persistent ``dg.instance_for_test()``,
   carrying the cursor) and executes each requested ``apply_job`` run in process. This loop stands
   in for the Dagster daemon: in production the sensor's minimum interval (5 s) and run launch
   overhead dominate the latency measured here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    QUIET_RUN_CONFIG,
    RESULTS_DIR,
    ChildServer,
    Interrupts,
    ShopifySandboxProcess,
    ThrowawayPostgres,
    in_worker_thread,
    machine_facts,
    now_iso,
    peak_rss_mb,
    register_shop,
    report_interrupted,
    results_header,
    write_results,
)

PROVIDER = "shopify"
SECRET = "benchmark-receiver-webhook-secret"
LOAD_SHOP = "load-bench.myshopify.com"
LATENCY_SHOP_NAME = "latency-bench"  # sandbox shop latency-bench.myshopify.com
API_VERSION = "2025-10"


# ----------------------------------------------------------------------------- helpers
def percentiles(values: list[float], digits: int = 2) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    ordered = sorted(values)

    def pick(q: float) -> float:  # nearest-rank
        return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered) + 0.5)) - 1))]

    return {"count": len(ordered), "p50": round(pick(0.50), digits), "p95": round(pick(0.95), digits),
            "p99": round(pick(0.99), digits), "max": round(ordered[-1], digits),
            "mean": round(statistics.fmean(ordered), digits)}


def cpu_seconds(pid: int) -> float | None:
    """CPU of a process and its live children (the receiver's worker processes with --workers)."""
    try:
        import psutil

        process = psutil.Process(pid)
        total = 0.0
        for each in (process, *process.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = each.cpu_times()
                total += times.user + times.system
        return total
    except Exception:
        return None


def postgres_cpu_seconds(data_dir: Path) -> float | None:
    """CPU of the throwaway cluster: the postmaster, its live children, and children it has reaped."""
    try:
        import psutil

        postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
        own = postmaster.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for child in postmaster.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
        return total
    except Exception:
        return None


def machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    try:
        import psutil

        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0), sum(times)
    except Exception:
        return None


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ReceiverProcess(ChildServer):
    """`python -m sync_pipelines.receiver --port P` with the benchmark's database and secret."""

    def __init__(self, database_url: str, log_path: Path, startup_timeout: float = 60.0, workers: int = 1):
        import requests

        from sync_pipelines.core.embedded import _free_port

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": database_url, "SHOPIFY_WEBHOOK_SECRET": SECRET,
               "PYTHONUNBUFFERED": "1"}
        env.pop("SHOPIFY_WEBHOOK_SECRET_PREVIOUS", None)
        started = time.monotonic()
        self._spawn([sys.executable, "-m", "sync_pipelines.receiver", "--host", "127.0.0.1", "--port", str(self.port),
                     "--workers", str(workers)], log_path, env, read_stdout=False)
        deadline = started + startup_timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"receiver exited during startup:\n{log_path.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"receiver not healthy within {startup_timeout:.0f}s ({log_path})")
            time.sleep(0.1)
        self.startup_seconds = round(time.monotonic() - started, 2)
        self.workers = workers

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/{PROVIDER}"


# ----------------------------------------------------------------------------- payloads
_STREETS = ("Main St", "Oak Ave", "Harbor Rd", "Elm St", "Market St", "Cedar Ln", "Pine St", "Lake Dr")
_CITIES = (("Portland", "Oregon", "OR", "97201"), ("Austin", "Texas", "TX", "73301"),
           ("Denver", "Colorado", "CO", "80202"), ("Boston", "Massachusetts", "MA", "02108"))


def order_bodies(count: int, seed: int = 11) -> list[bytes]:
    """`count` distinct orders as Shopify renders them (the sandbox's REST JSON), with the address,
    shipping and client fields a real order webhook carries, serialized compactly (~2-4 KB)."""
    from sync_pipelines.sandbox.shopify import ShopifySandbox

    box = ShopifySandbox(seed=seed)
    try:
        box.add_shop(LOAD_SHOP, "unused-token", orders=count, customers=max(50, count // 5), products=300)
        orders = box.records(LOAD_SHOP, "orders")
    finally:
        box.close()
    rng = random.Random(seed)
    bodies = []
    for order in orders:
        customer = order.get("customer") or {}
        city, province, code, zip_code = _CITIES[rng.randrange(len(_CITIES))]
        address = {
            "first_name": customer.get("first_name") or "Guest", "last_name": customer.get("last_name") or "Buyer",
            "name": f"{customer.get('first_name') or 'Guest'} {customer.get('last_name') or 'Buyer'}",
            "address1": f"{rng.randrange(1, 9999)} {_STREETS[rng.randrange(len(_STREETS))]}", "address2": None,
            "city": city, "province": province, "province_code": code, "zip": zip_code,
            "country": "United States", "country_code": "US", "phone": None, "company": None,
            "latitude": round(rng.uniform(25, 48), 6), "longitude": round(rng.uniform(-122, -71), 6),
        }
        order |= {
            "billing_address": address, "shipping_address": dict(address),
            "shipping_lines": [{"id": rng.randrange(10**12), "title": "Standard Shipping", "code": "STANDARD",
                                "price": "5.00", "source": "shopify", "carrier_identifier": None,
                                "discounted_price": "5.00", "tax_lines": []}],
            "tax_lines": [{"title": "State Tax", "price": order["total_tax"], "rate": 0.08}],
            "client_details": {"accept_language": "en-US", "browser_ip": "203.0.113.7",
                               "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
            "discount_codes": [], "note_attributes": [], "payment_gateway_names": ["shopify_payments"],
            "landing_site": "/", "referring_site": "https://www.google.com/", "buyer_accepts_marketing": False,
            "order_status_url": f"https://{LOAD_SHOP}/orders/{uuid.UUID(int=rng.getrandbits(128)).hex}/authenticate",
        }
        bodies.append(json.dumps(order, separators=(",", ":")).encode())
    return bodies


def prepared_deliveries(bodies: list[bytes]) -> list[tuple[bytes, dict[str, str]]]:
    from sync_pipelines.defs.shopify import webhooks

    triggered = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = []
    for body in bodies:
        out.append((body, {
            "Content-Type": "application/json",
            webhooks.TOPIC_HEADER: "orders/updated",
            webhooks.HMAC_HEADER: webhooks.signature(SECRET, body),
            webhooks.SHOP_HEADER: LOAD_SHOP,
            webhooks.WEBHOOK_ID_HEADER: str(uuid.uuid4()),
            webhooks.EVENT_ID_HEADER: str(uuid.uuid4()),
            webhooks.TRIGGERED_AT_HEADER: triggered,
            webhooks.API_VERSION_HEADER: API_VERSION,
        }))
    return out


# ----------------------------------------------------------------------------- phase 1: load
class RawClient:
    """One keep-alive HTTP/1.1 connection with requests prepared as bytes: a load generator that
    spends ~30 µs of CPU per request instead of `requests`' ~700 µs, so that on a small machine
    the receiver, not the client, is what is measured. Reconnects when a response says close."""

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.sock: Any = None

    def request(self, raw: bytes) -> int:
        import socket

        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the receiver")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.lower().split(b"\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length:")), 0)
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the receiver")
            body += chunk
        if b"connection: close" in lines:
            self.close()
        return int(lines[0].split()[1])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def raw_request(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_load(receiver: ReceiverProcess, deliveries: int, concurrency: int, max_seconds: float,
             pg_data: Path, client: str = "raw") -> dict[str, Any]:
    import psycopg
    import requests

    print(f"\n[load] preparing {deliveries:,} signed deliveries ...", flush=True)
    prepared = prepared_deliveries(order_bodies(deliveries))
    sizes = [len(body) for body, _ in prepared]
    local = threading.local()
    sessions: list[requests.Session] = []
    sessions_lock = threading.Lock()
    deadline = time.monotonic() + max_seconds

    def session() -> requests.Session:
        s = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
            with sessions_lock:
                sessions.append(s)
        return s

    raws = [raw_request(receiver.webhook_url, body, headers) for body, headers in prepared] if client == "raw" else []
    clients: list[RawClient] = []

    def raw_client() -> RawClient:
        c = getattr(local, "raw", None)
        if c is None:
            c = local.raw = RawClient("127.0.0.1", receiver.port)
            with sessions_lock:
                clients.append(c)
        return c

    def send_raw(index: int) -> tuple[int | None, float | None, str | None]:
        if time.monotonic() > deadline or Interrupts.requested:
            return None, None, "skipped (time limit)"
        started = time.perf_counter()
        try:
            status = raw_client().request(raws[index])
            return status, (time.perf_counter() - started) * 1000, None
        except OSError as error:
            raw_client().close()
            return None, (time.perf_counter() - started) * 1000, type(error).__name__

    def send(item: tuple[bytes, dict[str, str]]) -> tuple[int | None, float | None, str | None]:
        if time.monotonic() > deadline or Interrupts.requested:
            return None, None, "skipped (time limit)"
        body, headers = item
        started = time.perf_counter()
        try:
            response = session().post(receiver.webhook_url, data=body, headers=headers, timeout=(5, 30))
            status = response.status_code
            response.close()
            return status, (time.perf_counter() - started) * 1000, None
        except requests.RequestException as error:
            return None, (time.perf_counter() - started) * 1000, type(error).__name__

    receiver_cpu_before, own_cpu_before = cpu_seconds(receiver.proc.pid), own_cpu_seconds()
    pg_cpu_before, busy_before = postgres_cpu_seconds(pg_data), machine_busy()
    load_before = round(os.getloadavg()[0], 2)
    print(f"[load] sending with {concurrency} threads ({client} client) ...", flush=True)

    def load() -> tuple[list, float]:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load") as pool:
            if client == "raw":
                outcomes = list(pool.map(send_raw, range(len(raws))))
            else:
                outcomes = list(pool.map(send, prepared))
        return outcomes, time.perf_counter() - started

    outcomes, wall = in_worker_thread(load)
    for s in sessions:
        s.close()
    for c in clients:
        c.close()
    receiver_cpu = cpu_seconds(receiver.proc.pid)
    own_cpu = own_cpu_seconds() - own_cpu_before
    pg_cpu, busy_after = postgres_cpu_seconds(pg_data), machine_busy()
    machine_busy_percent = other_cpu = None
    if busy_before and busy_after and busy_after[1] > busy_before[1]:
        busy = busy_after[0] - busy_before[0]
        machine_busy_percent = round(100 * busy / (busy_after[1] - busy_before[1]), 1)
        if None not in (receiver_cpu, receiver_cpu_before, pg_cpu, pg_cpu_before):
            ours = (receiver_cpu - receiver_cpu_before) + own_cpu + (pg_cpu - pg_cpu_before)
            # Anything else running on the machine meanwhile (the measurement is CPU-bound: it matters).
            other_cpu = round(max(0.0, busy - ours), 2)
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    latencies = []
    for status, latency_ms, error in outcomes:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if error:
            errors[error] = errors.get(error, 0) + 1
        if latency_ms is not None:
            latencies.append(latency_ms)
    ok = sum(n for s, n in statuses.items() if s != "None" and 200 <= int(s) < 300)
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        rows, duplicates = conn.execute(
            "SELECT count(*), coalesce(sum(duplicates), 0) FROM sync.inbox WHERE provider = %s AND account = %s",
            (PROVIDER, LOAD_SHOP)).fetchone()
        rejections = conn.execute("SELECT reason, count(*) FROM sync.webhook_rejections GROUP BY reason").fetchall()
    print(f"[load] {ok:,}/{deliveries:,} accepted in {wall:.2f}s; inbox rows {rows:,}", flush=True)
    return {
        "deliveries": deliveries,
        "concurrency": concurrency,
        "client": client,
        "receiver_workers": receiver.workers,
        "body_bytes": {"min": min(sizes), "median": int(statistics.median(sizes)), "max": max(sizes)},
        "wall_seconds": round(wall, 3),
        "deliveries_per_second": round(deliveries / wall, 1) if wall else None,
        "latency_ms": percentiles(latencies),
        "status_counts": statuses,
        "transport_errors": errors,
        "non_2xx": deliveries - ok,
        "inbox_rows_after": int(rows),
        "inbox_rows_equal_deliveries": int(rows) == deliveries,
        "inbox_duplicates": int(duplicates),
        "rejections_by_reason": {reason: int(n) for reason, n in rejections},
        "receiver_cpu_seconds": round(receiver_cpu - receiver_cpu_before, 2)
        if receiver_cpu is not None and receiver_cpu_before is not None else None,
        "load_generator_cpu_seconds": round(own_cpu, 2),
        "postgres_cpu_seconds": round(pg_cpu - pg_cpu_before, 2)
        if pg_cpu is not None and pg_cpu_before is not None else None,
        "machine_cpu_busy_percent_all_cores": machine_busy_percent,
        "other_processes_cpu_seconds": other_cpu,
        "load_average_1min_before": load_before,
        "receiver_rss_mb_after": receiver.rss_mb(),
    }


# ----------------------------------------------------------------------------- phase 2: latency
def run_latency(receiver: ReceiverProcess, work: Path, *, updates: int, batch_size: int, batch_interval: float,
                tick_seconds: float, orders: int, max_seconds: float) -> dict[str, Any]:
    import dagster as dg
    import psycopg

    from sync_pipelines.core import inbox
    from sync_pipelines.core.registry import get_account
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.shopify.assets import orders as orders_asset
    from sync_pipelines.defs.shopify.assets import shops
    from sync_pipelines.defs.shopify.client import ShopifyClient
    from sync_pipelines.defs.shopify.management import manage
    from sync_pipelines.defs.shopify.sensors import apply_job, sensors

    inbox_sensor = next(s for s in sensors if s.name == f"{PROVIDER}_inbox_sensor")
    db_url = os.environ["DATABASE_URL"]
    print(f"\n[latency] starting Shopify sandbox ({orders:,} orders, delivering to {receiver.webhook_url}) ...",
          flush=True)
    with ShopifySandboxProcess(shops=[LATENCY_SHOP_NAME], orders=orders, app_secret=SECRET,
                               log_path=work / "sandbox-shopify-latency.log") as sandbox, \
            dg.instance_for_test() as instance:
        shop = sandbox.shops[0]
        register_shop(shop, sandbox.tokens[shop])
        instance.add_dynamic_partitions(shops.name, [shop])
        client = ShopifyClient(base_url_template=sandbox.base_url_template(), plan="standard")
        app_db = AppDatabase()
        print(f"[latency] backfilling {shop} and subscribing it ...", flush=True)
        backfill = in_worker_thread(lambda: dg.materialize(
            [orders_asset], partition_key=shop, instance=instance,
            resources={"app_db": app_db, "shopify": client}, run_config=QUIET_RUN_CONFIG))
        with app_db.connect() as conn:
            account = get_account(conn, PROVIDER, shop)
        subscribed = manage(client, account, "register", receiver.webhook_url)

        with psycopg.connect(db_url, autocommit=True) as conn:
            # Phase 1's deliveries are for a shop with no orders table rows of interest: mark them done
            # so the sensor's stale sweep never launches a 5,000-delivery run in the middle of this.
            conn.execute("UPDATE sync.inbox SET processed_at = now(), run_id = 'benchmark: load phase, not applied'"
                         " WHERE account = %s AND processed_at IS NULL", (LOAD_SHOP,))
            start_cursor = conn.execute("SELECT coalesce(max(id), 0) FROM sync.inbox").fetchone()[0]
            ids = [row[0] for row in conn.execute(
                "SELECT order_id FROM shopify.orders WHERE account = %s ORDER BY order_id", (shop,)).fetchall()]
        if len(ids) < updates:
            raise RuntimeError(f"only {len(ids)} orders backfilled, {updates} updates asked for")
        chosen = random.Random(3).sample(ids, updates)
        batches = [chosen[i:i + batch_size] for i in range(0, len(chosen), batch_size)]
        since = datetime.now(UTC)

        trigger_log: list[dict[str, Any]] = []
        trigger_errors: list[str] = []
        stop = threading.Event()

        # Batch start times: --batch-interval apart on average, each gap drawn from [0.5, 1.5]× it
        # (seeded), so batches land at every phase of the sensor's tick instead of a fixed one.
        jitter = random.Random(5)
        offsets, at_offset = [], 0.0
        for _ in batches:
            offsets.append(at_offset)
            at_offset += batch_interval * jitter.uniform(0.5, 1.5)

        def trigger() -> None:
            begun = time.monotonic()
            for offset, batch in zip(offsets, batches):
                wait = begun + offset - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    return
                try:
                    at = datetime.now(UTC)
                    sandbox.control("POST", "mutate", {"shop": shop, "update_orders": {"ids": batch}})
                    trigger_log.append({"at": at.isoformat(), "orders": len(batch)})
                except Exception as error:  # recorded, not fatal: the loop below is bounded anyway
                    trigger_errors.append(f"{type(error).__name__}: {error}")

        runs: list[dict[str, Any]] = []
        ticks: list[float] = []
        run_end: dict[str, datetime] = {}

        def pending_count(conn: psycopg.Connection) -> int:
            return conn.execute(
                "SELECT count(*) FROM sync.inbox WHERE account = %s AND id > %s AND topic = 'orders/updated'"
                " AND processed_at IS NOT NULL", (shop, start_cursor)).fetchone()[0]

        def loop() -> None:
            cursor = str(start_cursor)
            deadline = time.monotonic() + max_seconds
            next_tick = time.monotonic()
            with psycopg.connect(db_url, autocommit=True) as conn:
                while time.monotonic() < deadline and not Interrupts.requested:
                    time.sleep(max(0.0, next_tick - time.monotonic()))
                    tick_started = time.monotonic()
                    next_tick = tick_started + tick_seconds
                    with dg.build_sensor_context(instance=instance, cursor=cursor,
                                                 resources={"app_db": app_db}) as context:
                        result = inbox_sensor(context)
                    ticks.append(time.monotonic() - tick_started)
                    cursor = result.cursor or cursor
                    for request in result.run_requests or []:
                        run_started = time.monotonic()
                        outcome = apply_job.execute_in_process(
                            run_config={**QUIET_RUN_CONFIG, **request.run_config}, instance=instance, tags=request.tags,
                            resources={"app_db": app_db}, raise_on_error=False)
                        run_end[outcome.run_id] = datetime.now(UTC)
                        runs.append({"run_key": request.run_key, "success": outcome.success,
                                     "seconds": round(time.monotonic() - run_started, 3)})
                    if not trigger_thread.is_alive() and pending_count(conn) >= updates:
                        return

        trigger_thread = threading.Thread(target=trigger, name="trigger-updates", daemon=True)
        print(f"[latency] updating {updates} orders in {len(batches)} batches of {batch_size}, about "
              f"{batch_interval:g}s apart; sensor tick every {tick_seconds:g}s ...", flush=True)
        loop_started = time.monotonic()
        trigger_thread.start()
        try:
            in_worker_thread(loop)
        finally:
            stop.set()
            trigger_thread.join(10)
        loop_seconds = time.monotonic() - loop_started
        sandbox_stats = sandbox.stats()

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT (payload->>'id')::bigint, triggered_at, received_at, processed_at, run_id,"
            " (payload->>'updated_at')::timestamptz"
            " FROM sync.inbox WHERE account = %s AND id > %s AND topic = 'orders/updated' ORDER BY id",
            (shop, start_cursor)).fetchall()
        in_table = dict(conn.execute(
            "SELECT order_id, updated_at FROM shopify.orders WHERE account = %s AND order_id = ANY(%s)",
            (shop, chosen)).fetchall())
        stats = inbox.stats(conn, PROVIDER, since=since)

    processed = [r for r in rows if r[3] is not None and r[1] is not None]
    to_row = [(r[3] - r[1]).total_seconds() for r in processed]
    to_visible = [(run_end[r[4]] - r[1]).total_seconds() for r in processed if r[4] in run_end]
    delivery = [(r[2] - r[1]).total_seconds() for r in rows if r[1] is not None]
    waiting = [(r[3] - r[2]).total_seconds() for r in processed]
    newest_payload: dict[int, datetime] = {}
    for order_id, *_, payload_updated in rows:
        newest_payload[order_id] = max(newest_payload.get(order_id, payload_updated), payload_updated)
    shows_new = sum(1 for oid in chosen if oid in newest_payload and in_table.get(oid) == newest_payload[oid])
    run_seconds = [r["seconds"] for r in runs]
    return {
        "orders_in_shop": orders,
        "backfill_success": backfill.success,
        "subscriptions": subscribed,
        "updates_requested": updates,
        "batches": len(batches),
        "batch_size": batch_size,
        "batch_interval_seconds": batch_interval,
        "tick_seconds": tick_seconds,
        "trigger_batches_sent": len(trigger_log),
        "trigger_errors": trigger_errors,
        "deliveries_in_inbox": len(rows),
        "deliveries_processed": len(processed),
        "orders_whose_row_shows_new_updated_at": shows_new,
        "loop_seconds": round(loop_seconds, 2),
        "sensor_ticks": len(ticks),
        "sensor_tick_seconds": percentiles(ticks, 4),
        "runs": len(runs),
        "runs_failed": sum(1 for r in runs if not r["success"]),
        "run_seconds": percentiles(run_seconds, 3),
        "deliveries_per_run": round(len(processed) / len(runs), 1) if runs else None,
        # processed_at is now() inside the apply transaction, i.e. its start: a hair before commit.
        "webhook_to_row_seconds_processed_minus_triggered": percentiles(to_row, 3),
        # When the run that applied the delivery had returned (its transaction committed).
        "webhook_to_row_seconds_run_end_minus_triggered": percentiles(to_visible, 3),
        "delivery_seconds_received_minus_triggered": percentiles(delivery, 4),
        "inbox_wait_seconds_processed_minus_received": percentiles(waiting, 3),
        "inbox_stats_since_phase_start": stats,
        "sandbox_deliveries": sandbox_stats.get("deliveries"),
    }


# ----------------------------------------------------------------------------- reporting
def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = []
    load = results.get("load")
    if load:
        lat = load["latency_ms"]
        rows += [
            ("LOAD", ""),
            ("  deliveries / concurrency", f"{load['deliveries']:,} / {load['concurrency']}"),
            ("  client / receiver workers", f"{load.get('client')} / {load.get('receiver_workers')}"),
            ("  body size min / median / max (bytes)", "{min:,} / {median:,} / {max:,}".format(**load["body_bytes"])),
            ("  wall time (s)", load["wall_seconds"]),
            ("  deliveries/s", load["deliveries_per_second"]),
            ("  latency p50 / p95 / p99 / max (ms)", f"{lat['p50']} / {lat['p95']} / {lat['p99']} / {lat['max']}"),
            ("  non-2xx", load["non_2xx"]),
            ("  rows in sync.inbox (= deliveries?)", f"{load['inbox_rows_after']:,} ({load['inbox_rows_equal_deliveries']})"),
            ("  CPU s: receiver / load generator / PostgreSQL",
             f"{load['receiver_cpu_seconds']} / {load['load_generator_cpu_seconds']} / {load['postgres_cpu_seconds']}"),
            ("  machine CPU busy, all cores (%)", load["machine_cpu_busy_percent_all_cores"]),
            ("  CPU s of other processes meanwhile", load["other_processes_cpu_seconds"]),
        ]
    latency = results.get("latency")
    if latency:
        a = latency["webhook_to_row_seconds_processed_minus_triggered"]
        b = latency["webhook_to_row_seconds_run_end_minus_triggered"]
        d = latency["delivery_seconds_received_minus_triggered"]
        rows += [
            ("WEBHOOK-TO-ROW (in-process loop, tick {:g}s)".format(latency["tick_seconds"]), ""),
            ("  orders updated / deliveries processed", f"{latency['updates_requested']} / {latency['deliveries_processed']}"),
            ("  rows showing the new updated_at", latency["orders_whose_row_shows_new_updated_at"]),
            ("  runs (failed) / deliveries per run", f"{latency['runs']} ({latency['runs_failed']}) / {latency['deliveries_per_run']}"),
            ("  run duration p50 / max (s)", f"{latency['run_seconds']['p50']} / {latency['run_seconds']['max']}"),
            ("  processed_at - triggered_at p50 / p95 (s)", f"{a['p50']} / {a['p95']}"),
            ("  run end - triggered_at p50 / p95 (s)", f"{b['p50']} / {b['p95']}"),
            ("  received_at - triggered_at p50 / p95 (s)", f"{d['p50']} / {d['p95']}"),
        ]
    width = max(len(label) for label, _ in rows) + 2 if rows else 0
    print("\n" + "=" * (width + 30))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print("=" * (width + 30))


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver_load", description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--load-max-seconds", type=float, default=600.0, help="stop sending after this long")
    parser.add_argument("--workers", type=int, default=1, help="receiver worker processes (--workers of the receiver)")
    parser.add_argument("--client", choices=("raw", "requests"), default="raw",
                        help="load generator: prepared bytes on keep-alive sockets (raw) or requests.Session")
    parser.add_argument("--updates", type=int, default=200, help="orders updated in the latency phase")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--batch-interval", type=float, default=1.0, help="seconds between update batches")
    parser.add_argument("--tick-seconds", type=float, default=0.5, help="sensor evaluation interval of the loop")
    parser.add_argument("--latency-orders", type=int, default=2_000, help="orders in the latency phase's shop")
    parser.add_argument("--latency-max-seconds", type=float, default=300.0)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    if min(args.deliveries, args.concurrency, args.updates, args.batch_size) < 1 or args.tick_seconds <= 0:
        parser.error("counts must be >= 1 and --tick-seconds > 0")
    Interrupts.install()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS_DIR / "receiver_load.json"
    results: dict[str, Any] = results_header("receiver_load", argv)
    with ThrowawayPostgres(prefix="receiver-bench-") as postgres:
        receiver: ReceiverProcess | None = None
        try:
            postgres.start()
            database_url = postgres.use_database("bench")
            results["machine"] = machine_facts(database_url, postgres.data)
            print(f"PostgreSQL: {results['machine']['postgresql']}", flush=True)
            register_shop(LOAD_SHOP, "unused-load-token")  # active shop; the receiver only checks that
            receiver = ReceiverProcess(database_url, postgres.work / "receiver.log", workers=args.workers)
            results["receiver"] = {"command": receiver.command, "startup_seconds": receiver.startup_seconds}
            print(f"receiver on {receiver.url} (healthy after {receiver.startup_seconds}s)", flush=True)
            if not args.skip_load:
                results["load"] = run_load(receiver, args.deliveries, args.concurrency, args.load_max_seconds,
                                           postgres.data, client=args.client)
            if not args.skip_latency:
                results["latency"] = run_latency(
                    receiver, postgres.work, updates=args.updates, batch_size=args.batch_size,
                    batch_interval=args.batch_interval, tick_seconds=args.tick_seconds,
                    orders=args.latency_orders, max_seconds=args.latency_max_seconds)
            results["receiver"]["rss_mb_at_end"] = receiver.rss_mb()
            results["peak_rss_mb_at_end"] = peak_rss_mb()
            results["finished_at"] = now_iso()
        except KeyboardInterrupt:
            return report_interrupted("the receiver, the sandbox and the throwaway PostgreSQL")
        finally:
            if receiver is not None:
                with contextlib.suppress(Exception):
                    receiver.stop()
    print_table(results)
    write_results(out_path, results)
    return 0

if __name__ == "__main__":
    sys.exit(main())
