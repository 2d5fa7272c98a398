"""EcoManager fixtures: the sandbox on a loopback port, a client pointed at it, and stores
(sandbox data + an `Account` whose token is in the environment)."""

from __future__ import annotations

import pytest

from sync_pipelines.core.registry import Account
from sync_pipelines.defs.ecomanager.client import EcoManagerClient
from sync_pipelines.sandbox.ecomanager import EcoManagerSandbox
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread


@pytest.fixture
def sandbox():
    box = EcoManagerSandbox(seed=11, requests_per_minute=None, faults=Faults(seed=3), webhook_backoff_seconds=0.01)
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box
    box.close()


@pytest.fixture
def client(sandbox):
    return EcoManagerClient(
        base_url_template=sandbox.base_url_template(sandbox.url), requests_per_minute=None,
        backoff_factor=0.01, backoff_max_seconds=0.05, max_retries=6, malformed_retries=2,
    )


def account_for(store: str, env_var: str) -> Account:
    return Account(provider="ecomanager", account=store, display_name=store, active=True, credentials_env=env_var,
                   sync_enabled=True, cadence="hourly", lookback_days=0, timezone="Africa/Algiers")


@pytest.fixture
def add_store(sandbox, monkeypatch, unique):
    """A sandbox store with `orders` historical orders and its Account (token in an env var);
    the name is unique, so no two tests share a store's process-wide rate limiter."""

    def add(name: str = "store", orders: int = 250) -> Account:
        store = f"{name}-{unique}"
        token = sandbox.add_store(store, orders=orders)
        env_var = f"ECOMANAGER_TEST_TOKEN_{store.upper().replace('-', '_')}"
        monkeypatch.setenv(env_var, token)
        return account_for(store, env_var)

    return add


def order_calls(sandbox: EcoManagerSandbox, store: str) -> int:
    """`GET orders` requests the sandbox answered for `store`."""
    return sandbox.stats()["calls"].get("orders", {}).get(store, 0)
