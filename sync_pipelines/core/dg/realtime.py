"""The real-time flow: inbox → sensor → a bounded number of runs, each applying many accounts.

The receiver has already verified, de-duplicated and stored each delivery. Each tick the sensor
asks for at most one run per provider, whatever the number of accounts: a run applies every
delivery pending when it starts, for every account, so while one run is still waiting in the queue
the sensor asks for none (that run will apply what arrived meanwhile). Run keys name the newest
inbox id seen, so a retried tick never launches the same batch twice; deliveries left pending by a
failed run are swept after `STALE_AFTER`. Runs are told apart from sync runs by their tags
(`sync/webhooks: <provider>`, `sync/trigger: webhook`, not `sync/provider`: they never call the
provider's API, so they stay out of its concurrency limit, and `dagster/priority` puts them ahead
in the run queue).

Inside a run, accounts are applied in transactions of up to `EVENTS_PER_TRANSACTION` deliveries;
a transaction that fails is retried account by account, so one account whose rows are locked or
whose write fails never holds back the others. Its deliveries stay pending, it is named in the
run's failure (which the op's RetryPolicy retries: only what is still pending is applied again),
and every account that was applied gets its own materializations (partition = account), so the
UI still answers "when did shop X last change". Delivery is at-least-once and applying twice is
harmless (the upsert keeps the newest version by the provider's updated-at).

A delivery that cannot be applied (a payload without its id, an object where a number or text
belongs, a value the table refuses — whatever its own values make fail) is set aside: marked
processed with the reason kept on its inbox row (`set_aside`), counted as a rejection
(`unapplicable`, which the webhook health report reads), listed by inbox id in the run's
materialization metadata (`set_aside_inbox_ids`) and logged — so it never blocks the deliveries
after it. Failures that say the database is unwell (connection lost, statement cancelled, a table
missing) are not the delivery's fault: they fail the account (or the run, when the connection is
gone), which is retried.

A delete for a record not stored yet leaves a tombstone row (`deleted_at` set, no other values),
so a create delivered late does not bring the record back.
"""


import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.runs import TRIGGER_TAG, WEBHOOKS_TAG
from sync_pipelines.core.entities import data_columns, key_columns, row_builder
from sync_pipelines.core.report import SET_ASIDE
from sync_pipelines.core.webhooks import WebhookDeclaration
from sync_pipelines.core.writer import UpsertWriter, WriteCounts

STALE_AFTER = timedelta(minutes=5)
EVENTS_PER_TRANSACTION = 2_000  # deliveries applied in one transaction (whole accounts, at least one)
LOCK_TIMEOUT = "5s"  # an account whose rows another transaction holds longer is retried later
PRIORITY = "10"  # webhook runs leave the run queue before sync runs (default priority 0)
_WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]


@dataclass(frozen=True)
class Route:
    """Where a topic's payloads go: upsert the record, or soft-delete by id."""

    table: sa.Table
    asset_key: dg.AssetKey
    delete: bool = False
    id_path: str = "id"
    apply: Callable[..., int] | None = None  # a delivery written by the provider's own function


def declared_routes(webhooks: WebhookDeclaration) -> tuple[dict[str, Route], Callable[[str], str]]:
    """A webhook declaration's topic map as apply routes (by route name) and topic → route name.

    Topics that share a route name (orders/create, orders/paid → orders) are applied as one batch;
    a topic outside the map names no route, so its deliveries are marked processed unapplied.
    """
    routes: dict[str, Route] = {}
    for topic, declared in webhooks.routes.items():
        route = Route(table=declared.table, asset_key=dg.AssetKey(list(declared.asset)), delete=declared.delete,
                      id_path=declared.id_path, apply=declared.apply)
        known = routes.setdefault(declared.name, route)
        if (known.table is not route.table or known.asset_key != route.asset_key or known.delete != route.delete
                or known.id_path != route.id_path or known.apply is not route.apply):
            raise ValueError(f"{webhooks.provider}: topic {topic!r} names route {declared.name!r} with another target")

    def topic_of(topic: str) -> str:
        declared = webhooks.routes.get(topic)
        return declared.name if declared is not None else topic

    return routes, topic_of


