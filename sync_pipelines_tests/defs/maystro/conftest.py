"""Maystro fixtures: the sandbox on a loopback port and a client pointed at it, with fast retries."""

from __future__ import annotations

import pytest

from sync_pipelines.core.registry import Account
from sync_pipelines.defs.maystro.client import MaystroClient
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.maystro import MaystroSandbox
from sync_pipelines.sandbox.server import serve_in_thread


@pytest.fixture
def sandbox():
    box = MaystroSandbox(seed=5, requests_per_minute=None, faults=Faults(seed=3))
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box


@pytest.fixture
def client(sandbox):
    return MaystroClient(base_url=sandbox.url, requests_per_minute=None, backoff_factor=0.01,
                         backoff_max_seconds=0.05, max_retries=4, malformed_retries=2)


@pytest.fixture
def store(sandbox, monkeypatch, unique):
    """A sandbox store and the registry's view of it; returns (Account, api key)."""

    def add(orders: int = 100, name: str = "store") -> tuple[Account, str]:
        account = f"{name}-{unique}"
        api_key = f"key-{account}"
        env = f"MAYSTRO_TEST_KEY_{account.upper().replace('-', '_')}"
        sandbox.add_store(api_key, orders=orders)
        monkeypatch.setenv(env, api_key)
        return Account(provider="maystro", account=account, display_name=account, active=True,
                       credentials_env=env, sync_enabled=True, cadence="6h", lookback_days=0), api_key

    return add
