"""The durable inbox: verified webhook deliveries, stored before the provider gets its 200.

The receiver appends (de-duplicated on the provider's delivery id, so a retried delivery is one
row with `duplicates` counted); Dagster sensors read after an inbox id and runs apply an account's
pending rows and mark them processed. Rejected requests are counted, never stored with their body
or signature: one counter row per (provider, reason, account, hour) in `webhook_rejection_counts`,
and the first few of each such counter kept as detail rows in `webhook_rejections`, so a flood of
forged requests adds nothing but a counter increment. Free of Dagster: the receiver imports this module.

Every statement is written once; the async twins used by the receiver run the same SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.providers import TRIGGER_PROVIDER

metadata = sa.MetaData()

INBOX = sa.Table(
    "inbox",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("account", sa.Text, nullable=False, comment="e.g. the shop domain"),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("delivery_id", sa.Text, nullable=False, comment="provider's delivery id, the dedupe key"),
    sa.Column("event_id", sa.Text, nullable=True),
    sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"),
              comment="selected non-secret headers; never the signature"),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("run_id", sa.Text, nullable=True),
    sa.Column("set_aside", sa.Text, nullable=True,
              comment="why the delivery could not be applied (it was skipped, not retried); null when applied"),
    sa.UniqueConstraint("provider", "delivery_id", name="inbox_provider_delivery_id_key"),
    sa.Index("inbox_provider_id_idx", "provider", "id"),
    sa.Index("inbox_pending_idx", "provider", "account", "id", postgresql_where=sa.text("processed_at IS NULL")),
    # A signed trigger token (its jti) is accepted once, whatever message id travels beside it.
    sa.Index("inbox_trigger_token_key", "provider", "event_id", unique=True,
             postgresql_where=sa.text(f"provider = '{TRIGGER_PROVIDER}' AND event_id IS NOT NULL")),
    schema="sync",
)

# A sample of rejections, at most REJECTION_SAMPLES per counter row below (the first ones).
REJECTIONS = sa.Table(
    "webhook_rejections",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, comment="short code, e.g. bad_signature"),
    sa.Column("account", sa.Text, nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.Index("webhook_rejections_provider_received_idx", "provider", "received_at"),
    schema="sync",
)

# Exact rejection counts per hour. `account` is '' when the request named none: requests are only
# attributed to an account after their signature verified, so forged traffic all lands on ''.
REJECTION_COUNTS = sa.Table(
    "webhook_rejection_counts",
    metadata,
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("account", sa.Text, nullable=False, server_default=sa.text("''")),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False, comment="the hour counted"),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("provider", "reason", "account", "window_start"),
    sa.Index("webhook_rejection_counts_window_idx", "window_start"),
    schema="sync",
)
REJECTION_WINDOW = timedelta(hours=1)
REJECTION_SAMPLES = 20  # detail rows kept per (provider, reason, account, hour)

# Every signed token (QStash JWT `jti`) the receiver accepted, retries of a message included,
# kept until it expires: a token is accepted once, whatever message id travels beside it.
TOKENS = sa.Table(
    "accepted_tokens",
    metadata,
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("token_id", sa.Text, nullable=False, comment="the token's jti (an id, not a secret)"),
    sa.Column("inbox_id", sa.BigInteger, nullable=True, comment="the inbox row the token's request is stored as"),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    sa.PrimaryKeyConstraint("provider", "token_id"),
    schema="sync",
)

TABLES = (INBOX, REJECTIONS, REJECTION_COUNTS, TOKENS)


@dataclass(frozen=True)
class InboxEvent:
    id: int
    provider: str
    account: str
    topic: str
    delivery_id: str
    event_id: str | None
    triggered_at: datetime | None
    received_at: datetime
    headers: dict[str, Any]
    payload: Any
    duplicates: int
    processed_at: datetime | None
    run_id: str | None


_COLUMNS = ("id, provider, account, topic, delivery_id, event_id, triggered_at, received_at, headers,"
            " payload, duplicates, processed_at, run_id")

# (xmax = 0) is true only for a freshly inserted row, so one statement says "new or duplicate".
_APPEND = (
    "INSERT INTO sync.inbox AS i"
    " (provider, account, topic, delivery_id, event_id, triggered_at, headers, payload)"
    " VALUES (%(provider)s, %(account)s, %(topic)s, %(delivery_id)s, %(event_id)s, %(triggered_at)s,"
    " %(headers)s, %(payload)s::jsonb)"
    " ON CONFLICT (provider, delivery_id) DO UPDATE SET duplicates = i.duplicates + 1"
    " RETURNING id, (xmax = 0) AS inserted"
)


_ANY_ID = 2**63 - 1  # the largest bigint: "no upper bound" for an inbox id


def ensure_inbox_tables(conn: psycopg.Connection) -> None:
    ensure_tables(conn, TABLES)


def _payload_text(payload: bytes | str | Mapping | list) -> str:
    """JSON text for the jsonb cast; bytes are the raw body as received (UTF-8)."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8")
    if isinstance(payload, str):
        return payload
    return json.dumps(payload)


