"""The sync status report (the seeds' "GET sync status / history / metrics"), read from Dagster's
run and event storage — there is no sync_logs table.

Per provider, account and kind (`sync` runs of one account; `webhooks` runs, which apply many
accounts' deliveries and appear as one row per provider) over the last N days: runs, success rate, last success, last failure
with its message, duration percentiles, records written (inserted + updated, from the
materialization metadata), webhook deliveries set aside and data freshness (time since the last
successful run). At most `limit` runs are read, newest first, so a busy period drops the oldest
runs, never the latest outcome; rows then say `truncated`.

Accounts that need someone are listed apart (`accounts_attention`, read from the app database):
those whose grant was revoked ("needs re-authorisation", from the registry) and those whose latest
outcome in a batch run failed (`sync.account_outcomes`), since a batch run's own status in
Dagster's storage says nothing about one of its accounts.
"""

import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from sync_pipelines.core import outcomes
from sync_pipelines.core.dg.runs import PROVIDER_TAG, WEBHOOKS, WEBHOOKS_TAG, account_of, kind_of, provider_of
from sync_pipelines.core.registry import list_accounts
from sync_pipelines.core.report import SET_ASIDE, WRITTEN

_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]


@dataclass
class AccountStatus:
    provider: str
    account: str
    kind: str = "sync"  # or "webhooks"
    runs: int = 0
    failures: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str | None = None
    records_written: int = 0
    deliveries_set_aside: int = 0  # real-time runs: deliveries that could not be applied, kept in the inbox
    truncated: bool = False  # the run limit cut off older runs: counts cover only the newest
    durations: list[float] = field(default_factory=list, repr=False)

    @property
    def success_rate(self) -> float:
        return (self.runs - self.failures) / self.runs if self.runs else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.durations:
            return None
        if len(self.durations) == 1:
            return self.durations[0]
        return statistics.quantiles(self.durations, n=100, method="inclusive")[int(q) - 1]

    def as_dict(self, now: datetime) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "durations"}
        data.update(
            success_rate=round(self.success_rate, 4),
            duration_p50_s=self.percentile(50),
            duration_p95_s=self.percentile(95),
            freshness_s=(now - self.last_success_at).total_seconds() if self.last_success_at else None,
        )
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first line of the user's error behind a run's first step failure."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)[:1]:
        error = record.dagster_event.event_specific_data.error
        while error is not None and error.cause is not None:  # the user's error, not Dagster's wrapper
            error = error.cause
        if error is not None:
            return error.message.strip().splitlines()[0][:300]
    return "see the run's logs"


def _materialized_totals(instance: dg.DagsterInstance, run_id: str) -> tuple[int, int]:
    """(records written, deliveries set aside) over a run's materializations."""
    written = set_aside = 0
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        meta = record.dagster_event.event_specific_data.materialization.metadata
        for key in WRITTEN:  # the names every report uses (core.report), whatever the provider
            value = meta.get(key)
            written += int(value.value) if value is not None else 0
        value = meta.get(SET_ASIDE)
        set_aside += int(value.value) if value is not None else 0
    return written, set_aside


def status_report(instance: dg.DagsterInstance, *, days: int = 7, provider: str | None = None,
                  limit: int = 5_000) -> list[AccountStatus]:
    since = datetime.now(UTC) - timedelta(days=days)
    records = []
    for tags in ([{PROVIDER_TAG: provider}, {WEBHOOKS_TAG: provider}] if provider else [None]):
        records += instance.get_run_records(
            filters=dg.RunsFilter(statuses=_FINISHED, created_after=since, tags=tags),
            limit=limit + 1, order_by="create_timestamp", ascending=False,
        )
    records.sort(key=lambda r: r.create_timestamp, reverse=True)
    truncated, records = len(records) > limit, records[:limit]
    found: dict[tuple[str, str, str], AccountStatus] = {}
    for record in reversed(records):  # oldest first, so the last run seen is the latest
        run = record.dagster_run
        who = provider_of(run)
        if who is None:
            continue
        kind = kind_of(run)
        account = "" if kind == WEBHOOKS else account_of(run)
        status = found.setdefault((who, account, kind), AccountStatus(who, account, kind))
        status.runs += 1
        ended = datetime.fromtimestamp(record.end_time, UTC) if record.end_time else record.update_timestamp
        if record.start_time and record.end_time:
            status.durations.append(record.end_time - record.start_time)
        if run.status == dg.DagsterRunStatus.SUCCESS:
            status.last_success_at = ended
            written, set_aside = _materialized_totals(instance, run.run_id)
            status.records_written += written
            status.deliveries_set_aside += set_aside
        else:
            status.failures += 1
            status.last_failure_at = ended
            status.last_failure = failure_reason(instance, run.run_id)
    for status in found.values():
        status.truncated = truncated
    return sorted(found.values(), key=lambda s: (s.provider, s.kind, s.account))


