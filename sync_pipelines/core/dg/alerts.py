"""Failure alerts read from Dagster's run storage (what the seeds built on `sync_logs`).

A sensor walks finished runs in update order, page by page until it has read them all (its cursor
never moves backwards), and keeps, per (job, provider, account), the number of consecutive
failures in `sync.alert_state`. It posts to a Slack-compatible webhook
(`SCHEDULER_ALERT_WEBHOOK_URL`) once when that count reaches the threshold
(`SCHEDULER_ALERT_FAILURE_THRESHOLD`, default 3; `SCHEDULER_ALERT_FAILURE_THRESHOLD_<PROVIDER>`
overrides it per provider) — never again for the same streak, so no alert storm — and once more
when the streak ends with a success. A message that could not be delivered is kept and retried on
the next tick; delivery trouble is logged and never fails the sensor.
"""

import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import sqlalchemy as sa
from psycopg.rows import class_row

from sync_pipelines.core import credentials, outcomes
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import account_of, provider_of
from sync_pipelines.core.dg.status import failure_reason

log = logging.getLogger(__name__)
metadata = sa.MetaData()

ALERT_STATE = sa.Table(
    "alert_state",
    metadata,
    sa.Column("job", sa.Text, primary_key=True),
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("account", sa.Text, primary_key=True, comment="'' when the run has no account"),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alerted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("pending_message", sa.Text, comment="an alert not yet delivered"),
    sa.Column("last_run_id", sa.Text),
    sa.Column("last_update", sa.DateTime(timezone=True)),
    schema="sync",
)

_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
_LOOKBACK = timedelta(minutes=10)  # re-read at the cursor boundary; per-key state de-duplicates
_TICK = timedelta(microseconds=1)  # run storage compares update timestamps strictly


@dataclass
class AlertState:
    job: str
    provider: str
    account: str
    consecutive_failures: int = 0
    alerted: bool = False
    pending_message: str | None = None
    last_run_id: str | None = None
    last_update: datetime | None = None


def failure_threshold(provider: str, environ: Mapping[str, str] = os.environ) -> int:
    specific = environ.get(f"SCHEDULER_ALERT_FAILURE_THRESHOLD_{provider.upper()}")
    return max(1, int(specific or environ.get("SCHEDULER_ALERT_FAILURE_THRESHOLD") or 3))


def post_alert(url: str, text: str, *, attempts: int = 3, timeout: float = 5.0, backoff: float = 0.5) -> bool:
    """POST `{"text": …}` (Slack, Teams and most chat webhooks accept it); True when delivered."""
    import requests  # here, not at the top: the code location (so every run) loads this module

    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(url, json={"text": text}, timeout=timeout)
            if response.status_code < 300:
                return True
            log.warning("alert webhook answered HTTP %s (attempt %s/%s)", response.status_code, attempt, attempts)
        except requests.RequestException as error:
            log.warning("alert webhook unreachable: %s (attempt %s/%s)", type(error).__name__, attempt, attempts)
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    return False


def _run_link(run_id: str) -> str:
    base = os.environ.get("DAGSTER_UI_URL", "http://127.0.0.1:3000").rstrip("/")
    return f"{base}/runs/{run_id}"


def _load(conn: psycopg.Connection, job: str, provider: str, account: str) -> AlertState:
    with conn.cursor(row_factory=class_row(AlertState)) as cur:
        found = cur.execute(
            "SELECT job, provider, account, consecutive_failures, alerted, pending_message, last_run_id,"
            " last_update FROM sync.alert_state WHERE job = %s AND provider = %s AND account = %s",
            (job, provider, account),
        ).fetchone()
    return found or AlertState(job, provider, account)


def _save(conn: psycopg.Connection, s: AlertState) -> None:
    conn.execute(
        "INSERT INTO sync.alert_state (job, provider, account, consecutive_failures, alerted, pending_message,"
        " last_run_id, last_update) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (job, provider, account) DO UPDATE SET consecutive_failures = EXCLUDED.consecutive_failures,"
        " alerted = EXCLUDED.alerted, pending_message = EXCLUDED.pending_message,"
        " last_run_id = EXCLUDED.last_run_id, last_update = EXCLUDED.last_update",
        (s.job, s.provider, s.account, s.consecutive_failures, s.alerted, s.pending_message, s.last_run_id,
         s.last_update),
    )


