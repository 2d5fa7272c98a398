"""Google Ads fixtures: the sandbox on a loopback port, the client pointed at it, and customers
connected the way core connects them (registry row + encrypted tokens in the real database)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.oauth import TokenSource
from sync_pipelines.core.registry import Account, get_account, upsert_account
from sync_pipelines.defs.google_ads.client import GoogleAdsClient
from sync_pipelines.defs.google_ads.provider import DECLARATION, NAME
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.google_ads import CLIENT_ID, CLIENT_SECRET, DEVELOPER_TOKEN, GoogleAdsSandbox
from sync_pipelines_tests.defs.ads_fixtures import cipher, served, stored_tokens  # noqa: F401 (cipher: a fixture)

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # the sandbox's clock: 11:00 in New York


@pytest.fixture
def sandbox():
    yield from served(GoogleAdsSandbox(seed=5, batch_size=10_000, faults=Faults(seed=3, retry_after_seconds=1)), NOW)


@pytest.fixture
def client(sandbox, monkeypatch):
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", DEVELOPER_TOKEN)
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", CLIENT_SECRET)
    return GoogleAdsClient(base_url=sandbox.url, token_url=f"{sandbox.url}/token", api_version="v26",
                           requests_per_minute=None, backoff_factor=0.01, backoff_max_seconds=0.05, max_retries=4,
                           malformed_retries=2)


@dataclass
class Connected:
    account: Account
    refresh_token: str
    tokens: TokenSource


@pytest.fixture
def connect(sandbox, client, conn, database_url, cipher):
    """``connect(**customer) -> Connected``: a sandbox customer, its grant, the registry row and
    the tokens stored encrypted (access token valid unless ``access_token`` says otherwise)."""

    def _connect(*, campaigns: int = 4, time_zone: str = "America/New_York", manager_id: str | None = None,
                 settings: dict | None = None, access_token: str | None = None,
                 expires_at: datetime | None = None) -> Connected:
        customer_id = str(random.randrange(10**9, 10**10))
        sandbox.add_customer(customer_id, campaigns=campaigns, time_zone=time_zone, manager_id=manager_id)
        refresh_token = sandbox.grant()
        upsert_account(conn, DECLARATION, customer_id, credentials_env="GOOGLE_ADS_OAUTH", settings=settings or {})
        token = access_token or sandbox.access_token(refresh_token)
        tokens = stored_tokens(conn, database_url, cipher, NAME, customer_id,
                               Tokens(token, refresh_token, expires_at or datetime.now(UTC) + timedelta(hours=1)),
                               client.refresher(customer_id))
        return Connected(get_account(conn, NAME, customer_id), refresh_token, tokens)

    return _connect
