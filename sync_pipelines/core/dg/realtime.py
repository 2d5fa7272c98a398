"""The real-time flow: inbox → sensor → one run per account → payloads applied, newer wins.

The receiver has already verified, de-duplicated and stored each delivery. The sensor's cursor is
the last inbox id it has turned into run requests; run keys name the batch (account + last id), so
a re-delivered batch is never lost and a retried tick never launches the same batch twice. The run
applies every still-pending event of its account up to that id and marks them processed in the
same transaction, so delivery is at-least-once and applying twice is harmless (the upsert keeps the
newest version by the provider's updated-at).

A delivery that cannot be applied (a payload without its id, an object where a number or text
belongs, a value the table refuses — whatever its own values make fail) is set aside: marked
processed with the reason kept on its inbox row (`set_aside`), counted as a rejection
(`unapplicable`, which the webhook health report reads), listed by inbox id in the run's
materialization metadata (`set_aside_inbox_ids`) and logged — so it never blocks the deliveries
after it. Failures that say the database is unwell (connection lost, statement cancelled, a table
missing) are not the delivery's fault: they fail the run, which is retried.

A delete for a record not stored yet leaves a tombstone row (`deleted_at` set, no other values),
so a create delivered late does not bring the record back.
"""


import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import sqlalchemy as sa
from psycopg import sql

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables, qualified
from sync_pipelines.core.entities import data_columns, key_columns, row_builder
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.report import SET_ASIDE
from sync_pipelines.core.webhooks import WebhookDeclaration
from sync_pipelines.core.writer import UpsertWriter, WriteCounts

STALE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Route:
    """Where a topic's payloads go: upsert the record, or soft-delete by id."""

    table: sa.Table
    asset_key: dg.AssetKey
    delete: bool = False
    id_path: str = "id"


def declared_routes(webhooks: WebhookDeclaration) -> tuple[dict[str, Route], Callable[[str], str]]:
    """A webhook declaration's topic map as apply routes (by route name) and topic → route name.

    Topics that share a route name (orders/create, orders/paid → orders) are applied as one batch;
    a topic outside the map names no route, so its deliveries are marked processed unapplied.
    """
    routes: dict[str, Route] = {}
    for topic, declared in webhooks.routes.items():
        route = Route(table=declared.table, asset_key=dg.AssetKey(list(declared.asset)), delete=declared.delete,
                      id_path=declared.id_path)
        known = routes.setdefault(declared.name, route)
        if (known.table is not route.table or known.asset_key != route.asset_key or known.delete != route.delete
                or known.id_path != route.id_path):
            raise ValueError(f"{webhooks.provider}: topic {topic!r} names route {declared.name!r} with another target")

    def topic_of(topic: str) -> str:
        declared = webhooks.routes.get(topic)
        return declared.name if declared is not None else topic

    return routes, topic_of