def _advance(state: AlertState, record: dg.RunRecord, instance: dg.DagsterInstance) -> None:
    """Fold one finished run into its streak, queueing a message when one is due."""
    run = record.dagster_run
    failed = run.status == dg.DagsterRunStatus.FAILURE
    _fold(state, failed, run.run_id, record.update_timestamp,
          lambda: failure_reason(instance, run.run_id) if failed else "")


def _advance_outcome(state: AlertState, outcome: outcomes.Outcome) -> None:
    """Fold one account's outcome in a batch run; a revoked grant is alerted at once."""
    _fold(state, not outcome.ok, outcome.run_id, outcome.recorded_at, lambda: outcome.error or "unknown",
          urgent=outcome.needs_reauth)


def _fold(state: AlertState, failed: bool, run_id: str, when: datetime | None, reason, *, urgent: bool = False) -> None:
    who = f"{state.provider}/{state.account}" if state.account else state.provider
    if failed:
        state.consecutive_failures += 1
        if not state.alerted and (urgent or state.consecutive_failures >= failure_threshold(state.provider)):
            state.alerted = True
            what = ("needs re-authorisation (reconnect it)" if urgent
                    else f"failed {state.consecutive_failures} times in a row")
            _queue(state, f":rotating_light: {state.job} {what} for {who}. Last error: {reason()}"
                          f" — {_run_link(run_id)}")
    else:
        if state.alerted:
            _queue(state, f":white_check_mark: {state.job} recovered for {who} after {state.consecutive_failures}"
                          f" consecutive failures — {_run_link(run_id)}")
        state.consecutive_failures, state.alerted = 0, False
    state.last_run_id, state.last_update = run_id, when


def _queue(state: AlertState, message: str) -> None:
    """Add to what is still undelivered: a failure alert the channel has not taken yet must not be
    replaced by the recovery that follows it (nobody would learn there was an outage)."""
    state.pending_message = f"{state.pending_message}\n{message}" if state.pending_message else message


def finished_runs(instance: dg.DagsterInstance, after: datetime, batch_size: int = 500) -> Iterator[dg.RunRecord]:
    """Every run that finished (last updated) after `after`, oldest first, read `batch_size` at a
    time. Pages are keyed on the update timestamp; a timestamp cut by a page limit is read again
    whole on the next page, so runs sharing it (second-resolution storage) are never skipped."""
    lower, seen = after, set()

    def read(updated_after: datetime, updated_before: datetime | None = None, limit: int | None = None):
        return instance.get_run_records(
            filters=dg.RunsFilter(statuses=_FINISHED, updated_after=updated_after, updated_before=updated_before),
            order_by="update_timestamp", ascending=True, limit=limit,
        )

    while True:
        page = read(lower, limit=batch_size)
        full = len(page) == batch_size
        last = page[-1].update_timestamp if page else None
        if full and page[0].update_timestamp == last:
            # One timestamp fills the page: read all its runs at once, then step past it.
            page = read(last - _TICK, last + _TICK)
        elif full:
            page = [r for r in page if r.update_timestamp < last]  # `last` is read whole next time
        for record in page:
            if record.dagster_run.run_id not in seen:
                seen.add(record.dagster_run.run_id)
                yield record
        if not full:
            return
        lower = page[-1].update_timestamp


REAUTHORISATION = "reauthorisation"  # the alert-state "job" of expiring-grant warnings