def render_table(rows: list[AccountStatus], now: datetime) -> str:
    """A Markdown table (the CLI prints it; the status asset attaches it as metadata)."""
    lines = ["| provider | account | kind | runs | success | last success | p50 s | p95 s | records written | last failure |",
             "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        d = r.as_dict(now)
        p50, p95 = d["duration_p50_s"], d["duration_p95_s"]
        lines.append(
            f"| {r.provider} | {r.account or ('(all accounts)' if r.kind == WEBHOOKS else '-')} | {r.kind} | {r.runs} | {r.success_rate:.0%} | {d['last_success_at'] or '-'}"
            f" | {p50 and round(p50, 1) or '-'} | {p95 and round(p95, 1) or '-'} | {r.records_written}"
            + (f" ({r.deliveries_set_aside} deliveries set aside)" if r.deliveries_set_aside else "")
            + f" | {(r.last_failure or '-').replace('|', '/')[:80]} |"
        )
    if any(r.truncated for r in rows):
        lines.append("\n_Run limit reached: only the newest runs were read; older runs in the period are not counted._")
    return "\n".join(lines)



@dataclass(frozen=True)
class NeedsReauth:
    provider: str
    account: str
    owner: str | None
    since: datetime | None
    reason: str | None


@dataclass(frozen=True)
class FailedAccount:
    provider: str
    account: str
    job: str
    run_id: str
    at: datetime | None
    error: str | None
    first_day: object = None
    last_day: object = None


@dataclass
class AccountsAttention:
    needs_reauthorisation: list[NeedsReauth] = field(default_factory=list)
    failed: list[FailedAccount] = field(default_factory=list)

    def as_dict(self) -> dict:
        def plain(item) -> dict:
            return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(item).items()}
        return {"needs_reauthorisation": [plain(a) for a in self.needs_reauthorisation],
                "failed_accounts": [plain(a) for a in self.failed]}


def accounts_attention(conn: psycopg.Connection, provider: str | None = None) -> AccountsAttention:
    """Active accounts waiting for re-authorisation, and those whose latest batch-run outcome
    failed (an account already listed as waiting for re-authorisation is not listed twice)."""
    registered = {(a.provider, a.account): a for a in list_accounts(conn, provider)}
    found = AccountsAttention()
    for a in registered.values():
        if a.active and a.needs_reauth:
            found.needs_reauthorisation.append(NeedsReauth(a.provider, a.account, a.owner, a.auth_error_at,
                                                           a.auth_error))
    for o in outcomes.latest(conn, provider):
        account = registered.get((o.provider, o.account))
        if o.ok or (account is not None and (not account.active or account.needs_reauth)):
            continue
        found.failed.append(FailedAccount(o.provider, o.account, o.job, o.run_id, o.recorded_at, o.error,
                                          o.first_day, o.last_day))
    return found


def render_attention(attention: AccountsAttention) -> str:
    """Markdown tables of the accounts that need someone; empty when none do."""
    def when(moment: datetime | None) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"

    def cell(text: str | None) -> str:
        return (text or "-").replace("|", "/").replace("\n", " ")[:80]

    parts = []
    if attention.needs_reauthorisation:
        parts += ["Accounts that need re-authorisation (reconnect: `sync-pipelines accounts connect`):", "",
                  "| provider | account | owner | since | reason |", "| --- | --- | --- | --- | --- |"]
        parts += [f"| {a.provider} | {a.account} | {a.owner or '-'} | {when(a.since)} | {cell(a.reason)} |"
                  for a in attention.needs_reauthorisation]
    if attention.failed:
        parts += ([""] if parts else []) + [
            "Accounts whose latest batch run failed:", "",
            "| provider | account | job | at | days | error | run |", "| --- | --- | --- | --- | --- | --- | --- |"]
        parts += [f"| {a.provider} | {a.account} | {a.job} | {when(a.at)} | {a.first_day or '-'}..{a.last_day or '-'}"
                  f" | {cell(a.error)} | {a.run_id} |" for a in attention.failed]
    return "\n".join(parts)
