"""Date-window report providers (ad platforms) on Dagster: a batch job, a per-account asset and a
check, from one `ReportProvider` declaration.

* The **asset** `<provider>/<table>` is partitioned by account (dynamic partitions kept equal to
  the registry). Materializing a partition from the UI syncs that account, for the range set in
  the Launchpad (`days`, or `first_day`/`last_day`).
* The **job** `<provider>_sync` syncs a *batch* of accounts in one run (a run is a process that
  loads the code location: one per account per day would be thousands at 1,000 accounts). Each
  account's data, outcome and alert stay its own: its windows commit on their own, it gets its
  own materialization of its partition (metadata: the days read, rows, requests), its own row in
  `sync.account_outcomes` (which the failure alerts fold per account), and a revoked grant marks
  only its integration "needs re-authorisation". The run fails at the end, naming the accounts
  that failed, so the Runs list shows it.
* The **check** `recent_days_synced` answers "which days of which account are synced": every
  automatable account's lookback days must be in `sync.report_days`; gaps are listed by account.

Why partitions by account and not by day: days × 1,000 accounts would be a multi-partitioned asset
of hundreds of thousands of partitions whose single-run backfills have open bugs
(dagster-io/dagster#28861, #30786); the days are bookkeeping (`sync.report_days`, the check and
each materialization's `first_day`/`last_day`), the range is run config.
"""


import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg

from sync_pipelines.core import outcomes, report_plan, reports
from sync_pipelines.core.credentials import Cipher, CredentialsError
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.assets import require_account
from sync_pipelines.core.dg.batch import AccountResult, ensure_partitions, run_accounts
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import ACCOUNT_TAG, PROVIDER_TAG, TRIGGER_TAG
from sync_pipelines.core.http import IntegrationError
from sync_pipelines.core.oauth import ReauthorisationRequired, TokenSource
from sync_pipelines.core.report_requests import report_job_name, report_op_name
from sync_pipelines.core.registry import Account, list_accounts, mark_needs_reauth, set_timezone


@dataclass(frozen=True)
class ReportProvider:
    """What a report provider declares: its stream, client resource key and account partitions."""

    stream: reports.ReportStream
    client_key: str
    partitions: dg.DynamicPartitionsDefinition
    policy: report_plan.Policy = field(default_factory=report_plan.Policy)
    description: str = ""

    @property
    def name(self) -> str:
        return self.stream.provider

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.name, self.stream.table.name])

    @property
    def job_name(self) -> str:
        return report_job_name(self.name)

    @property
    def op_name(self) -> str:
        return report_op_name(self.name)


class ReportRange(dg.Config):
    """Which days to read (the account's own calendar days). Nothing set: by kind — the account's
    lookback for a scheduled or manual sync, the backfill or restatement window otherwise."""

    days: int | None = None
    """The last N days before today, and today."""
    first_day: str | None = None
    """YYYY-MM-DD, inclusive; with last_day (default: the account's today) an explicit range."""
    last_day: str | None = None
    kind: str = report_plan.MANUAL
    """manual, scheduled, backfill or restatement (a backfill/restatement also records that it is done)."""


class ReportRunConfig(ReportRange):
    """A batch run: which accounts, and which days."""

    accounts: list[str] = []
    """Account ids; empty: every active account of the provider (of `owner`, when set)."""
    owner: str | None = None
    """The user whose accounts to sync (the seeds' userId)."""
    parallel_accounts: int = 4
    """Accounts synced at once within the run (API-bound: threads)."""


