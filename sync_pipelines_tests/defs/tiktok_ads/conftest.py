"""TikTok fixtures: the Business API sandbox on a loopback port, the client pointed at it (tiny
backoffs), and advertisers whose token is stored encrypted like a connected account's."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.tiktok_ads.client import TikTokAdsClient
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines_tests.defs.ads_fixtures import Connected, new_cipher, served, stored_tokens
from sync_pipelines.sandbox.tiktok_ads import TikTokAdsSandbox

APP_ID, APP_SECRET = "test-tiktok-app", "test-tiktok-app-secret-value"
NOW = datetime(2025, 7, 10, 5, 0, tzinfo=UTC)  # the sandbox's clock: 22:00 on 07-09 in Los Angeles


@pytest.fixture
def tiktok_sandbox():
    yield from served(TikTokAdsSandbox(seed=5, app_id=APP_ID, app_secret=APP_SECRET, faults=Faults(seed=5)), NOW)


@pytest.fixture
def tiktok_client(tiktok_sandbox, monkeypatch):
    monkeypatch.setenv("TIKTOK_APP_ID", APP_ID)
    monkeypatch.setenv("TIKTOK_APP_SECRET", APP_SECRET)
    return TikTokAdsClient(base_url=tiktok_sandbox.url, max_retries=4, backoff_factor=0.001,
                           backoff_max_seconds=0.01, requests_per_second=None)


@pytest.fixture
def cipher():
    return new_cipher()


@pytest.fixture
def connect(tiktok_sandbox, tiktok_client, database_url, conn, cipher):
    """Connect an advertiser: sandbox data, a sandbox token and the same token stored in the app
    database (long-term by default; `refreshable` stores its refresh token and expiry too)."""

    def add(*, timezone: str = "America/Los_Angeles", currency: str = "USD", campaigns: int = 3,
            refreshable: bool = False) -> Connected:
        number = str(random.randrange(10**15, 10**16))  # random: process-wide limiters never meet
        tiktok_sandbox.add_advertiser(number, currency=currency, timezone=timezone, campaigns=campaigns)
        issued = tiktok_sandbox.issue_token(advertisers=[number], refreshable=refreshable)
        expires = datetime.fromtimestamp(issued.expires_at, UTC) if issued.expires_at else None
        tokens = stored_tokens(conn, database_url, cipher, "tiktok_ads", number,
                               Tokens(issued.value, issued.refresh_token, expires), tiktok_client.refresher(number),
                               now=tiktok_sandbox_now(tiktok_sandbox))
        account = Account("tiktok_ads", number, "Test advertiser", True, "", True, "daily", 1)
        return Connected(number, issued.value, account, tokens)

    return add


def tiktok_sandbox_now(box):
    return lambda: datetime.fromtimestamp(box.now(), UTC)