def _append_params(provider: str, account: str, topic: str, delivery_id: str,
                   payload: bytes | str | Mapping, triggered_at: datetime | None, event_id: str | None,
                   headers: Mapping[str, str] | None) -> dict[str, Any]:
    return {
        "provider": provider, "account": account, "topic": topic, "delivery_id": delivery_id,
        "event_id": event_id, "triggered_at": triggered_at, "headers": Jsonb(dict(headers or {})),
        "payload": _payload_text(payload),
    }


def append(conn: psycopg.Connection, *, provider: str, account: str, topic: str, delivery_id: str,
           payload: bytes | str | Mapping, triggered_at: datetime | None = None,
           event_id: str | None = None, headers: Mapping[str, str] | None = None) -> tuple[int, bool]:
    """Store a delivery; returns (inbox id, is_new). A repeated delivery id only counts a duplicate."""
    ensure_inbox_tables(conn)
    params = _append_params(provider, account, topic, delivery_id, payload, triggered_at, event_id, headers)
    row = conn.execute(_APPEND, params).fetchone()
    return int(row[0]), bool(row[1])


_CLAIM_TOKEN = (
    "INSERT INTO sync.accepted_tokens (provider, token_id, expires_at) VALUES (%s, %s, %s)"
    " ON CONFLICT DO NOTHING RETURNING true"
)
_TOKEN_INBOX_ID = "SELECT inbox_id FROM sync.accepted_tokens WHERE provider = %s AND token_id = %s"
_LINK_TOKEN = "UPDATE sync.accepted_tokens SET inbox_id = %s WHERE provider = %s AND token_id = %s"


async def append_once_per_token_async(
    aconn: psycopg.AsyncConnection, *, token_id: str, expires_at: datetime | None, **delivery: Any
) -> tuple[int | None, bool, bool]:
    """`append_async` for a request carrying a signed token: the token is accepted once.

    Returns (inbox id, is_new, replayed). A token seen before is a replay — nothing is stored and
    the inbox id its first use was stored as is returned; a new token is recorded (until
    `expires_at`) and the delivery appended as usual, so a retry with a new token and the same
    delivery id is a duplicate whose token is now known too. One transaction: a replay racing
    its original waits for it.
    """
    provider = delivery["provider"]
    async with aconn.transaction():
        claimed = await (await aconn.execute(_CLAIM_TOKEN, (provider, token_id, expires_at))).fetchone()
        if claimed is None:
            row = await (await aconn.execute(_TOKEN_INBOX_ID, (provider, token_id))).fetchone()
            return (int(row[0]) if row and row[0] is not None else None), False, True
        inbox_id, is_new = await append_async(aconn, **delivery)
        await aconn.execute(_LINK_TOKEN, (inbox_id, provider, token_id))
    return inbox_id, is_new, False


