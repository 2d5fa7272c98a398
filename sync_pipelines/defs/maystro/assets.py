"""Maystro assets per store: the shipping status of every parcel, mapped to our statuses.

`maystro/shipments` is partitioned by store (materialize one to poll it now); the batch job
`maystro_sync` polls many stores per run (the schedule's and the trigger's runs). A poll reads
every order, 10 pages in flight within the store's rate limit, and writes in batches of 100 only
the shipments whose status changed, each change a history row (source `poll`), matched to our
orders through an index (`statuses`). An unknown status code is kept raw, flagged and counted.
"""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from sync_pipelines.core.dg.assets import require_account
from sync_pipelines.core.dg.batch import AccountResult, batch_job
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import PROVIDER_TAG
from sync_pipelines.core.http import AuthenticationError, IntegrationError
from sync_pipelines.core.registry import Account, MissingCredentialsError
from sync_pipelines.defs.maystro import statuses, tables
from sync_pipelines.defs.maystro.provider import NAME

stores = dg.DynamicPartitionsDefinition(name="maystro_stores")
SHIPMENTS_KEY = dg.AssetKey([NAME, "shipments"])
POLL = "poll"
MODES = (POLL,)


def poll_store(app_db: AppDatabase, client: Any, account: Account, log=lambda _: None) -> AccountResult:
    """Every order of the store, its status applied where it changed."""
    observed_at = datetime.now(UTC)  # a webhook received after this is newer than what the poll read
    try:
        with client.session(account) as session, app_db.connect() as conn:
            try:
                counts = statuses.apply_statuses(conn, account.account, (o for page in session.orders() for o in page),
                                                 source="poll", observed_at=observed_at)
            finally:
                stats = session.http.stats.as_metadata()
    except (AuthenticationError, MissingCredentialsError, IntegrationError, ValueError) as error:
        return AccountResult(account.account, False, error=str(error))
    metadata = {"table": tables.SHIPMENTS.fullname, **counts.as_metadata(), **stats}
    if counts.unknown:
        log(f"{NAME} [{account.account}]: {counts.unknown} shipments with a status code not in the mapping")
    return AccountResult(account.account, True, metadata=metadata)




@dg.asset(
    key=SHIPMENTS_KEY, group_name=NAME, partitions_def=stores, kinds={"python", "postgres", NAME},
    owners=["team:data-eng"], tags={PROVIDER_TAG: NAME}, required_resource_keys={"app_db", NAME}, pool=NAME,
    metadata={"table": tables.SHIPMENTS.fullname},
    description="Each store's parcels and their shipping status (GET /api/stores/orders/, webhooks between polls).",
)
def shipments(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    app_db: AppDatabase = context.resources.app_db
    account = require_account(app_db, NAME, context.partition_key)
    done = poll_store(app_db, getattr(context.resources, NAME), account, log=context.log.warning)
    if not done.ok:
        raise dg.Failure(description=f"{NAME} [{account.account}]: {done.error}", allow_retries=False)
    return dg.MaterializeResult(metadata=done.metadata)


sync_job = batch_job(
    provider=NAME, client_key=NAME, partitions=stores, asset_keys=[SHIPMENTS_KEY], modes=MODES,
    work=lambda app_db, client, account, config, log: poll_store(app_db, client, account, log),
    description="Shipping statuses of a batch of stores, each store on its own.",
)
all_assets = [shipments]
