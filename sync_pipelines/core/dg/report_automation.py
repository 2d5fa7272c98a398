"""What launches report syncs without anyone asking: the nightly schedule and the automation
sensor (the seed's 5-minute worker), both a bounded number of batch runs whatever the number of
accounts.

* Nightly (02:00 UTC): every automatable account (active, automatic sync enabled, not waiting for
  re-authorisation) reads its lookback window (default 1 day: yesterday's final numbers and
  today's so far), in runs of at most `batch_size` accounts.
* Automation (every 5 minutes): what `report_plan.due` says is due — an initial backfill for a
  just-connected account, the weekly restatement, a sync whose cadence has come — one run per kind
  per `batch_size` accounts, at most `max_runs` per tick, and nothing while its previous runs have
  not finished (they may be reading the same accounts).
Settings come from the environment so a deployment tunes them without code:
`SYNC_REPORT_BATCH_SIZE` (default 250), `SYNC_REPORT_MAX_RUNS_PER_TICK` (default 4), and
`SYNC_REPORT_BACKFILL_DAYS` (unset: the provider's policy, 90 days), how far back an initial
backfill reads — passed as the run's `days`, so the Launchpad config shows it.
"""


from datetime import UTC, datetime

import dagster as dg

from sync_pipelines.core import report_plan, reports
from sync_pipelines.core.dg.reports import ReportProvider, env_int, run_request
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import PROVIDER_TAG, TRIGGER_TAG
from sync_pipelines.core.registry import list_accounts

NIGHTLY, AUTOMATION = "nightly", "automation"
_IN_FLIGHT = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def batch_size() -> int:
    return max(1, env_int("SYNC_REPORT_BATCH_SIZE", 250))


def backfill_config() -> dict[str, int]:
    """Run config of a backfill run: `days` when `SYNC_REPORT_BACKFILL_DAYS` overrides the policy."""
    days = env_int("SYNC_REPORT_BACKFILL_DAYS", 0)
    return {"days": days} if days > 0 else {}


def nightly_schedule(spec: ReportProvider, job: dg.JobDefinition, *, cron: str = "0 2 * * *") -> dg.ScheduleDefinition:
    @dg.schedule(name=f"{spec.name}_nightly", job=job, cron_schedule=cron, execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Every automatable {spec.name} account's lookback window, in batch runs.")
    def _nightly(context: dg.ScheduleEvaluationContext, app_db: AppDatabase):
        with app_db.connect() as conn:
            accounts = [a.account for a in list_accounts(conn, spec.name, active_only=True)
                        if report_plan.automatable(a)]
        if not accounts:
            return dg.SkipReason(f"no automatable {spec.name} account")
        tick = context.scheduled_execution_time.isoformat()
        return [run_request(spec, run_key=f"{NIGHTLY}:{tick}:{i}", trigger=NIGHTLY, accounts=batch,
                            kind=report_plan.SCHEDULED)
                for i, batch in enumerate(report_plan.batches(accounts, batch_size()))]

    return _nightly


def automation_sensor(spec: ReportProvider, job: dg.JobDefinition, *,
                      minimum_interval_seconds: int = 300) -> dg.SensorDefinition:
    @dg.sensor(name=f"{spec.name}_automation", job=job, minimum_interval_seconds=minimum_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Launches what is due for {spec.name} accounts per their automation preferences: "
                           "initial backfills, weekly restatements, cadence syncs; never a disabled account.")
    def _automation(context: dg.SensorEvaluationContext, app_db: AppDatabase):
        in_flight = context.instance.get_runs(
            filters=dg.RunsFilter(job_name=job.name, statuses=_IN_FLIGHT,
                                  tags={PROVIDER_TAG: spec.name, TRIGGER_TAG: AUTOMATION}), limit=1)
        if in_flight:
            return dg.SkipReason(f"automation run {in_flight[0].run_id} has not finished yet")
        now = datetime.now(UTC)
        with app_db.connect() as conn:
            accounts = list_accounts(conn, spec.name, active_only=True)
            due = report_plan.due(accounts, reports.report_states(conn, spec.stream), now, spec.policy)
        if not due:
            return dg.SkipReason(f"nothing due among {len(accounts)} {spec.name} accounts")
        requests, size, limit = [], batch_size(), max(1, env_int("SYNC_REPORT_MAX_RUNS_PER_TICK", 4))
        for kind in (report_plan.BACKFILL, report_plan.RESTATEMENT, report_plan.SCHEDULED):
            ids = [d.account for d in due if d.kind == kind]
            for i, batch in enumerate(report_plan.batches(ids, size)):
                if len(requests) < limit:
                    requests.append(run_request(spec, run_key=f"{AUTOMATION}:{now.isoformat()}:{kind}:{i}",
                                                trigger=AUTOMATION, accounts=batch, kind=kind,
                                                **(backfill_config() if kind == report_plan.BACKFILL else {})))
        launched = sum(int(r.tags["sync/accounts"]) for r in requests)
        context.log.info(f"{spec.name}: {len(due)} accounts due, {launched} launched in {len(requests)} runs")
        return requests

    return _automation
