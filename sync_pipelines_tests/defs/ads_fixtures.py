"""What the ad platforms' fixtures and sync tests share, so each provider's conftest keeps only
its own sandbox, client and account shape: a sandbox served on a loopback port at a set clock, a
fresh credentials cipher, tokens stored encrypted as `accounts connect` stores them, and the core
report job run on some accounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable, Iterator

import psycopg
import pytest
from cryptography.fernet import Fernet

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, Tokens
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.oauth import Refresher, TokenSource
from sync_pipelines.core.registry import Account
from sync_pipelines.sandbox.server import serve_in_thread


def served(box: Any, now: datetime) -> Iterator[Any]:
    """The body of a sandbox fixture (``yield from served(box, NOW)``): `box` at clock `now`,
    served on a loopback port (``box.url``), closed after the test."""
    box.set_clock(now)
    with serve_in_thread(box.app) as running:
        box.url = running.url
        yield box
    box.close()


def new_cipher(monkeypatch: Any = None) -> Cipher:
    """A cipher under a fresh key; with `monkeypatch` the key is also the process's
    (``SYNC_CREDENTIALS_KEYS``), for code that opens the tokens with its own cipher (runs)."""
    key = Fernet.generate_key().decode()
    if monkeypatch is not None:
        monkeypatch.setenv(credentials.KEYS_ENV, key)
    return Cipher([key])


@pytest.fixture
def cipher(monkeypatch):
    """A fresh cipher whose key is also the process's: a conftest imports this fixture when its
    runs read tokens through their own cipher (Google, LinkedIn)."""
    return new_cipher(monkeypatch)


def stored_tokens(conn: Any, database_url: str, cipher: Cipher, provider: str, number: str, tokens: Tokens,
                  refresher: Refresher, **options: Any) -> TokenSource:
    """Store `tokens` encrypted for the account and return core's `TokenSource` over them (its own
    connections to the app database, `options` as `TokenSource` takes them)."""
    credentials.store(conn, cipher, provider, number, tokens)
    return TokenSource(lambda: psycopg.connect(database_url, autocommit=True), cipher, provider, number, refresher,
                       **options)


@dataclass
class Connected:
    """An account in the sandbox with its token stored (encrypted) as a connected account's."""

    number: str
    token: str
    account: Account
    tokens: TokenSource

    def session(self, client: Any, **kwargs: Any) -> Any:
        return client.session(self.account, self.tokens, **kwargs)


def job_runner(job: Any, op_name: str, resource_key: str) -> Callable[..., Any]:
    """``run(instance, client, accounts_, raise_on_error=True, **config)``: the report job in
    process on those accounts, the client as the `resource_key` resource."""

    def run(instance: Any, client: Any, accounts_: list[str], *, raise_on_error: bool = True, **config: Any) -> Any:
        return job.execute_in_process(
            run_config={"ops": {op_name: {"config": {"accounts": accounts_, **config}}}},
            instance=instance, resources={"app_db": AppDatabase(), resource_key: client}, raise_on_error=raise_on_error)

    return run


def stored_metrics(conn: Any, table: str, number: str, first: date, last: date, *metrics: str) -> dict[tuple, tuple]:
    """``{(campaign_id, date): (metric, …)}`` of the account's rows in `table` from first to last."""
    rows = conn.execute(f"SELECT campaign_id, date, {', '.join(metrics)} FROM {table} WHERE account = %s"
                        " AND date BETWEEN %s AND %s", (number, first, last)).fetchall()
    return {(cid, day): tuple(values) for cid, day, *values in rows}
