"""ShipStation fixtures: the sandbox on a loopback port, registered stores, a materialize helper."""

from __future__ import annotations

import dagster as dg
import pytest

from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.registry import upsert_account
from sync_pipelines.defs.shipstation.assets import all_assets, stores
from sync_pipelines.defs.shipstation.client import ShipStationClient
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.shipstation import ShipStationSandbox


@pytest.fixture
def sandbox():
    box = ShipStationSandbox(seed=11, requests_per_minute=None, faults=Faults(seed=3))
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box


@pytest.fixture
def client(sandbox):
    return ShipStationClient(
        base_url=sandbox.url, requests_per_minute=None, backoff_factor=0.01,
        backoff_max_seconds=0.05, max_retries=6, malformed_retries=2,
    )


@pytest.fixture
def add_store(sandbox, database_url, monkeypatch, unique, instance):
    """Register a store (sandbox data + registry row + partition); returns (account, api_key)."""

    def add(name: str = "store", products: int = 120, **registry) -> tuple[str, str]:
        account = f"{name}-{unique}"
        api_key = f"key-{account}"
        env_var = f"SHIPSTATION_TEST_KEY_{account.upper().replace('-', '_')}"
        sandbox.add_store(api_key, products=products)
        monkeypatch.setenv(env_var, api_key)
        with AppDatabase().connect() as conn:
            upsert_account(conn, "shipstation", account, credentials_env=env_var, **registry)
        instance.add_dynamic_partitions(stores.name, [account])
        return account, api_key

    return add


def materialize(instance, account: str, client: ShipStationClient, *, assets=None, raise_on_error=True):
    return dg.materialize(
        assets or all_assets,
        partition_key=account,
        instance=instance,
        resources={"app_db": AppDatabase(), "shipstation": client},
        raise_on_error=raise_on_error,
    )