def build_inbox_sensor(
    provider: str, job: dg.JobDefinition, *, minimum_interval_seconds: int = 5
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{provider}_inbox_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Asks for one run applying every {provider} account's new webhook deliveries"
                    " (none while such a run still waits to start).",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase):
        after = int(context.cursor or 0)
        with app_db.connect() as conn:
            newest = inbox.newest_after(conn, provider, after)
            stale = newest is None and inbox.has_stale(conn, provider, older_than=STALE_AFTER)
        cursor = str(newest if newest is not None else after)
        if newest is None and not stale:
            return dg.SensorResult(skip_reason=dg.SkipReason("no new deliveries"), cursor=cursor)
        waiting = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, statuses=_WAITING), limit=1)
        if waiting:
            return dg.SensorResult(cursor=cursor, skip_reason=dg.SkipReason(
                f"run {waiting[0].dagster_run.run_id} has not started yet; it applies these deliveries too"))
        if newest is not None:
            key = f"{provider}:inbox:{newest}"
        else:  # pending deliveries whose run failed or never ran: ask again, once per 5-minute bucket
            key = f"{provider}:sweep:{int(datetime.now(UTC).timestamp() // STALE_AFTER.total_seconds())}"
        return dg.SensorResult(run_requests=[apply_request(provider, key)], cursor=cursor)

    return inbox_sensor


def apply_request(provider: str, run_key: str, accounts: Sequence[str] | None = None) -> dg.RunRequest:
    """A run applying the pending deliveries of `accounts` (all accounts when None)."""
    config: dict = {} if accounts is None else {"accounts": list(accounts)}
    return dg.RunRequest(
        run_key=run_key,
        run_config={"ops": {f"apply_{provider}_webhooks": {"config": config}}},
        tags={WEBHOOKS_TAG: provider, TRIGGER_TAG: "webhook", "dagster/priority": PRIORITY},
    )


class ApplyConfig(dg.Config):
    accounts: list[str] | None = None
    """Only these accounts (e.g. shop domains); unset: every account with pending deliveries."""
    up_to_id: int | None = None
    """Only deliveries with inbox id up to this one; unset: everything pending when the run starts."""


@dataclass
class AccountsApplied:
    """What one run did: results per (account, route name), applied events, failed accounts."""

    results: dict[tuple[str, str], "RouteResult"] = field(default_factory=dict)
    events: list[inbox.InboxEvent] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # account → why


APPLY_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def build_apply_job(provider: str, routes: Mapping[str, Route], topic_of: Callable[[str], str], *,
                    retry_policy: dg.RetryPolicy | None = APPLY_RETRY_POLICY,
                    after_apply: Callable[..., Mapping[str, int]] | None = None) -> dg.JobDefinition:
    """A job applying pending deliveries of many accounts; `topic_of` maps a topic to a route name.

    `after_apply(conn, accounts)` (a webhook declaration's) runs once the deliveries are committed,
    in its own transaction, with the accounts applied (e.g. assigning the new orders they brought)."""
    tables = sorted({r.table for r in routes.values()}, key=lambda t: t.fullname)

    @dg.op(
        name=f"apply_{provider}_webhooks",
        required_resource_keys={"app_db"},
        retry_policy=retry_policy,
        tags={WEBHOOKS_TAG: provider},
        out={},
    )
    def apply_webhooks(context: dg.OpExecutionContext, config: ApplyConfig) -> Iterator[dg.AssetMaterialization]:
        app_db: AppDatabase = context.resources.app_db
        with app_db.connect() as conn:
            ensure_tables(conn, [*tables, *inbox.TABLES])
            plan = inbox.pending_accounts(conn, provider, up_to_id=config.up_to_id, accounts=config.accounts)
            applier = _Applier(context, conn, provider, config.up_to_id, routes, topic_of)
            for accounts in _transactions(plan):
                applier.apply(accounts)
            applied = sorted({e.account for e in applier.done.events})
            if after_apply is not None and applied:
                with conn.transaction():
                    followed = after_apply(conn, applied)
                context.log.info(f"{provider}: after applying {len(applied)} accounts: {dict(followed)}")
        done = applier.done
        yield from _materializations(routes, done)  # yielded, so stored even when the step then fails
        _log_summary(context, provider, done)
        if done.failed:
            listed = "; ".join(f"{account}: {why}" for account, why in sorted(done.failed.items())[:5])
            raise dg.Failure(
                description=f"{provider}: {len(done.failed)} of {len(plan)} accounts not applied (their deliveries"
                            f" stay pending and are retried): {listed}",
                metadata={"failed_accounts": dg.MetadataValue.json(done.failed)},
            )

    @dg.job(
        name=f"{provider}_apply_webhooks",
        executor_def=dg.in_process_executor,
        tags={WEBHOOKS_TAG: provider, TRIGGER_TAG: "webhook"},
        description=f"Applies verified {provider} webhook deliveries of every account from the inbox"
                    " (launched by the inbox sensor).",
    )
    def apply_job():
        apply_webhooks()

    return apply_job