def _warn_expiring_grants(conn: psycopg.Connection) -> None:
    """Once per expiry, a warning for each account whose refresh token lapses within the warning
    window (`SYNC_REAUTH_WARNING_DAYS`): it must be re-authorised by then, syncs cannot renew it."""
    for grant in credentials.expiring_refresh_tokens(conn, credentials.reauthorisation_warning_window()):
        with conn.transaction():
            state = _load(conn, REAUTHORISATION, grant.provider, grant.account)
            if state.last_update == grant.refresh_expires_at:
                continue  # already warned about this expiry; a reconnect brings a new one
            when = grant.refresh_expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            _queue(state, f":warning: {grant.provider}/{grant.account}: its authorisation lapses on {when} (the"
                          " refresh token is not renewed by use); reconnect it before then with"
                          f" `sync-pipelines accounts connect {grant.provider} {grant.account} …`")
            state.last_update = grant.refresh_expires_at
            _save(conn, state)


def _read_cursor(cursor: str | None) -> tuple[datetime, int | None]:
    """(runs read up to this update time, account outcomes read up to this id); the older cursor
    was the bare timestamp. No outcome id yet: start from the newest outcome, as runs start from
    the last day rather than the beginning of time."""
    if not cursor:
        return datetime.now(UTC) - timedelta(days=1), None
    if cursor.startswith("{"):
        parsed = json.loads(cursor)
        return datetime.fromisoformat(parsed["runs"]), parsed.get("outcomes")
    return datetime.fromisoformat(cursor), None


def build_failure_alert_sensor(minimum_interval_seconds: int = 30, batch_size: int = 500) -> dg.SensorDefinition:
    @dg.sensor(
        name="sync_failure_alerts",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Posts to SCHEDULER_ALERT_WEBHOOK_URL when a job fails N times in a row for an account, "
        "and when it recovers.",
    )
    def failure_alerts(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
        since, outcome_id = _read_cursor(context.cursor)
        newest, read = since, 0  # the cursor never moves backwards
        url = os.environ.get("SCHEDULER_ALERT_WEBHOOK_URL")
        sent = failed = 0
        with app_db.connect() as conn:
            ensure_tables(conn, [ALERT_STATE])
            for record in finished_runs(context.instance, since - _LOOKBACK, batch_size):
                read += 1
                newest = max(newest, record.update_timestamp)
                if record.dagster_run.tags.get(outcomes.PER_ACCOUNT_TAG):
                    continue  # its accounts' outcomes are folded one by one below
                key = (record.dagster_run.job_name, provider_of(record.dagster_run) or "other",
                       account_of(record.dagster_run))
                with conn.transaction():
                    state = _load(conn, *key)
                    if state.last_update is not None and record.update_timestamp <= state.last_update:
                        continue
                    _advance(state, record, context.instance)
                    _save(conn, state)
            if outcome_id is None:
                outcome_id = outcomes.newest_id(conn)
            for outcome in outcomes.read_after(conn, outcome_id):
                read += 1
                outcome_id = outcome.id or outcome_id
                with conn.transaction():
                    state = _load(conn, outcome.job, outcome.provider, outcome.account)
                    _advance_outcome(state, outcome)
                    _save(conn, state)
            _warn_expiring_grants(conn)
            with conn.cursor(row_factory=class_row(AlertState)) as cur:
                waiting = cur.execute("SELECT * FROM sync.alert_state WHERE pending_message IS NOT NULL").fetchall()
            for state in waiting:
                if not url:
                    context.log.warning(f"alert not sent (SCHEDULER_ALERT_WEBHOOK_URL unset): {state.pending_message}")
                elif not post_alert(url, state.pending_message):
                    failed += 1
                    continue  # kept; retried next tick
                else:
                    sent += 1
                conn.execute(
                    "UPDATE sync.alert_state SET pending_message = NULL WHERE job = %s AND provider = %s"
                    " AND account = %s AND pending_message = %s",
                    (state.job, state.provider, state.account, state.pending_message),
                )
        summary = f"{read} finished runs and account outcomes read, {sent} alerts sent, {failed} to retry"
        return dg.SensorResult(cursor=json.dumps({"runs": newest.isoformat(), "outcomes": outcome_id}),
                               skip_reason=dg.SkipReason(summary))

    return failure_alerts