def build_inbox_sensor(
    provider: str, job: dg.JobDefinition, *, minimum_interval_seconds: int = 5, batch_limit: int = 5_000
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{provider}_inbox_sensor",
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Launches a run per {provider} account with new webhook deliveries in the inbox.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase):
        after = int(context.cursor or 0)
        with app_db.connect() as conn:
            ensure_tables(conn, inbox.TABLES)
            events = inbox.read_after(conn, provider, after, limit=batch_limit)
            stale = inbox.stale_accounts(conn, provider, older_than=STALE_AFTER)
        newest: dict[str, int] = {}
        for event in events:
            newest[event.account] = max(newest.get(event.account, 0), event.id)
        requests = [_apply_request(provider, account, up_to) for account, up_to in sorted(newest.items())]
        # Pending events whose run failed or never ran: ask again (keyed by the 5-minute bucket).
        bucket = int(datetime.now(UTC).timestamp() // STALE_AFTER.total_seconds())
        requests += [
            _apply_request(provider, account, up_to, sweep=bucket)
            for account, up_to in sorted(stale.items())
            if account not in newest
        ]
        cursor = str(max((e.id for e in events), default=after))
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason("no new deliveries"), cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return inbox_sensor


def _apply_request(provider: str, account: str, up_to: int, sweep: int | None = None) -> dg.RunRequest:
    key = f"{provider}:{account}:{up_to}" + (f":sweep{sweep}" if sweep is not None else "")
    return dg.RunRequest(
        run_key=key,
        run_config={"ops": {f"apply_{provider}_webhooks": {"config": {"account": account, "up_to_id": up_to}}}},
        tags={"sync/provider": provider, "sync/account": account, "sync/trigger": "webhook"},
    )


class ApplyConfig(dg.Config):
    account: str
    """The account (e.g. shop domain) whose pending deliveries to apply."""
    up_to_id: int
    """Apply pending inbox events with id up to this one."""


def build_apply_job(provider: str, routes: Mapping[str, Route], topic_of: Callable[[str], str]) -> dg.JobDefinition:
    """A job applying an account's pending deliveries; `topic_of` maps a topic to a route name."""
    tables = sorted({r.table for r in routes.values()}, key=lambda t: t.fullname)

    @dg.op(
        name=f"apply_{provider}_webhooks",
        required_resource_keys={"app_db"},
        retry_policy=dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
        tags={"sync/provider": provider},
    )
    def apply_webhooks(context: dg.OpExecutionContext, config: ApplyConfig) -> None:
        app_db: AppDatabase = context.resources.app_db
        with app_db.connect() as conn:
            ensure_tables(conn, [*tables, *inbox.TABLES])
            with conn.transaction():
                events = inbox.pending(conn, provider, config.account, up_to_id=config.up_to_id, lock=True)
                counts = apply_events(conn, config.account, events, routes, topic_of)
                inbox.mark_processed(conn, [e.id for e in events], context.run_id)
                set_aside = sorted(rejected for result in counts.values() for rejected in result.rejected)
                inbox.mark_set_aside(conn, set_aside)
                for event_id, reason in set_aside:
                    inbox.record_rejection(conn, provider, "unapplicable", config.account)
                    context.log.warning(f"{provider} [{config.account}]: inbox id {event_id} set aside: {reason}")
        now = datetime.now(UTC)
        lags = [(now - e.triggered_at).total_seconds() for e in events if e.triggered_at]
        by_asset: dict[dg.AssetKey, RouteResult] = defaultdict(RouteResult)
        for name, result in counts.items():  # an entity's upsert and delete routes: one materialization
            by_asset[routes[name].asset_key].merge(result)
        for asset_key, result in by_asset.items():
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=asset_key,
                    partition=config.account,
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
            )
        context.log.info(
            f"{provider} [{config.account}]: applied {len(events)} deliveries"
            + (f", lag p50 {statistics.median(lags):.2f}s max {max(lags):.2f}s" if lags else "")
        )

    @dg.job(
        name=f"{provider}_apply_webhooks",
        executor_def=dg.in_process_executor,
        tags={"sync/provider": provider},
        description=f"Applies verified {provider} webhook deliveries from the inbox (launched by the inbox sensor).",
    )
    def apply_job():
        apply_webhooks()

    return apply_job


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
    account: str,
    events: Sequence[inbox.InboxEvent],
    routes: Mapping[str, Route],
    topic_of: Callable[[str], str],
) -> dict[str, RouteResult]:
    """Apply deliveries inside the caller's transaction: upserts batched per table, then deletes.
    A delivery that cannot be applied is reported in `rejected` instead of failing the batch."""
    results: dict[str, RouteResult] = defaultdict(RouteResult)
    upserts: dict[str, list[tuple[inbox.InboxEvent, tuple]]] = defaultdict(list)
    deletes: list[tuple[str, inbox.InboxEvent]] = []
    for event in events:
        name = topic_of(event.topic)
        route = routes.get(name)
        if route is None:
            continue
        results[name].events += 1
        if route.delete:
            deletes.append((name, event))
            continue
        try:
            row = row_builder(route.table)(account, event.payload)
        except Exception as error:  # pure Python on this delivery alone, e.g. a timestamp without an offset
            results[name].rejected.append((event.id, _why(error)))
            continue
        if any(row[i] is None for i in _key_positions(route.table)):
            results[name].rejected.append((event.id, "payload has no value for the table's key"))
            continue
        if (misplaced := _misplaced_structure(route.table, row)) is not None:
            results[name].rejected.append((event.id, f"{misplaced} holds an object or a list"))
            continue
        upserts[name].append((event, row))
    for name, items in upserts.items():
        _write(conn, UpsertWriter(routes[name].table), items, results[name])
    for name, event in deletes:
        _delete(conn, account, routes[name], event, results[name])
    return dict(results)


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


def _write(conn: psycopg.Connection, writer: UpsertWriter, items: list[tuple[inbox.InboxEvent, tuple]],
           result: RouteResult) -> None:
    """One batch; if the database refuses it, row by row, setting aside the rows it refuses."""
    try:
        with conn.transaction():  # a savepoint: the caller's transaction survives a refusal
            result.counts += writer.write_batch(conn, [row for _, row in items])
        return
    except Exception as error:
        if not _refused(conn, error):
            raise
    for event, row in items:  # each in its own savepoint: a refused one never takes the next with it
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