def _transactions(plan: Sequence[tuple[str, int]]) -> Iterator[list[str]]:
    """Accounts grouped so each group holds up to EVENTS_PER_TRANSACTION deliveries (an account is
    never split; one with more than that is a group of its own)."""
    group: list[str] = []
    size = 0
    for account, count in plan:
        if group and size + count > EVENTS_PER_TRANSACTION:
            yield group
            group, size = [], 0
        group.append(account)
        size += count
    if group:
        yield group


@dataclass
class _Applier:
    """One run's apply loop: what every transaction of it shares, and what it has done so far."""

    context: dg.OpExecutionContext
    conn: psycopg.Connection
    provider: str
    up_to_id: int | None
    routes: Mapping[str, Route]
    topic_of: Callable[[str], str]
    done: AccountsApplied = field(default_factory=AccountsApplied)

    def apply(self, accounts: list[str]) -> None:
        """Apply `accounts` in one transaction; if it fails, each account alone, so a failing one
        is named and skipped. A lost connection fails the run (nothing else can be applied either)."""
        try:
            self._in_transaction(accounts)
            return
        except Exception as error:
            if self.conn.broken or self.conn.closed:
                raise
            if len(accounts) == 1:
                self.done.failed[accounts[0]] = _why(error)
                self.context.log.error(
                    f"{self.provider} [{accounts[0]}]: deliveries not applied, left pending: {_why(error)}")
                return
        for account in accounts:
            self.apply([account])

    def _in_transaction(self, accounts: list[str]) -> None:
        conn, provider = self.conn, self.provider
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            events = inbox.claim(conn, provider, accounts, self.up_to_id)
            results = apply_events(conn, events, self.routes, self.topic_of)
            inbox.mark_processed(conn, [e.id for e in events], self.context.run_id)
            account_of = {e.id: e.account for e in events}
            set_aside = sorted(rejected for result in results.values() for rejected in result.rejected)
            inbox.mark_set_aside(conn, set_aside)
            now = datetime.now(UTC)
            tallies: dict[inbox.RejectionKey, inbox.RejectionTally] = defaultdict(inbox.RejectionTally)
            for event_id, _ in set_aside:  # counted in one statement, not one per delivery
                tallies[inbox.rejection_key(provider, "unapplicable", account_of[event_id], now)].add(now)
            inbox.record_rejections(conn, tallies)
        for event_id, reason in set_aside:  # logged once committed
            self.context.log.warning(f"{provider} [{account_of[event_id]}]: inbox id {event_id} set aside: {reason}")
        self.done.events += events
        self.done.results.update(results)


def _materializations(routes: Mapping[str, Route], done: AccountsApplied) -> Iterator[dg.AssetMaterialization]:
    """One materialization per (entity, account) applied: an entity's upsert and delete routes are one."""
    by_asset: dict[tuple[dg.AssetKey, str], RouteResult] = defaultdict(RouteResult)
    for (account, name), result in done.results.items():
        by_asset[(routes[name].asset_key, account)].merge(result)
    for (asset_key, account), result in sorted(by_asset.items(), key=lambda item: (item[0][1], item[0][0].path)):
        yield dg.AssetMaterialization(
            asset_key=asset_key,
            partition=account,
            description=f"{result.events} webhook deliveries applied",
            metadata={
                "source": "webhooks",
                "deliveries": result.events,
                SET_ASIDE: len(result.rejected),
                "set_aside_inbox_ids": dg.MetadataValue.json(sorted(i for i, _ in result.rejected)),
                "records_inserted": result.counts.inserted,
                "records_updated": result.counts.updated,
                "records_unchanged": result.counts.unchanged,
                "records_deleted": result.deleted,
                "tombstones_written": result.tombstones,
            },
        )