def purge_expired_tokens(conn: psycopg.Connection, grace: timedelta = timedelta(hours=1)) -> int:
    """Forget accepted tokens expired more than `grace` ago (their signature no longer verifies,
    so they can no longer be replayed); returns how many."""
    ensure_inbox_tables(conn)
    return conn.execute("DELETE FROM sync.accepted_tokens WHERE expires_at < now() - %s", (grace,)).rowcount


async def find_by_event_id_async(aconn: psycopg.AsyncConnection, provider: str, event_id: str) -> int | None:
    row = await (await aconn.execute(
        "SELECT id FROM sync.inbox WHERE provider = %s AND event_id = %s", (provider, event_id))).fetchone()
    return int(row[0]) if row else None


async def append_async(aconn: psycopg.AsyncConnection, *, provider: str, account: str, topic: str,
                       delivery_id: str, payload: bytes | str | Mapping, triggered_at: datetime | None = None,
                       event_id: str | None = None, headers: Mapping[str, str] | None = None) -> tuple[int, bool]:
    """`append` for the receiver (tables are ensured once at its startup)."""
    params = _append_params(provider, account, topic, delivery_id, payload, triggered_at, event_id, headers)
    row = await (await aconn.execute(_APPEND, params)).fetchone()
    return int(row[0]), bool(row[1])


@dataclass
class RejectionTally:
    """Rejections of one (provider, reason, account, hour) not yet written: how many, and the
    times of the first few (the detail rows they may become)."""

    count: int = 0
    samples: list[datetime] = field(default_factory=list)

    def add(self, at: datetime) -> None:
        self.count += 1
        if len(self.samples) < REJECTION_SAMPLES:
            self.samples.append(at)


RejectionKey = tuple[str, str, str, datetime]  # provider, reason, account ('' for none), window start


def rejection_key(provider: str, reason: str, account: str | None, at: datetime) -> RejectionKey:
    """The counter a rejection at `at` (timezone-aware) belongs to."""
    window = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return provider, reason, account or "", window


_COUNT_REJECTIONS = (
    "INSERT INTO sync.webhook_rejection_counts AS c (provider, reason, account, window_start, count, last_at)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::bigint[],"
    " %s::timestamptz[])"
    " ON CONFLICT (provider, reason, account, window_start) DO UPDATE"
    " SET count = c.count + excluded.count, last_at = greatest(c.last_at, excluded.last_at)"
    " RETURNING provider, reason, account, window_start, count"
)
_SAMPLE_REJECTIONS = (
    "INSERT INTO sync.webhook_rejections (provider, reason, account, received_at)"
    " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])"
)


def _count_params(tallies: Mapping[RejectionKey, RejectionTally]) -> tuple:
    keys = sorted(tallies)  # one lock order for every writer: concurrent receivers cannot deadlock
    providers, reasons, accounts, windows = (list(column) for column in zip(*keys, strict=True))
    return (providers, reasons, accounts, windows, [tallies[k].count for k in keys],
            [max(tallies[k].samples, default=k[3]) for k in keys])


def _sample_params(tallies: Mapping[RejectionKey, RejectionTally], counted: list[tuple]) -> tuple | None:
    """Detail rows for the first REJECTION_SAMPLES rejections of each counter, whichever batch
    (or receiver) they came in: a counter at `total` after adding `n` was at `total - n` before."""
    rows: list[tuple] = []
    for provider, reason, account, window, total in counted:
        tally = tallies[(provider, reason, account, window)]
        room = REJECTION_SAMPLES - (total - tally.count)
        rows += [(provider, reason, account or None, at) for at in tally.samples[:max(0, room)]]
    return tuple(list(column) for column in zip(*rows, strict=True)) if rows else None


