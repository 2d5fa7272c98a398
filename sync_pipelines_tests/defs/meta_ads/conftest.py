"""Meta ads fixtures: the Marketing API sandbox on a loopback port, the client pointed at it (tiny
backoffs and polls), and ad accounts whose long-lived token is stored encrypted like a connected one."""

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
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.meta_ads.client import MetaAdsClient, MetaAdsSession
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.meta_ads import MetaAdsSandbox
from sync_pipelines.sandbox.server import serve_in_thread

APP_ID, APP_SECRET = "test-meta-app", "test-meta-app-secret-value"
NOW = datetime(2025, 7, 10, 5, 0, tzinfo=UTC)  # the sandbox's clock: 22:00 on 07-09 in Los Angeles


@pytest.fixture
def meta_sandbox():
    box = MetaAdsSandbox(seed=3, app_id=APP_ID, app_secret=APP_SECRET, faults=Faults(seed=3))
    box.set_clock(NOW)
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box
    box.close()


@pytest.fixture
def meta_client(meta_sandbox, monkeypatch):
    monkeypatch.setenv("META_APP_ID", APP_ID)
    monkeypatch.setenv("META_APP_SECRET", APP_SECRET)
    return MetaAdsClient(base_url=meta_sandbox.url, api_version="v23.0", page_size=25, max_retries=4,
                         backoff_factor=0.001, backoff_max_seconds=0.01, poll_interval_seconds=0.002,
                         max_poll_seconds=0.05, max_slowdown_seconds=0.05)


@dataclass
class Connected:
    """An ad account in the sandbox with its token stored (encrypted) as a connected account's."""

    number: str
    token: str
    account: Account
    tokens: TokenSource

    def session(self, client: MetaAdsClient, **kwargs) -> MetaAdsSession:
        return client.session(self.account, self.tokens, **kwargs)


@pytest.fixture
def cipher():
    return Cipher([Fernet.generate_key().decode()])


@pytest.fixture
def connect(meta_sandbox, meta_client, database_url, conn, cipher):
    """Connect an ad account: sandbox data, a sandbox token and the same token stored in the app
    database. Account numbers are random so the process-wide per-account limiters never meet."""

    def add(*, timezone: str = "America/Los_Angeles", currency: str = "USD", campaigns: int = 3,
            stored_expires_in: timedelta = timedelta(days=30)) -> Connected:
        number = str(random.randrange(10**11, 10**12))
        meta_sandbox.add_account(number, currency=currency, timezone_name=timezone, campaigns=campaigns)
        token = meta_sandbox.issue_token(f"EAAtest{number}", accounts=[number], expires_in=None).value
        credentials.store(conn, cipher, "meta_ads", number, Tokens(token, None, datetime.now(UTC) + stored_expires_in))
        tokens = TokenSource(lambda: psycopg.connect(database_url, autocommit=True), cipher, "meta_ads", number,
                             meta_client.refresher(number),
                             refresh_before=timedelta(seconds=meta_client.token_refresh_before_seconds))
        account = Account("meta_ads", f"act_{number}", "Test ad account", True, "", True, "daily", 1)
        return Connected(number, token, account, tokens)

    return add
