"""The sync asset factory: a provider declares streams, this turns each into a partitioned asset.

Every sync asset behaves the same: look up the run's account in the registry, open one API
session for it, run the sync loop, report the standard metadata. Bad credentials fail the step
without retries (retrying cannot fix them), and so does an app database a retry cannot open (wrong
password, database, host or URL: `AppDatabaseUnavailable` from the `app_db` resource, one line);
anything else, a database outage included, is retried by the `RetryPolicy`.
"""


import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from sync_pipelines.core.http import AuthenticationError
from sync_pipelines.core.registry import Account, MissingCredentialsError, get_account
from sync_pipelines.core.dg.metadata import report_metadata
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.sync import Stream, sync_stream

# Dagster-level retries back up the HTTP retries; tests shorten the delay through the env.
STEP_RETRY_POLICY = dg.RetryPolicy(
    max_retries=2,
    delay=float(os.environ.get("SYNC_STEP_RETRY_DELAY_SECONDS", "15")),
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def require_account(app_db: AppDatabase, provider: str, account: str) -> Account:
    """The registry row for a run's partition; a clear error if it was removed or deactivated."""
    with app_db.connect() as conn:
        found = get_account(conn, provider, account)
    if found is None or not found.active:
        state = "not registered" if found is None else "deactivated"
        raise dg.Failure(description=f"{provider} account '{account}' is {state}", allow_retries=False)
    return found


def freshness_for(cadence: timedelta) -> dg.FreshnessPolicy:
    return dg.FreshnessPolicy.time_window(fail_window=cadence * 4, warn_window=cadence * 2)


Pages = Iterable[list[dict[str, Any]]]
PagesOf = Callable[[Any, datetime | None], Pages]
"""A stream's pages: called with the client's session for the account and `since` (None: all),
e.g. the unbound method `ShopifySession.orders`."""


def check_pages(pages: object, where: str) -> PagesOf:
    """`pages` must be a callable taking (session, since); raised when the definitions load."""
    if not callable(pages):
        raise TypeError(f"{where}: fetch must be a callable (session, since) -> pages, e.g. Session.orders;"
                        f" got {pages!r}")
    try:
        inspect.signature(pages).bind(object(), None)
    except TypeError as error:
        raise TypeError(f"{where}: fetch {getattr(pages, '__qualname__', pages)!r} cannot be called with"
                        f" (session, since): {error}") from None
    except ValueError:  # no signature to inspect (some builtins): trust it
        pass
    return pages  # type: ignore[return-value]


class SyncConfig(dg.Config):
    """Launch-time options (set them in the Launchpad for a manual run)."""

    full_refresh: bool = False
    """Ignore the stored cursor and re-read everything (the upsert still skips unchanged rows)."""


def sync_asset(
    *,
    provider: str,
    name: str,
    stream_table: sa.Table,
    fetch: PagesOf,
    client_key: str,
    partitions_def: dg.PartitionsDefinition,
    deps: Sequence[dg.AssetsDefinition] = (),
    description: str,
    ordered: bool = False,
    propagate_deletes: bool = False,
    project: bool = False,
    owners: Sequence[str] = (),
    cadence: timedelta = timedelta(minutes=30),
) -> dg.AssetsDefinition:
    """An asset syncing `fetch(client.session(account), since)` into `stream_table`.

    `fetch` is a typed reference to the page source, e.g. `ShopifySession.orders` (a missing
    method fails when the module loads; a value that cannot be called with (session, since)
    fails here, when the definitions load). `client_key` is the client resource's key, which
    Dagster checks is bound when the definitions load. `propagate_deletes`: every run reads a
    complete listing, so rows it did not return are soft-deleted (see `core.sync`); `project`:
    pages decode only the record keys the table reads (`core.rowcodec.projected`; the page source
    must hand records on unchanged). `cadence` is
    how often it is scheduled; the freshness policy warns after two missed syncs and fails after
    four, so stale data shows in the UI.
    """
    pages = check_pages(fetch, f"{provider}/{name}")
    stream = Stream(name=f"{provider}/{name}", table=stream_table, ordered=ordered,
                    propagate_deletes=propagate_deletes, project=project)

    @dg.asset(
        name=name,
        key_prefix=[provider],
        group_name=provider,
        partitions_def=partitions_def,
        deps=list(deps),
        description=description,
        kinds={"python", "postgres", provider},
        owners=list(owners),
        tags={"sync/provider": provider},
        required_resource_keys={"app_db", client_key},
        retry_policy=STEP_RETRY_POLICY,
        pool=provider,
        metadata={"table": stream_table.fullname},
        freshness_policy=freshness_for(cadence),
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig) -> dg.MaterializeResult:
        app_db: AppDatabase = context.resources.app_db
        account = require_account(app_db, provider, context.partition_key)
        client = getattr(context.resources, client_key)
        try:
            with client.session(account) as session, app_db.connect() as conn:
                try:
                    report = sync_stream(
                        conn,
                        stream,
                        account.account,
                        lambda since: pages(session, since),
                        full_refresh=config.full_refresh,
                        log=context.log.debug,
                    )
                finally:
                    context.log.info(f"{stream.name} [{account.account}] HTTP: {session.http.stats}")
                report.http = session.http.stats.as_metadata()
                if report.delete_refused:
                    context.log.warning(report.delete_refused)
        except (AuthenticationError, MissingCredentialsError) as error:
            # Retrying cannot fix credentials: fail now, naming the account.
            raise dg.Failure(description=str(error), allow_retries=False) from None
        except (KeyboardInterrupt, dg.DagsterExecutionInterruptedError):
            # A terminated run must stay terminated; the RetryPolicy would otherwise restart the
            # step. Committed batches and their cursor are kept; the next run resumes from them.
            raise dg.Failure(description=f"{stream.name} [{account.account}]: interrupted",
                             allow_retries=False) from None
        return dg.MaterializeResult(metadata=report_metadata(report))

    return _asset