def record_rejections(conn: psycopg.Connection, tallies: Mapping[RejectionKey, RejectionTally]) -> None:
    """Add a batch of counted rejections (and their samples) in one transaction."""
    if not tallies:
        return
    ensure_inbox_tables(conn)
    with conn.transaction():
        counted = conn.execute(_COUNT_REJECTIONS, _count_params(tallies)).fetchall()
        if (samples := _sample_params(tallies, counted)) is not None:
            conn.execute(_SAMPLE_REJECTIONS, samples)


async def record_rejections_async(aconn: psycopg.AsyncConnection,
                                  tallies: Mapping[RejectionKey, RejectionTally]) -> None:
    """`record_rejections` for the receiver, which batches what arrives while a write is under way."""
    if not tallies:
        return
    async with aconn.transaction():
        counted = await (await aconn.execute(_COUNT_REJECTIONS, _count_params(tallies))).fetchall()
        if (samples := _sample_params(tallies, counted)) is not None:
            await aconn.execute(_SAMPLE_REJECTIONS, samples)


def _one_rejection(provider: str, reason: str, account: str | None) -> dict[RejectionKey, RejectionTally]:
    now = datetime.now(UTC)
    tally = RejectionTally()
    tally.add(now)
    return {rejection_key(provider, reason, account, now): tally}


def record_rejection(conn: psycopg.Connection, provider: str, reason: str, account: str | None = None) -> None:
    """Count one rejection now (sampled as a detail row while its hour's counter is small)."""
    record_rejections(conn, _one_rejection(provider, reason, account))


async def record_rejection_async(aconn: psycopg.AsyncConnection, provider: str, reason: str,
                                 account: str | None = None) -> None:
    await record_rejections_async(aconn, _one_rejection(provider, reason, account))


def read_after(conn: psycopg.Connection, provider: str, after_id: int, limit: int = 500) -> list[InboxEvent]:
    """Deliveries with id > after_id, oldest first.

    Ids are taken before commit, so a slow insert can become visible after a higher id was read:
    a cursor on the id alone may step over it. It stays pending, which `stale_accounts` finds.
    """
    ensure_inbox_tables(conn)
    with conn.cursor(row_factory=class_row(InboxEvent)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM sync.inbox WHERE provider = %s AND id > %s ORDER BY id LIMIT %s",
            (provider, after_id, limit),
        ).fetchall()


def pending(conn: psycopg.Connection, provider: str, account: str, up_to_id: int | None = None,
            *, lock: bool = False) -> list[InboxEvent]:
    """Unprocessed deliveries of one account, oldest first.

    `lock=True` (inside a transaction) takes row locks, so two runs for the same account apply
    each event once: the second waits, then no longer sees the rows the first marked processed.
    """
    ensure_inbox_tables(conn)
    query = (f"SELECT {_COLUMNS} FROM sync.inbox WHERE provider = %s AND account = %s"
             " AND processed_at IS NULL AND id <= %s ORDER BY id" + (" FOR UPDATE" if lock else ""))
    upper = up_to_id if up_to_id is not None else _ANY_ID
    with conn.cursor(row_factory=class_row(InboxEvent)) as cur:
        return cur.execute(query, (provider, account, upper)).fetchall()


def stale_accounts(conn: psycopg.Connection, provider: str, older_than: timedelta) -> dict[str, int]:
    """{account: newest pending id} for accounts with a delivery pending longer than `older_than`."""
    ensure_inbox_tables(conn)
    rows = conn.execute(
        "SELECT account, max(id) FROM sync.inbox WHERE provider = %s AND processed_at IS NULL"
        " GROUP BY account HAVING min(received_at) < now() - %s",
        (provider, older_than),
    ).fetchall()
    return {account: int(newest) for account, newest in rows}


