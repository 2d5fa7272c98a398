"""Meta ads fixtures: the Marketing API sandbox on a loopback port, the client pointed at it (tiny
backoffs and polls), and ad accounts whose long-lived token is stored encrypted like a connected one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from sync_pipelines.core.credentials import Tokens
from sync_pipelines.core.registry import Account
from sync_pipelines.defs.meta_ads.client import MetaAdsClient
from sync_pipelines.sandbox.faults import Faults
from sync_pipelines.sandbox.meta_ads import MetaAdsSandbox
from sync_pipelines_tests.defs.ads_fixtures import Connected, new_cipher, served, stored_tokens

APP_ID, APP_SECRET = "test-meta-app", "test-meta-app-secret-value"
NOW = datetime(2025, 7, 10, 5, 0, tzinfo=UTC)  # the sandbox's clock: 22:00 on 07-09 in Los Angeles


@pytest.fixture
def meta_sandbox():
    yield from served(MetaAdsSandbox(seed=3, app_id=APP_ID, app_secret=APP_SECRET, faults=Faults(seed=3)), NOW)


@pytest.fixture
def meta_client(meta_sandbox, monkeypatch):
    monkeypatch.setenv("META_APP_ID", APP_ID)
    monkeypatch.setenv("META_APP_SECRET", APP_SECRET)
    return MetaAdsClient(base_url=meta_sandbox.url, api_version="v23.0", page_size=25, max_retries=4,
                         backoff_factor=0.001, backoff_max_seconds=0.01, poll_interval_seconds=0.002,
                         max_poll_seconds=0.05, max_slowdown_seconds=0.05)


@pytest.fixture
def cipher():
    return new_cipher()


@pytest.fixture
def connect(meta_sandbox, meta_client, database_url, conn, cipher):
    """Connect an ad account: sandbox data, a sandbox token and the same token stored in the app
    database. Account numbers are random so the process-wide per-account limiters never meet."""

    def add(*, timezone: str = "America/Los_Angeles", currency: str = "USD", campaigns: int = 3,
            stored_expires_in: timedelta = timedelta(days=30)) -> Connected:
        number = str(random.randrange(10**11, 10**12))
        meta_sandbox.add_account(number, currency=currency, timezone_name=timezone, campaigns=campaigns)
        token = meta_sandbox.issue_token(f"EAAtest{number}", accounts=[number], expires_in=None).value
        tokens = stored_tokens(conn, database_url, cipher, "meta_ads", number,
                               Tokens(token, None, datetime.now(UTC) + stored_expires_in), meta_client.refresher(number),
                               refresh_before=timedelta(seconds=meta_client.token_refresh_before_seconds))
        account = Account("meta_ads", f"act_{number}", "Test ad account", True, "", True, "daily", 1)
        return Connected(number, token, account, tokens)

    return add