def _log_summary(context: dg.OpExecutionContext, provider: str, done: AccountsApplied) -> None:
    now = datetime.now(UTC)
    lags = [(now - e.triggered_at).total_seconds() for e in done.events if e.triggered_at]
    accounts = {e.account for e in done.events}
    context.log.info(
        f"{provider}: applied {len(done.events)} deliveries of {len(accounts)} accounts"
        + (f", {len(done.failed)} accounts failed" if done.failed else "")
        + (f"; lag p50 {statistics.median(lags):.2f}s max {max(lags):.2f}s" if lags else "")
    )


@dataclass
class RouteResult:
    events: int = 0
    deleted: int = 0
    tombstones: int = 0
    counts: WriteCounts = field(default_factory=WriteCounts)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (inbox id, why)

    def merge(self, other: "RouteResult") -> None:
        self.events += other.events
        self.deleted += other.deleted
        self.tombstones += other.tombstones
        self.counts += other.counts
        self.rejected += other.rejected


def apply_events(
    conn: psycopg.Connection,
    events: Sequence[inbox.InboxEvent],
    routes: Mapping[str, Route],
    topic_of: Callable[[str], str],
) -> dict[tuple[str, str], RouteResult]:
    """Apply deliveries inside the caller's transaction, results per (account, route name):
    upserts batched per table across accounts (one COPY and one merge, counts per account), then
    deletes. A delivery that cannot be applied is reported in `rejected` instead of failing the batch."""
    results: dict[tuple[str, str], RouteResult] = defaultdict(RouteResult)
    upserts: dict[str, list[tuple[inbox.InboxEvent, tuple]]] = defaultdict(list)
    deletes: list[tuple[str, inbox.InboxEvent]] = []
    for event in events:  # oldest first
        name = topic_of(event.topic)
        route = routes.get(name)
        if route is None:
            continue
        result = results[(event.account, name)]
        result.events += 1
        if route.delete:
            deletes.append((name, event))
            continue
        if route.apply is not None:
            _apply_own(conn, route, event, result)
            continue
        try:
            row = row_builder(route.table)(event.account, event.payload)
        except Exception as error:  # pure Python on this delivery alone, e.g. a timestamp without an offset
            result.rejected.append((event.id, _why(error)))
            continue
        if any(row[i] is None for i in _key_positions(route.table)):
            result.rejected.append((event.id, "payload has no value for the table's key"))
            continue
        if (misplaced := _misplaced_structure(route.table, row)) is not None:
            result.rejected.append((event.id, f"{misplaced} holds an object or a list"))
            continue
        upserts[name].append((event, row))
    for name, items in upserts.items():
        _write(conn, UpsertWriter(routes[name].table), name, items, results)
    for name, event in deletes:
        _delete(conn, event.account, routes[name], event, results[(event.account, name)])
    return dict(results)


def _apply_own(conn: psycopg.Connection, route: Route, event: inbox.InboxEvent, result: RouteResult) -> None:
    """One delivery through the provider's own apply function, in a savepoint: a delivery it
    refuses (ValueError) or the database refuses is set aside without taking the others with it."""
    assert route.apply is not None
    try:
        with conn.transaction():
            changed = route.apply(conn, event.account, event.payload, event.triggered_at)
    except Exception as error:
        if not isinstance(error, ValueError) and not _refused(conn, error):
            raise
        result.rejected.append((event.id, _why(error)))
        return
    if changed:
        result.counts.updated += changed
    else:
        result.counts.unchanged += 1


def _key_positions(table: sa.Table) -> list[int]:
    columns = data_columns(table)  # the order row_builder builds rows in
    return [columns.index(k) for k in key_columns(table)]


