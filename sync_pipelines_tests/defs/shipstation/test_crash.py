"""Kill the run process mid-sync, rerun: the database equals the source, with no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.defs.shipstation import tables

from .conftest import materialize
from .test_sync import db_records, source_records

RUNNER = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.shipstation.assets import inventory, products, stores
    from sync_pipelines.defs.shipstation.client import ShipStationClient

    account, base_url = sys.argv[1], sys.argv[2]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(stores.name, [account])
    dg.materialize(
        [products, inventory],
        partition_key=account,
        instance=instance,
        resources={"app_db": AppDatabase(),
                   "shipstation": ShipStationClient(base_url=base_url, requests_per_minute=None)},
    )
    """
)


@pytest.mark.slow
def test_kill_mid_sync_then_rerun_converges(sandbox, client, instance, add_store, conn):
    account, api_key = add_store("crash", products=40_000)
    ensure_tables(conn, [tables.PRODUCTS, tables.INVENTORY])
    sandbox.faults.latency_ms = 8  # slow pages so the kill lands mid-stream
    env = dict(os.environ)
    child = subprocess.Popen([sys.executable, "-c", RUNNER, account, sandbox.url], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            written = conn.execute(
                "SELECT count(*) FROM shipstation.products WHERE account = %s", (account,)
            ).fetchone()[0]
            if written > 0:
                break
            assert child.poll() is None, "runner exited before writing anything"
            time.sleep(0.05)
        sandbox.faults.latency_ms = 3000  # hold the next page: the kill lands mid-sync however loaded the machine
        assert 0 < written < 40_000, f"kill did not land mid-sync ({written} rows)"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()

    # The world moves on while we were down.
    sandbox.faults.latency_ms = 0
    sandbox.update_products(api_key, 25)
    sandbox.add_products(api_key, 10)

    from sync_pipelines.defs.shipstation.assets import inventory, products

    assert materialize(instance, account, client, assets=[products, inventory]).success
    for entity in ("products", "inventory"):
        assert db_records(conn, account, entity) == source_records(sandbox, api_key, entity)
    duplicates = conn.execute(
        "SELECT count(*) - count(DISTINCT product_id) FROM shipstation.products WHERE account = %s",
        (account,),
    ).fetchone()[0]
    assert duplicates == 0


@pytest.mark.slow
def test_interrupted_run_is_not_retried_and_keeps_committed_batches(sandbox, add_store, conn):
    account, _ = add_store("sigint", products=40_000)
    ensure_tables(conn, [tables.PRODUCTS, tables.INVENTORY])
    sandbox.faults.latency_ms = 8
    child = subprocess.Popen([sys.executable, "-c", RUNNER, account, sandbox.url], env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if conn.execute("SELECT count(*) FROM shipstation.products WHERE account = %s", (account,)).fetchone()[0]:
            break
        time.sleep(0.05)
    # Hold the next pages so the sync cannot finish before the signal, however loaded the machine
    # (a starved test process once polled too late: the run had ended and rightly reported success).
    sandbox.faults.latency_ms = 3000
    assert child.poll() is None, "the sync ended before it could be interrupted"
    child.send_signal(signal.SIGINT)  # what Ctrl-C or a run termination delivers
    output, _ = child.communicate(timeout=60)
    assert child.returncode != 0, "an interrupted sync must not report success"
    assert "STEP_RESTARTED" not in output
    assert "interrupted" in output
    written = conn.execute("SELECT count(*) FROM shipstation.products WHERE account = %s", (account,)).fetchone()[0]
    assert 0 < written < 40_000
