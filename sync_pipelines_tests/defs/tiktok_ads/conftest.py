"""TikTok fixtures: the Business API sandbox on a loopback port, the client pointed at it (tiny
backoffs), and advertisers whose token is stored encrypted like a connected account's."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from cryptography.fernet import Fernet

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, Tokens
from sync_pipelines.core.oauth import TokenSource
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.tiktok_ads.client import TikTokAdsClient, TikTokAdsSession
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.server import serve_in_thread
from sync_pipelines.sandbox.tiktok_ads import TikTokAdsSandbox

APP_ID, APP_SECRET = "test-tiktok-app", "test-tiktok-app-secret-value"
NOW = datetime(2025, 7, 10, 5, 0, tzinfo=UTC)  # the sandbox's clock: 22:00 on 07-09 in Los Angeles


@pytest.fixture
def tiktok_sandbox():
    box = TikTokAdsSandbox(seed=5, app_id=APP_ID, app_secret=APP_SECRET, faults=Faults(seed=5))
    box.set_clock(NOW)
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box
    box.close()


@pytest.fixture
def tiktok_client(tiktok_sandbox, monkeypatch):
    monkeypatch.setenv("TIKTOK_APP_ID", APP_ID)
    monkeypatch.setenv("TIKTOK_APP_SECRET", APP_SECRET)
    return TikTokAdsClient(base_url=tiktok_sandbox.url, max_retries=4, backoff_factor=0.001,
                           backoff_max_seconds=0.01, requests_per_second=None)


@dataclass
class Connected:
    """An advertiser in the sandbox with its token stored (encrypted) as a connected account's."""

    number: str
    token: str
    account: Account
    tokens: TokenSource

    def session(self, client: TikTokAdsClient) -> TikTokAdsSession:
        return client.session(self.account, self.tokens)


@pytest.fixture
def cipher():
    return Cipher([Fernet.generate_key().decode()])


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
        credentials.store(conn, cipher, "tiktok_ads", number, Tokens(issued.value, issued.refresh_token, expires))
        tokens = TokenSource(lambda: psycopg.connect(database_url, autocommit=True), cipher, "tiktok_ads", number,
                             tiktok_client.refresher(number), now=tiktok_sandbox_now(tiktok_sandbox))
        account = Account("tiktok_ads", number, "Test advertiser", True, "", True, "daily", 1)
        return Connected(number, issued.value, account, tokens)

    return add


def tiktok_sandbox_now(box):
    return lambda: datetime.fromtimestamp(box.now(), UTC)