def _misplaced_structure(table: sa.Table, row: tuple) -> str | None:
    """The first column that is not jsonb yet got an object or a list, if any (row_builder has
    already turned jsonb values, `raw` included, into JSON text). A list would be written as an
    array literal, an object cannot be written, and either cannot be a key."""
    for name, value in zip(data_columns(table), row, strict=True):
        if isinstance(value, dict | list | tuple):
            return name
    return None


# SQLSTATEs that say the schema or the server is wrong, not the delivery: undefined table/column,
# missing privilege, undefined schema.
_NOT_THE_DELIVERY = frozenset({"42P01", "42703", "42501", "3F000"})


def _refused(conn: psycopg.Connection, error: Exception) -> bool:
    """Whether a failed write of deliveries is down to their values (set them aside) rather than
    to the database's health (fail the run, so it is retried)."""
    if conn.broken or conn.closed:
        return False
    if not isinstance(error, psycopg.Error):  # adapting a value in Python: TypeError, ValueError, ...
        return isinstance(error, TypeError | ValueError | OverflowError | RecursionError)
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError | psycopg.InternalError):
        # Cancelled, locked, out of resources, shutting down: transient. Class 54 (a value too
        # large for an index row, too many columns) is the value's doing.
        return (error.sqlstate or "").startswith("54")
    return error.sqlstate not in _NOT_THE_DELIVERY  # data, integrity, operator/type mismatch, adaptation


def _why(error: Exception) -> str:
    """A short reason for the log and the inbox row (the database's first message line)."""
    diag = getattr(error, "diag", None)
    message = (diag.message_primary if diag is not None else None) or str(error)
    return f"{type(error).__name__}: {message}"[:500]


def _write(conn: psycopg.Connection, writer: UpsertWriter, name: str, items: list[tuple[inbox.InboxEvent, tuple]],
           results: Mapping[tuple[str, str], RouteResult]) -> None:
    """One batch; if the database refuses it, row by row, setting aside the rows it refuses."""
    try:
        with conn.transaction():  # a savepoint: the caller's transaction survives a refusal
            counts = writer.write_batch_by(conn, [row for _, row in items], "account")
        for account, written in counts.items():
            results[(account, name)].counts += written
        return
    except Exception as error:
        if not _refused(conn, error):
            raise
    for event, row in items:  # each in its own savepoint: a refused one never takes the next with it
        result = results[(event.account, name)]
        try:
            with conn.transaction():
                result.counts += writer.write_batch(conn, [row])
        except Exception as error:
            if not _refused(conn, error):
                raise
            result.rejected.append((event.id, _why(error)))


def _delete(conn: psycopg.Connection, account: str, route: Route, event: inbox.InboxEvent,
            result: RouteResult) -> None:
    (key,) = [k for k in key_columns(route.table) if k != "account"]
    record_id = event.payload.get(route.id_path) if isinstance(event.payload, dict) else None
    if record_id is None:
        result.rejected.append((event.id, f"delete without {route.id_path!r}"))
        return
    if isinstance(record_id, float) and record_id.is_integer():
        record_id = int(record_id)
    if isinstance(record_id, bool) or not isinstance(record_id, int | str):
        # An object, a list, true/false or a fraction names no record (and would not even compare).
        result.rejected.append((event.id, f"delete whose {route.id_path!r} is not a number or a string"))
        return
    when = event.triggered_at or datetime.now(UTC)
    table, key_ident = qualified(route.table), sql.Identifier(key)
    try:
        with conn.transaction():
            deleted = conn.execute(
                sql.SQL("UPDATE {} SET deleted_at = %s, synced_at = now() WHERE account = %s AND {} = %s"
                        " AND deleted_at IS NULL").format(table, key_ident),
                (when, account, record_id),
            ).rowcount
            tombstones = 0 if deleted else conn.execute(
                sql.SQL("INSERT INTO {} (account, {}, raw, deleted_at) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT DO NOTHING").format(table, key_ident),
                (account, record_id, psycopg.types.json.Jsonb(event.payload), when),
            ).rowcount
    except Exception as error:
        if not _refused(conn, error):
            raise
        result.rejected.append((event.id, _why(error)))
        return
    result.deleted += deleted
    result.tombstones += tombstones
