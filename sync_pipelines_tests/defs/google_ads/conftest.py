"""Google Ads fixtures: the sandbox on a loopback port, the client pointed at it, and customers
connected the way core connects them (registry row + encrypted tokens in the real database)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.fernet import Fernet

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, Tokens
from sync_pipelines.core.oauth import TokenSource
from sync_pipelines.core.registry import Account, get_account, upsert_account
from sync_pipelines.defs.google_ads.client import GoogleAdsClient
from sync_pipelines.defs.google_ads.provider import DECLARATION, NAME
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.google_ads import CLIENT_ID, CLIENT_SECRET, DEVELOPER_TOKEN, GoogleAdsSandbox
from sync_pipelines.sandbox.server import serve_in_thread

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # the sandbox's clock: 11:00 in New York


@pytest.fixture
def sandbox():
    box = GoogleAdsSandbox(seed=5, batch_size=10_000, faults=Faults(seed=3, retry_after_seconds=1))
    box.set_clock(NOW)
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box
    box.close()


@pytest.fixture
def client(sandbox, monkeypatch):
    monkeypatch.setenv("GOOGLE_ADS_DEVELOPER_TOKEN", DEVELOPER_TOKEN)
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", CLIENT_SECRET)
    return GoogleAdsClient(base_url=sandbox.url, token_url=f"{sandbox.url}/token", api_version="v26",
                           requests_per_minute=None, backoff_factor=0.01, backoff_max_seconds=0.05, max_retries=4,
                           malformed_retries=2)


@pytest.fixture
def cipher(monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(credentials.KEYS_ENV, key)
    return Cipher([key])


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
        credentials.store(conn, cipher, NAME, customer_id,
                          Tokens(token, refresh_token, expires_at or datetime.now(UTC) + timedelta(hours=1)))
        tokens = TokenSource(lambda: psycopg.connect(database_url, autocommit=True), cipher, NAME, customer_id,
                             client.refresher(customer_id))
        return Connected(get_account(conn, NAME, customer_id), refresh_token, tokens)

    return _connect