def newest_after(conn: psycopg.Connection, provider: str, after_id: int) -> int | None:
    """The newest inbox id above `after_id`, or None: all a sensor needs to know that something
    arrived (the run reads the deliveries themselves)."""
    ensure_inbox_tables(conn)
    row = conn.execute("SELECT max(id) FROM sync.inbox WHERE provider = %s AND id > %s",
                       (provider, after_id)).fetchone()
    return int(row[0]) if row[0] is not None else None


def has_stale(conn: psycopg.Connection, provider: str, older_than: timedelta) -> bool:
    """Whether a delivery has been pending longer than `older_than` (its run failed or never ran)."""
    ensure_inbox_tables(conn)
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM sync.inbox WHERE provider = %s AND processed_at IS NULL"
        " AND received_at < now() - %s)", (provider, older_than)).fetchone()[0]


def pending_accounts(conn: psycopg.Connection, provider: str, *, up_to_id: int | None = None,
                     accounts: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """[(account, pending deliveries)] for every account with something pending, by account;
    only `accounts` when given."""
    ensure_inbox_tables(conn)
    query = ("SELECT account, count(*) FROM sync.inbox WHERE provider = %s AND processed_at IS NULL"
             " AND id <= %s")
    params: list[Any] = [provider, up_to_id if up_to_id is not None else _ANY_ID]
    if accounts is not None:
        query += " AND account = ANY(%s)"
        params.append(list(accounts))
    rows = conn.execute(query + " GROUP BY account ORDER BY account", params).fetchall()
    return [(account, int(count)) for account, count in rows]


def claim(conn: psycopg.Connection, provider: str, accounts: Sequence[str],
          up_to_id: int | None = None) -> list[InboxEvent]:
    """Unprocessed deliveries of `accounts`, oldest first, locked until the caller's transaction
    ends. Rows another run holds are skipped, not waited for: that run applies them, and two
    runs never apply one delivery (the second no longer sees it pending once the first commits)."""
    ensure_inbox_tables(conn)
    query = (f"SELECT {_COLUMNS} FROM sync.inbox WHERE provider = %s AND account = ANY(%s)"
             " AND processed_at IS NULL AND id <= %s ORDER BY id FOR UPDATE SKIP LOCKED")
    upper = up_to_id if up_to_id is not None else _ANY_ID
    with conn.cursor(row_factory=class_row(InboxEvent)) as cur:
        return cur.execute(query, (provider, list(accounts), upper)).fetchall()


_BACKLOG = (
    "SELECT count(*), extract(epoch FROM now() - min(received_at)) FROM sync.inbox WHERE processed_at IS NULL"
)


def _backlog_result(row: tuple) -> dict[str, Any]:
    pending_count, oldest = row
    return {"pending": int(pending_count),
            "oldest_pending_age_seconds": float(oldest) if oldest is not None else None}


def backlog(conn: psycopg.Connection) -> dict[str, Any]:
    """Unprocessed deliveries of every provider: {pending, oldest_pending_age_seconds}."""
    ensure_inbox_tables(conn)
    return _backlog_result(conn.execute(_BACKLOG).fetchone())


async def backlog_async(aconn: psycopg.AsyncConnection) -> dict[str, Any]:
    """`backlog` for the receiver's health check."""
    return _backlog_result(await (await aconn.execute(_BACKLOG)).fetchone())


def mark_processed(conn: psycopg.Connection, ids: Sequence[int], run_id: str) -> int:
    """Mark deliveries done by `run_id`; rows already processed keep their first run. Returns rows marked."""
    if not ids:
        return 0
    ensure_inbox_tables(conn)
    return conn.execute(
        "UPDATE sync.inbox SET processed_at = now(), run_id = %s WHERE id = ANY(%s) AND processed_at IS NULL",
        (run_id, list(ids)),
    ).rowcount


def mark_set_aside(conn: psycopg.Connection, reasons: Sequence[tuple[int, str]]) -> int:
    """Keep why each delivery could not be applied, on its inbox row: [(inbox id, reason)]."""
    if not reasons:
        return 0
    ensure_inbox_tables(conn)
    with conn.cursor() as cur:
        cur.executemany("UPDATE sync.inbox SET set_aside = %s WHERE id = %s",
                        [(reason, inbox_id) for inbox_id, reason in reasons])
    return len(reasons)


_STATS = """
WITH received AS (
    SELECT count(*) AS received, coalesce(sum(duplicates), 0)::bigint AS duplicates
    FROM sync.inbox WHERE provider = %(provider)s AND received_at >= %(since)s
), processed AS (
    SELECT count(*) AS processed, count(*) FILTER (WHERE set_aside IS NOT NULL) AS set_aside,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - triggered_at))
            FILTER (WHERE triggered_at IS NOT NULL) AS lag_p50,
        percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - triggered_at))
            FILTER (WHERE triggered_at IS NOT NULL) AS lag_p95
    FROM sync.inbox WHERE provider = %(provider)s AND processed_at >= %(since)s
), waiting AS (
    SELECT count(*) AS pending, extract(epoch FROM now() - min(received_at)) AS oldest
    FROM sync.inbox WHERE provider = %(provider)s AND processed_at IS NULL
)
SELECT received, duplicates, processed, set_aside, lag_p50, lag_p95, pending, oldest
FROM received, processed, waiting
"""


def stats(conn: psycopg.Connection, provider: str, since: datetime) -> dict[str, Any]:
    """Counts since `since` (received, duplicates of those, processed and set aside of those, lag
    percentiles of processed deliveries from the provider's trigger time), the current backlog, and
    rejections by reason (exact counts of the hours since the one holding `since`)."""
    ensure_inbox_tables(conn)
    received, duplicates, processed, set_aside, p50, p95, waiting, oldest = conn.execute(
        _STATS, {"provider": provider, "since": since}
    ).fetchone()
    rejected = conn.execute(  # the hour holding `since` counts whole: counters are hourly
        "SELECT reason, sum(count) FROM sync.webhook_rejection_counts WHERE provider = %s"
        " AND window_start > %s - %s GROUP BY reason ORDER BY reason",
        (provider, since, REJECTION_WINDOW),
    ).fetchall()
    return {
        "received": int(received),
        "duplicates": int(duplicates),
        "processed": int(processed),
        "set_aside": int(set_aside),
        "pending": int(waiting),
        "oldest_pending_age_seconds": float(oldest) if oldest is not None else None,
        "lag_p50_seconds": float(p50) if p50 is not None else None,
        "lag_p95_seconds": float(p95) if p95 is not None else None,
        "rejected_by_reason": {reason: int(n) for reason, n in rejected},
    }


def purge_processed(conn: psycopg.Connection, older_than: timedelta, *, provider: str | None = None) -> int:
    """Delete deliveries processed more than `older_than` ago; returns how many."""
    ensure_inbox_tables(conn)
    query = "DELETE FROM sync.inbox WHERE processed_at < now() - %s"
    params: list[Any] = [older_than]
    if provider is not None:
        query += " AND provider = %s"
        params.append(provider)
    return conn.execute(query, params).rowcount


def purge_rejections(conn: psycopg.Connection, older_than: timedelta) -> int:
    """Delete rejection counters and samples older than `older_than`; returns the rejections
    forgotten (counted ones, each sample row belongs to one of them)."""
    ensure_inbox_tables(conn)
    with conn.transaction():
        conn.execute("DELETE FROM sync.webhook_rejections WHERE received_at < now() - %s", (older_than,))
        forgotten = conn.execute(
            "WITH gone AS (DELETE FROM sync.webhook_rejection_counts WHERE window_start + %s < now() - %s"
            " RETURNING count) SELECT coalesce(sum(count), 0) FROM gone",
            (REJECTION_WINDOW, older_than)).fetchone()[0]
    return int(forgotten)
