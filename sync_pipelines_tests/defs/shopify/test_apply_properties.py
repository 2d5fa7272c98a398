"""Property: whatever JSON shapes the deliveries hold, applying them never fails the batch.

Random payloads (any JSON value, or records whose fields hold any JSON value) on every topic are
applied together with one good delivery at the end; each delivery is applied or set aside, the
good one is always stored, and the transaction stays usable. Runs against the embedded
PostgreSQL inside a transaction that is rolled back.
"""

from __future__ import annotations

import json
import uuid

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.dg.realtime import apply_events
from sync_pipelines.defs.shopify.sensors import ROUTES, route_name
from sync_pipelines.defs.shopify.webhooks import TOPICS

# What jsonb can hold: no NaN/Infinity, no \u0000 (the receiver refuses those at the door).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
scalars = (st.none() | st.booleans() | st.integers() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | text
           | st.sampled_from(["2026-03-01T10:00:00Z", "2026-03-01T10:00:00", "", "12", "1e400", "tok"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(text, inner, max_size=3), max_leaves=8)
FIELDS = ["id", "token", "updated_at", "created_at", "name", "email", "customer", "total_price", "orders_count",
          "variants", "deleted_at", "title", "status"]
records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)
deliveries = st.lists(st.tuples(st.sampled_from(TOPICS), records | json_values), min_size=1, max_size=6)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deliveries=deliveries)
def test_random_payloads_never_block_the_batch(conn, deliveries):
    shop = f"prop-{uuid.uuid4().hex[:8]}.myshopify.com"
    ensure_tables(conn, [*inbox.TABLES, *{route.table for route in ROUTES.values()}])  # outside the rollback
    with conn.transaction(force_rollback=True):
        for n, (topic, payload) in enumerate([*deliveries, ("orders/create", {
                "id": 4242, "updated_at": "2026-03-01T10:00:00Z", "name": "#4242"})]):
            inbox.append(conn, provider="shopify", account=shop, topic=topic, delivery_id=f"{shop}-{n}",
                         payload=json.dumps(payload))  # JSON text, as the receiver stores the raw body
        events = inbox.claim(conn, "shopify", [shop])
        results = apply_events(conn, events, ROUTES, route_name)

        applied = sum(r.events for r in results.values())
        rejected = [event_id for r in results.values() for event_id, _ in r.rejected]
        assert applied == len(events)  # every topic here is routed
        assert set(rejected) <= {e.id for e in events[:-1]}  # the good one is never set aside
        assert len(rejected) == len(set(rejected))
        assert conn.execute("SELECT name FROM shopify.orders WHERE account = %s AND order_id = 4242",
                            (shop,)).fetchone() == ("#4242",) or _overwritten(deliveries)
        conn.execute("SELECT 1").fetchone()  # the transaction is still usable


def _overwritten(deliveries) -> bool:
    """A random delivery for order 4242 with a later updated-at may legitimately win."""
    return any(isinstance(p, dict) and p.get("id") in (4242, "4242") for _, p in deliveries)
