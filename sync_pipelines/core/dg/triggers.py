"""External triggers, the Dagster side: inbox rows written by `POST /triggers/<job>` become runs.

The receiver has already authenticated each trigger (QStash signature or bearer token) and stored
it once per job and message id (provider `trigger`, account = the job's name, delivery id
`<job>:<message id>`). This sensor turns each new row into one `RunRequest` for that job, so "a
manual trigger is a launched run".

Exactly once: the run key is `trigger:<delivery id>` (so per job), and Dagster never launches a
second run for a run key a sensor has already used; the receiver's unique (provider, delivery id)
means a replayed message is not even a second row. So the sensor marks a *new* row (id above the
cursor) processed when it requests its run (`run_id="sensor"`), not when the run finishes: marking
is bookkeeping for the backlog and health check, not what prevents a double launch. The cursor
(last inbox id read) is what moves the sensor forward; a tick whose result is lost (never stored)
is evaluated again from the old cursor, re-reads the same rows whatever their mark, and asks for
the same run keys, which Dagster de-duplicates.

`inbox.read_after` can step over a row whose insert committed after a higher id was read; such a
row stays unprocessed, so each tick also sweeps rows at or below the cursor still pending after
`SWEEP_AFTER`. The cursor never re-reads those, so a swept row is marked processed only once a run
with its run key exists in the instance; until then every tick requests it again under the same
run key (a lost tick result cannot lose it, and Dagster de-duplicates).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import dagster as dg

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.providers import TRIGGER_PROVIDER

if TYPE_CHECKING:  # what define_asset_job returns; not exported at the top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

PROVIDER = TRIGGER_PROVIDER  # the receiver stores triggers under the same core constant
SENSOR_NAME = "external_triggers_sensor"
SWEEP_AFTER = timedelta(minutes=1)


def run_key(event: inbox.InboxEvent) -> str:
    return f"trigger:{event.delivery_id}"


def trigger_run_request(event: inbox.InboxEvent, run_config: dict | None = None) -> dg.RunRequest:
    """The run one stored trigger asks for; its run key makes the launch happen once."""
    return dg.RunRequest(
        job_name=event.account,
        run_key=run_key(event),
        run_config=run_config or {},
        tags={
            "sync/trigger": "external",
            "sync/trigger_source": str(event.headers.get("source", "unknown")),
            "sync/inbox_id": str(event.id),
        },
    )


def build_trigger_sensor(
    jobs: Sequence["dg.JobDefinition | UnresolvedAssetJobDefinition"],
    *,
    minimum_interval_seconds: int = 5,
    batch_limit: int = 500,
    bodies: Mapping[str, Callable[[object], dict]] | None = None,
) -> dg.SensorDefinition:
    """One sensor launching any of `jobs` when the receiver has stored a trigger for it; a job in
    `bodies` gets its run config from the trigger's JSON body (already validated by the receiver
    with the same function; a body it refuses now is set aside, logged, never launched)."""
    bodies = dict(bodies or {})
    names = [job.name for job in jobs]
    if not names:
        raise ValueError("build_trigger_sensor needs at least one job")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate job names: {names}")
    known = frozenset(names)

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches a run for each signed external trigger (QStash or bearer) the receiver stored: "
        + ", ".join(sorted(known)),
    )
    def external_triggers_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase):
        after = int(context.cursor or 0)
        with app_db.connect() as conn:
            ensure_tables(conn, inbox.TABLES)
            events = inbox.read_after(conn, PROVIDER, after, limit=batch_limit)
            missed = [
                event
                for account in sorted(inbox.stale_accounts(conn, PROVIDER, older_than=SWEEP_AFTER))
                for event in inbox.pending(conn, PROVIDER, account, up_to_id=after)
            ]
            requests, handled, resent = [], [], 0
            for event in sorted([*missed, *events], key=lambda e: e.id):
                try:
                    config = bodies[event.account](event.payload) if event.account in bodies else None
                except ValueError as error:
                    handled.append(event.id)
                    context.log.warning(f"trigger {event.id} for {event.account}: body refused ({error});"
                                        " marked processed")
                    continue
                if event.account not in known:
                    handled.append(event.id)
                    context.log.warning(
                        f"trigger {event.id} ({event.delivery_id}) names job {event.account!r}, which this "
                        f"sensor does not launch ({', '.join(sorted(known))}); marked processed"
                    )
                elif event.id > after:  # new: a lost tick result re-reads it, so mark it now
                    handled.append(event.id)
                    requests.append(trigger_run_request(event, config))
                elif _launched(context.instance, run_key(event)):  # swept: done once its run exists
                    handled.append(event.id)
                else:
                    requests.append(trigger_run_request(event, config))
                    resent += 1
            inbox.mark_processed(conn, handled, run_id="sensor")
        cursor = str(max((event.id for event in events), default=after))
        if resent:
            context.log.info(f"re-requested {resent} trigger(s) the cursor had stepped over")
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason("no new triggers"), cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return external_triggers_sensor


def _launched(instance: dg.DagsterInstance, key: str) -> bool:
    """Does a run with this run key exist, i.e. has Dagster stored a request for it?"""
    return bool(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": key}), limit=1))
