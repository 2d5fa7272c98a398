"""Dagster resources shared by every provider."""

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

import dagster as dg
import psycopg

from sync_pipelines.core.connection import DatabaseConnectionError
from sync_pipelines.core.database import connect_app_database, resolve_database_url
from sync_pipelines.core.http import BucketHeader, HttpClient, RateLimiter, RateLimitHeaders
from sync_pipelines.core.registry import Account


def setting(value: str | None, env: str, default: str) -> str:
    """A resource setting: its configured value; left unset (None), the environment variable
    `env`, read when the run uses it (not when the code location loads), else `default`.

    For optional settings that `dg.EnvVar` cannot express (an EnvVar that is not set fails every
    run); each field's docstring names its variable, so the UI shows where the value comes from.
    """
    if value is not None:
        return value
    return os.environ.get(env) or default


class AppDatabaseUnavailable(dg.Failure):
    """The app database could not be opened: one line naming host, port, database and user (never
    the password). Retried by the step's RetryPolicy only when waiting can help (an outage, not a
    wrong URL or credentials)."""

    def __init__(self, error: DatabaseConnectionError):
        # On a step's last attempt an outage fails with this line too, not "Exceeded max_retries".
        super().__init__(description=str(error), allow_retries=error.retryable and _retries_left())
        self.retryable = error.retryable


def _retries_left() -> bool:
    """Whether the step running now (if any) has a retry left after this attempt."""
    try:
        context = dg.OpExecutionContext.get()
    except dg.DagsterInvariantViolationError:  # not in a step (sensor, schedule): nothing to decide
        return True
    policy = context.op_def.retry_policy
    return policy is None or context.retry_number < policy.max_retries


class AppDatabase(dg.ConfigurableResource):
    """Connections to the app database that every sync writes to.

    `url` left unset means `DATABASE_URL`, and with that unset too, the embedded PostgreSQL.
    """

    url: str | None = None

    def resolved_url(self) -> str:
        return resolve_database_url(self.url)

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        """An autocommit connection: every write happens inside an explicit `transaction()`.

        Failing to connect raises `AppDatabaseUnavailable` (a `dg.Failure`), so every step, sensor
        and schedule using the resource fails with the one-line reason, at once when retrying
        cannot help."""
        try:
            conn = connect_app_database(self.url, autocommit=True)
        except DatabaseConnectionError as error:
            raise AppDatabaseUnavailable(error) from None
        with conn:
            yield conn


class HttpApiResource(dg.ConfigurableResource):
    """What every provider client resource shares: timeouts and retry budget, tunable per
    deployment (and shortened by tests) without touching the provider's code."""

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    max_retries: int = 6
    backoff_factor: float = 0.5
    backoff_max_seconds: float = 30.0
    malformed_retries: int = 3

    def http_client(
        self,
        *,
        integration: str,
        account: Account,
        base_url: str,
        headers: Mapping[str, str],
        rate_limiter: RateLimiter | None,
        rate_limit_headers: RateLimitHeaders | BucketHeader | None,
        pool_size: int = 10,
    ) -> HttpClient:
        return HttpClient(
            integration=integration,
            account=account.account,
            base_url=base_url,
            headers=headers,
            timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
            max_retries=self.max_retries,
            backoff_factor=self.backoff_factor,
            backoff_max=self.backoff_max_seconds,
            malformed_retries=self.malformed_retries,
            rate_limiter=rate_limiter,
            rate_limit_headers=rate_limit_headers,
            pool_size=pool_size,
        )

    def token_http(self, integration: str, account: str, token_url: str) -> HttpClient:
        """A client for an OAuth token endpoint (its own origin), with this resource's timeouts and retries."""
        return HttpClient(integration=integration, account=account, base_url=token_url,
                          headers={"Accept": "application/json"},
                          timeout=(self.connect_timeout_seconds, self.read_timeout_seconds),
                          max_retries=self.max_retries, backoff_factor=self.backoff_factor,
                          backoff_max=self.backoff_max_seconds)


def for_each_account(
    context: dg.OpExecutionContext, accounts: Iterable[Account], work: Callable[[Account], object]
) -> None:
    """Run `work` for every account; one account failing never stops the others, and the op
    fails at the end naming every account that failed."""
    failures = []
    for account in accounts:
        try:
            outcome = work(account)
            context.log.info(f"{account.provider} [{account.account}]: {outcome}")
        except Exception as error:
            failures.append(f"{account.account}: {error}")
            context.log.error(f"{account.provider} [{account.account}]: {error}")
    if failures:
        raise dg.Failure(description="; ".join(failures))