def _parse_day(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise dg.Failure(description=f"{what} must be YYYY-MM-DD, not {value!r}", allow_retries=False) from None


def check_range(config: ReportRange) -> tuple[date | None, date | None]:
    if config.kind not in report_plan.KINDS:
        raise dg.Failure(description=f"kind must be one of {', '.join(report_plan.KINDS)}, not {config.kind!r}",
                         allow_retries=False)
    if config.days is not None and not 0 <= config.days <= 3650:
        raise dg.Failure(description=f"days must be between 0 and 3650, not {config.days}", allow_retries=False)
    first, last = _parse_day(config.first_day, "first_day"), _parse_day(config.last_day, "last_day")
    if first and last and last < first:
        raise dg.Failure(description=f"last_day {last} is before first_day {first}", allow_retries=False)
    return first, last


def sync_account(spec: ReportProvider, app_db: AppDatabase, client: Any, account: Account, config: ReportRange,
                 *, run_id: str, now: datetime | None = None,
                 log: Callable[[str], None] = lambda _: None) -> AccountResult:
    """One account's report for the configured days; never raises for the account's own failures."""
    first_day, last_day = check_range(config)
    started = datetime.now(UTC)
    first = last = None
    try:
        tokens = TokenSource(app_db.connect, Cipher.from_env(), spec.name, account.account,
                             client.refresher(account.account),
                             refresh_before=timedelta(seconds=getattr(client, "token_refresh_before_seconds", 60)))
        with client.session(account, tokens) as session, app_db.connect() as conn:
            if account.timezone is None:
                timezone = session.account_timezone()
                set_timezone(conn, spec.name, account.account, timezone)
                account = replace(account, timezone=timezone)
            first, last = report_plan.date_range(config.kind, account, now or datetime.now(UTC), spec.policy,
                                                 requested_days=config.days, first=first_day, last=last_day)
            restating = (last - first).days + 1 >= spec.policy.restatement_days
            try:
                # The client's setting (the UI shows it) may narrow the declared window.
                stream = replace(spec.stream, max_window_days=getattr(client, "max_window_days", None)
                                 or spec.stream.max_window_days)
                result = reports.sync_report(
                    conn, stream, account.account, first, last, session.daily_metrics,
                    backfill=config.kind == report_plan.BACKFILL, restatement=restating, run_id=run_id, log=log)
            finally:
                stats = session.http.stats.as_metadata()
    except ReauthorisationRequired as error:
        with app_db.connect() as conn:
            mark_needs_reauth(conn, spec.name, account.account, str(error))
        return AccountResult(account.account, False, error=f"needs re-authorisation: {error}", needs_reauth=True,
                             first=first, last=last)
    except (IntegrationError, CredentialsError, ValueError) as error:
        return AccountResult(account.account, False, error=str(error), first=first, last=last)
    counts = result.counts
    return AccountResult(account.account, True, first=first, last=last, metadata={
        "first_day": first.isoformat(), "last_day": last.isoformat(), "days": (last - first).days + 1,
        "kind": config.kind, "windows": result.windows, "days_with_rows": result.days_with_rows,
        "records_fetched": result.fetched, "records_inserted": counts.inserted,
        "records_updated": counts.updated, "records_unchanged": counts.unchanged,
        "records_deleted": counts.deleted, "timezone": account.timezone or "UTC",
        "duration_seconds": round((datetime.now(UTC) - started).total_seconds(), 3), **stats,
    })


def report_asset(spec: ReportProvider, *, owners: list[str] | None = None) -> dg.AssetsDefinition:
    """The per-account asset: a UI launch of one partition syncs that account."""

    @dg.asset(
        key=spec.asset_key, group_name=spec.name, partitions_def=spec.partitions,
        description=spec.description or f"Daily campaign metrics of each {spec.name} account (replaced per window).",
        kinds={"python", "postgres", spec.name}, owners=owners or [], tags={PROVIDER_TAG: spec.name},
        required_resource_keys={"app_db", spec.client_key}, pool=spec.name,
        metadata={"table": spec.stream.table.fullname, "view": f"{reports.VIEW_SCHEMA}.{reports.VIEW_NAME}",
                  "max_window_days": spec.stream.max_window_days},
    )
    def _asset(context: dg.AssetExecutionContext, config: ReportRange) -> dg.MaterializeResult:
        app_db: AppDatabase = context.resources.app_db
        account = require_account(app_db, spec.name, context.partition_key)
        done = sync_account(spec, app_db, getattr(context.resources, spec.client_key), account, config,
                            run_id=context.run_id, log=context.log.info)
        if not done.ok:
            raise dg.Failure(description=f"{spec.name} [{account.account}]: {done.error}", allow_retries=False)
        return dg.MaterializeResult(metadata=done.metadata)

    return _asset


def resolve_accounts(app_db: AppDatabase, spec: ReportProvider, config: ReportRunConfig) -> tuple[list[Account], list[str]]:
    """(the accounts to sync, the requested ids that are unknown or inactive)."""
    with app_db.connect() as conn:
        known = {a.account: a for a in list_accounts(conn, spec.name, active_only=True, owner=config.owner)}
    if not config.accounts:
        return list(known.values()), []
    wanted = list(dict.fromkeys(config.accounts))
    return [known[a] for a in wanted if a in known], [a for a in wanted if a not in known]


def report_job(spec: ReportProvider) -> dg.JobDefinition:
    """The batch job: many accounts per run, each its own outcome and materialization."""

    @dg.op(name=spec.op_name, out={}, required_resource_keys={"app_db", spec.client_key}, pool=spec.name,
           tags={PROVIDER_TAG: spec.name},
           description=f"Syncs the configured {spec.name} accounts' daily metrics, each on its own.")
    def sync_accounts(context: dg.OpExecutionContext, config: ReportRunConfig) -> Iterator[dg.AssetMaterialization]:
        check_range(config)
        app_db: AppDatabase = context.resources.app_db
        client = getattr(context.resources, spec.client_key)
        accounts, unknown = resolve_accounts(app_db, spec, config)
        if unknown:
            context.log.warning(f"{spec.name}: not registered or inactive, skipped: {', '.join(unknown)}")
        ensure_partitions(context.instance, spec.partitions, [a.account for a in accounts])
        yield from run_accounts(
            context, app_db, provider=spec.name, job_name=spec.job_name, asset_keys=[spec.asset_key],
            accounts=accounts, parallel=config.parallel_accounts,
            work=lambda a: sync_account(spec, app_db, client, a, config, run_id=context.run_id,
                                        log=context.log.debug))

    @dg.job(name=spec.job_name, executor_def=dg.in_process_executor,
            tags={PROVIDER_TAG: spec.name, outcomes.PER_ACCOUNT_TAG: "true"},
            description=f"Daily metrics of a batch of {spec.name} accounts (nightly, automation, backfills, manual"
                        " and triggered syncs); each account's result is its own.")
    def _job():
        sync_accounts()

    return _job


def run_config(spec: ReportProvider, **config: Any) -> dict:
    return {"ops": {spec.op_name: {"config": config}}}


def run_request(spec: ReportProvider, *, run_key: str, trigger: str, accounts: list[str], kind: str,
                **config: Any) -> dg.RunRequest:
    tags = {PROVIDER_TAG: spec.name, TRIGGER_TAG: trigger, "sync/kind": kind, "sync/accounts": str(len(accounts))}
    if len(accounts) == 1:
        tags[ACCOUNT_TAG] = accounts[0]
    return dg.RunRequest(run_key=run_key, job_name=spec.job_name, tags=tags,
                         run_config=run_config(spec, accounts=accounts, kind=kind, **config))


def recent_days_check(spec: ReportProvider, *, days: int | None = None) -> dg.AssetChecksDefinition:
    """Every automatable account has each of its lookback days (before today) synced."""

    @dg.asset_check(asset=spec.asset_key, name="recent_days_synced", required_resource_keys={"app_db"},
                    description="Each active, enabled account has every day of its lookback window synced; lists"
                                " the gaps per account.")
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        now = datetime.now(UTC)
        gaps: dict[str, list[str]] = {}
        checked = 0
        with context.resources.app_db.connect() as conn:
            ensure_tables(conn, reports.TABLES)
            for account in list_accounts(conn, spec.name, active_only=True):
                if not report_plan.automatable(account):
                    continue
                checked += 1
                today = report_plan.account_today(account.timezone, now)
                first = today - timedelta(days=days or max(1, account.lookback_days))
                synced = reports.synced_days(conn, spec.stream, account.account, first, today)
                missing = [(first + timedelta(days=i)).isoformat() for i in range((today - first).days)
                           if first + timedelta(days=i) not in synced]
                if missing:
                    gaps[account.account] = missing
        return dg.AssetCheckResult(
            passed=not gaps, severity=dg.AssetCheckSeverity.WARN,
            metadata={"accounts_checked": checked, "accounts_with_gaps": len(gaps),
                      "gaps": dg.MetadataValue.json(dict(list(gaps.items())[:100]))})

    return _check


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default
