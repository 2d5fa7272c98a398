"""EcoManager assets per store: the orders, then their assignment to agents.

`ecomanager/orders` is partitioned by store (materialize one from the UI to sync it now); the batch
job `ecomanager_sync` syncs many stores per run (the schedule's and the triggers' runs), each store
its own materialization and outcome. Two modes:
- `new` (hourly): only orders above the store's id mark, newest first with the cursor, stopping
  at the first known order (`core.sync_newest`): 1 request when nothing is new, whatever the history;
- `full` (each evening): the complete listing, upserting what changed (state changes that came
  without a webhook) and soft-deleting orders that vanished (`propagate_deletes`).
After a store's orders are written, its new orders are assigned to agents (`assignment`).
Orders are written a page (100) per COPY + upsert, not in the seed's batches of 25: one statement
per page costs a quarter of the round trips and the whole page commits (or not) with its mark.
"""

from typing import Any

import dagster as dg

from sync_pipelines.core.dg.assets import require_account
from sync_pipelines.core.dg.batch import AccountResult, batch_job
from sync_pipelines.core.dg.metadata import report_metadata
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import PROVIDER_TAG
from sync_pipelines.core.http import AuthenticationError, IntegrationError
from sync_pipelines.core.registry import Account, MissingCredentialsError
from sync_pipelines.core.sync import Stream, sync_stream
from sync_pipelines.core.sync_newest import sync_newest_first
from sync_pipelines.defs.ecomanager import assignment, tables
from sync_pipelines.defs.ecomanager.provider import NAME

stores = dg.DynamicPartitionsDefinition(name="ecomanager_stores")
ORDERS = Stream(name=f"{NAME}/orders", table=tables.ORDERS, propagate_deletes=True)
ORDERS_KEY = dg.AssetKey([NAME, "orders"])
ASSIGNMENTS_KEY = dg.AssetKey([NAME, "order_assignments"])
NEW, FULL = "new", "full"
MODES = (NEW, FULL)


def sync_store(app_db: AppDatabase, client: Any, account: Account, mode: str,
               log=lambda _: None) -> AccountResult:
    """One store: its orders (new ones, or the complete listing), then assigning the new ones."""
    try:
        with client.session(account) as session, app_db.connect() as conn:
            try:
                if mode == FULL:
                    report = sync_stream(conn, ORDERS, account.account, lambda since: session.orders(since),
                                         full_refresh=True, log=log)
                else:
                    report = sync_newest_first(conn, ORDERS, account.account, session.orders_newest_first(), log=log)
            finally:
                stats = session.http.stats.as_metadata()
            report.http = stats
            assigned = assignment.assign_pending(conn, [account.account])
    except (AuthenticationError, MissingCredentialsError, IntegrationError, ValueError) as error:
        return AccountResult(account.account, False, error=str(error))
    metadata = {**report_metadata(report), "mode": mode, **assigned.as_metadata()}
    if report.delete_refused:
        metadata["deletes_refused"] = report.delete_refused
    return AccountResult(account.account, True, metadata=metadata, assets=[ORDERS_KEY])


class StoreSyncConfig(dg.Config):
    mode: str = NEW
    """`new`: orders above the store's mark (the hourly sync); `full`: the complete listing."""


@dg.asset(
    key=ORDERS_KEY, group_name=NAME, partitions_def=stores, kinds={"python", "postgres", NAME},
    owners=["team:data-eng"], tags={PROVIDER_TAG: NAME}, required_resource_keys={"app_db", NAME}, pool=NAME,
    metadata={"table": tables.ORDERS.fullname},
    description="Each store's orders (GET /api/shop/v2/orders, newest first by cursor), webhooks applied between syncs.",
)
def orders(context: dg.AssetExecutionContext, config: StoreSyncConfig) -> dg.MaterializeResult:
    app_db: AppDatabase = context.resources.app_db
    if config.mode not in MODES:
        raise dg.Failure(description=f"mode must be one of {', '.join(MODES)}", allow_retries=False)
    account = require_account(app_db, NAME, context.partition_key)
    done = sync_store(app_db, getattr(context.resources, NAME), account, config.mode, log=context.log.debug)
    if not done.ok:
        raise dg.Failure(description=f"{NAME} [{account.account}]: {done.error}", allow_retries=False)
    return dg.MaterializeResult(metadata=done.metadata)


@dg.asset(
    key=ASSIGNMENTS_KEY, group_name=NAME, deps=[ORDERS_KEY], kinds={"python", "postgres"},
    owners=["team:data-eng"], required_resource_keys={"app_db"},
    metadata={"table": "ecomanager.assignments"},
    description="New orders assigned to available agents (least-loaded, ties round-robin); waiting orders listed.",
)
def order_assignments(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    with context.resources.app_db.connect() as conn:
        result = assignment.assign_pending(conn)
    context.log.info(f"assignment: {result.as_metadata()}")
    return dg.MaterializeResult(metadata=result.as_metadata())


sync_job = batch_job(
    provider=NAME, client_key=NAME, partitions=stores, asset_keys=[ORDERS_KEY], modes=MODES,
    # Each store is paced at 60 requests/min on its own: 16 stores at once read the evening's
    # complete listings of 100 stores × 10,000 orders in ~7 rounds of ~95 s, not 25 (~40 min).
    parallel_accounts=16,
    work=lambda app_db, client, account, config, log: sync_store(app_db, client, account, config.mode, log),
    description="Orders of a batch of stores (new ones, or `full`), each store on its own, then their assignment.",
)
assignment_job = dg.define_asset_job("ecomanager_assign_orders", selection=[order_assignments],
                                     executor_def=dg.in_process_executor, tags={"sync/trigger": "assignment"})
all_assets = [orders, order_assignments]
