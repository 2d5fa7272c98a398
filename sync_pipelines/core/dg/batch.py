"""Many accounts in one run, each on its own: the loop every batch job shares.

A run is a process that loads the code location (seconds), so at hundreds of accounts a run per
account per tick would spend more time starting than syncing. A batch op syncs its accounts in
threads (the work is API-bound); each account's result stays its own: its own materializations
of its partition, its own row in `sync.account_outcomes` (which the failure alerts fold per
account), and the run fails at the end naming the accounts that failed, so the Runs list shows it.
"""

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import dagster as dg

from sync_pipelines.core import outcomes
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import ACCOUNT_TAG, PROVIDER_TAG, TRIGGER_TAG
from sync_pipelines.core.registry import list_accounts


@dataclass
class AccountResult:
    """One account's part of a batch run; `assets` are the asset keys it materialized (by default
    the batch's), each with `metadata`."""

    account: str
    ok: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    needs_reauth: bool = False
    first: date | None = None
    last: date | None = None
    assets: Sequence[dg.AssetKey] | None = None


def run_accounts(
    context: dg.OpExecutionContext,
    app_db: AppDatabase,
    *,
    provider: str,
    job_name: str,
    asset_keys: Sequence[dg.AssetKey],
    accounts: Sequence[Any],
    work: Callable[[Any], AccountResult],
    parallel: int,
) -> Iterator[dg.AssetMaterialization]:
    """`work(account)` for each account, `parallel` at a time; yields each success's materializations
    as it completes (stored even if the run then fails), records every outcome, and fails the step
    naming the failed accounts. `work` returns failures as results; an exception it raises fails
    that account alone."""
    results: list[AccountResult] = []

    def guarded(account: Any) -> AccountResult:
        try:
            return work(account)
        except Exception as error:  # one account's bug or outage must not take the others with it
            return AccountResult(getattr(account, "account", str(account)), False,
                                 error=f"{type(error).__name__}: {error}")

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, 32)), thread_name_prefix=provider) as pool:
        for done in pool.map(guarded, accounts):
            results.append(done)
            if done.ok:
                for key in done.assets or asset_keys:
                    yield dg.AssetMaterialization(asset_key=key, partition=done.account, metadata=done.metadata)
            else:
                context.log.error(f"{provider} [{done.account}]: {done.error}")
    with app_db.connect() as conn:
        outcomes.record(conn, [outcomes.Outcome(job_name, provider, r.account, context.run_id, r.ok,
                                                r.needs_reauth, r.error, r.first, r.last) for r in results])
    failed = [r for r in results if not r.ok]
    context.log.info(f"{provider}: {len(results) - len(failed)} of {len(results)} accounts synced")
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(results)} {provider} accounts failed: "
            + "; ".join(f"{r.account}: {r.error}" for r in failed[:20]) + (" …" if len(failed) > 20 else ""),
            metadata={"failed_accounts": dg.MetadataValue.json([r.account for r in failed])},
            allow_retries=False)


def ensure_partitions(instance: dg.DagsterInstance, partitions: dg.DynamicPartitionsDefinition,
                      accounts: Sequence[str]) -> None:
    """A just-connected account may not have its partition yet (the accounts sensor adds it)."""
    name = partitions.name
    assert name is not None
    missing = sorted(set(accounts) - set(instance.get_dynamic_partitions(name)))
    if missing:
        instance.add_dynamic_partitions(name, missing)


class BatchConfig(dg.Config):
    """A batch run: which accounts, and how."""

    accounts: list[str] = []
    """Account ids; empty: every active, sync-enabled account of the provider."""
    mode: str | None = None
    """What each account's sync does (the provider's modes, e.g. `new` orders or a `full`
    reconciliation); unset: the provider's first (usual) mode."""
    parallel_accounts: int | None = None
    """Accounts synced at once within the run (API-bound: threads, each with a database
    connection); unset: the provider's default."""


Work = Callable[[AppDatabase, Any, Any, BatchConfig, Callable[[str], None]], AccountResult]
"""(app database, client resource, registry account, run config, log) → that account's result."""


def batch_op_name(provider: str) -> str:
    return f"{provider}_sync_accounts"


def batch_job_name(provider: str) -> str:
    return f"{provider}_sync"


def batch_job(*, provider: str, client_key: str, partitions: dg.DynamicPartitionsDefinition,
              asset_keys: Sequence[dg.AssetKey], work: Work, modes: Sequence[str], description: str,
              tags: dict[str, str] | None = None, parallel_accounts: int = 4) -> dg.JobDefinition:
    """`<provider>_sync`: many accounts per run, each its own materializations and outcome.
    `parallel_accounts`: how many at once by default — more for a provider whose limit is per
    account (its threads mostly wait on their own account's pacing)."""
    @dg.op(name=batch_op_name(provider), out={}, required_resource_keys={"app_db", client_key}, pool=provider,
           tags={PROVIDER_TAG: provider}, description=description)
    def sync_accounts(context: dg.OpExecutionContext, config: BatchConfig) -> Iterator[dg.AssetMaterialization]:
        if config.mode is None:
            config = config.model_copy(update={"mode": modes[0]})
        if config.mode not in modes:
            raise dg.Failure(description=f"mode must be one of {', '.join(modes)}, not {config.mode!r}",
                             allow_retries=False)
        app_db: AppDatabase = context.resources.app_db
        client = getattr(context.resources, client_key)
        with app_db.connect() as conn:
            known = {a.account: a for a in list_accounts(conn, provider, active_only=True)}
        if config.accounts:
            wanted = list(dict.fromkeys(config.accounts))
            unknown = [a for a in wanted if a not in known]
            if unknown:
                context.log.warning(f"{provider}: not registered or inactive, skipped: {', '.join(unknown)}")
            accounts = [known[a] for a in wanted if a in known]
        else:
            accounts = [a for a in known.values() if a.sync_enabled]
        ensure_partitions(context.instance, partitions, [a.account for a in accounts])
        yield from run_accounts(context, app_db, provider=provider, job_name=batch_job_name(provider),
                                asset_keys=asset_keys, accounts=accounts,
                                parallel=config.parallel_accounts or parallel_accounts,
                                work=lambda account: work(app_db, client, account, config, context.log.debug))

    @dg.job(name=batch_job_name(provider), executor_def=dg.in_process_executor,
            tags={PROVIDER_TAG: provider, outcomes.PER_ACCOUNT_TAG: "true", **(tags or {})}, description=description)
    def _job():
        sync_accounts()

    return _job


def batch_request(provider: str, accounts: list[str], run_key: str, mode: str, trigger: str) -> dg.RunRequest:
    """A batch run of `accounts` in `mode`, tagged for the Runs list and the alerts."""
    tags = {PROVIDER_TAG: provider, TRIGGER_TAG: trigger, "sync/kind": mode, "sync/accounts": str(len(accounts))}
    if len(accounts) == 1:
        tags[ACCOUNT_TAG] = accounts[0]
    return dg.RunRequest(run_key=run_key, job_name=batch_job_name(provider), tags=tags,
                         run_config={"ops": {batch_op_name(provider): {"config": {"accounts": accounts, "mode": mode}}}})
