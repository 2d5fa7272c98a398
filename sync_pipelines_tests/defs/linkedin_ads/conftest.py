"""LinkedIn fixtures: the sandbox on a loopback port, the client pointed at it (tiny backoffs), and
ad accounts connected the way core connects them (registry row + encrypted tokens in the real
database)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.oauth import TokenSource
from sync_pipelines.core.registry import Account, get_account, upsert_account
from sync_pipelines.defs.linkedin_ads.client import LinkedInAdsClient
from sync_pipelines.defs.linkedin_ads.provider import DECLARATION, NAME
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.linkedin_ads import CLIENT_ID, CLIENT_SECRET, LinkedInAdsSandbox
from sync_pipelines_tests.defs.ads_fixtures import cipher, served, stored_tokens  # noqa: F401 (cipher: a fixture)

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # the sandbox's clock; LinkedIn's days are UTC days


@pytest.fixture
def sandbox():
    yield from served(LinkedInAdsSandbox(seed=5, faults=Faults(seed=3)), NOW)


@pytest.fixture
def client(sandbox, monkeypatch):
    monkeypatch.setenv("LINKEDIN_ADS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("LINKEDIN_ADS_CLIENT_SECRET", CLIENT_SECRET)
    return LinkedInAdsClient(base_url=sandbox.url, token_url=f"{sandbox.url}/oauth/v2/accessToken",
                             api_version="202609", requests_per_minute=None, backoff_factor=0.01,
                             backoff_max_seconds=0.05, max_retries=4, malformed_retries=2)


@dataclass
class Connected:
    account: Account
    number: str
    refresh_token: str
    tokens: TokenSource


@pytest.fixture
def connect(sandbox, client, conn, database_url, cipher):
    """``connect(campaigns=…) -> Connected``: a sandbox ad account, its grant, the registry row and
    the tokens stored encrypted (access token valid unless ``access_token`` says otherwise)."""

    def _connect(*, campaigns: int = 4, access_token: str | None = None, expires_at: datetime | None = None,
                 client_: LinkedInAdsClient | None = None) -> Connected:
        number = str(random.randrange(10**8, 10**9))  # random: per-account limiters never meet
        sandbox.add_account(number, campaigns=campaigns)
        refresh_token, access = sandbox.grant(accounts=[number])
        upsert_account(conn, DECLARATION, number, credentials_env="", owner="user-1")
        tokens = stored_tokens(conn, database_url, cipher, NAME, number,
                               Tokens(access_token or access, refresh_token,
                                      expires_at or datetime.now(UTC) + timedelta(days=50)),
                               (client_ or client).refresher(number))
        return Connected(get_account(conn, NAME, number), number, refresh_token, tokens)

    return _connect
