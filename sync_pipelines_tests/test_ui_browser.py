"""The real UI in a real browser: `dagster dev` on loopback with the project's dagster.yaml on
PostgreSQL, headless Chromium (Debian's package, installed here when missing) reading the rendered
pages. Screenshots are kept in `test-artifacts/`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from sync_pipelines.core.embedded import _free_port
from sync_pipelines.core.registry import upsert_account
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.shipstation.assets import stores
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.shipstation import ShipStationSandbox
from sync_pipelines_tests.helpers import kill_leftovers

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.geteuid() != 0:
            pytest.fail("headless Chromium is needed: apt-get install chromium (as root)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
        found = shutil.which("chromium")
    assert found, "chromium did not install"
    return found


def browse(chromium: str, url: str, *, screenshot: Path | None = None) -> str:
    """The DOM after the page's scripts ran (or a PNG of it), from a fresh headless profile."""
    profile = ARTIFACTS / f".profile-{time.monotonic_ns()}"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--window-size=1600,1000"]
    flags += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    try:
        result = subprocess.run([*flags, url], capture_output=True, text=True, timeout=120, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return result.stdout


@pytest.fixture
def dagster_ui(dagster_env, database_url, unique):
    ARTIFACTS.mkdir(exist_ok=True)
    box = ShipStationSandbox(seed=3, requests_per_minute=None)
    store, key_var = f"ui-{unique}", f"SHIPSTATION_UI_KEY_{unique.upper()}"
    box.add_store(f"key-{store}", products=300)
    with serve_in_thread(box.app) as sandbox:
        env = dict(dagster_env, DATABASE_URL=database_url, SHIPSTATION_BASE_URL=sandbox.url,
                   **{key_var: f"key-{store}"})
        with AppDatabase(url=database_url).connect() as conn:
            upsert_account(conn, "shipstation", store, credentials_env=key_var)
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port),
             "-m", "sync_pipelines.definitions"],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                assert process.poll() is None, "dagster dev exited"
                assert time.monotonic() < deadline, "the UI did not come up"
                time.sleep(1)
            yield port, store, env
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            kill_leftovers(env["DAGSTER_HOME"])



def test_asset_graph_lists_every_provider_and_a_launched_run_succeeds(chromium, dagster_ui, monkeypatch):
    port, store, env = dagster_ui
    base = f"http://127.0.0.1:{port}"
    dom = browse(chromium, f"{base}/asset-groups")
    for group in ("shipstation", "shopify", "replication", "operations"):
        assert group in dom, f"group {group} missing from the asset graph"
    browse(chromium, f"{base}/asset-groups", screenshot=ARTIFACTS / "asset-graph.png")

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(stores.name, [store])
    client = DagsterGraphQLClient("127.0.0.1", port_number=port)
    run_id = client.submit_job_execution("shipstation_sync", tags={"dagster/partition": store})
    deadline = time.monotonic() + 240
    while (status := client.get_run_status(run_id)) not in (
        dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED
    ):
        assert time.monotonic() < deadline, f"run still {status}"
        time.sleep(2)
    assert status == dg.DagsterRunStatus.SUCCESS
    run_page = browse(chromium, f"{base}/runs/{run_id}")
    assert "Success" in run_page
    browse(chromium, f"{base}/runs/{run_id}", screenshot=ARTIFACTS / "run-success.png")
    assert (ARTIFACTS / "asset-graph.png").stat().st_size > 10_000
