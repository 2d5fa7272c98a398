"""A demo source database for local development: `public.orders` and `public.order_items`.

Values are computed from the row number in SQL (no randomness, no clock), so every machine gets
the same data and seeding again adds nothing: existing keys are left as they are, including rows
changed since by `drift_demo_source`. Production never calls this.
"""

from __future__ import annotations

import psycopg

_TABLES = """
CREATE TABLE IF NOT EXISTS public.orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    amount numeric(12,2) NOT NULL,
    attributes jsonb NOT NULL,
    note text NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_updated_at_idx ON public.orders (updated_at);
CREATE TABLE IF NOT EXISTS public.order_items (
    order_id bigint NOT NULL REFERENCES public.orders (id) ON DELETE CASCADE,
    line_no integer NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    unit_price numeric(12,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
)
"""

_ORDERS = """
INSERT INTO public.orders (id, customer_id, status, amount, attributes, note, created_at, updated_at)
SELECT i,
       1 + mod(i * 7919, 997),
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + mod(i, 5)],
       round(mod(i * 104729, 250000) / 100.0 + 1, 2),
       jsonb_build_object('channel', (ARRAY['web', 'app', 'phone'])[1 + mod(i, 3)],
                          'gift', mod(i, 11) = 0, 'tags', jsonb_build_array('t' || mod(i, 7))),
       CASE WHEN mod(i, 4) = 0 THEN NULL ELSE 'note ' || i END,
       timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute',
       timestamptz '2025-01-01 00:00:00+00' + i * interval '1 minute' + mod(i, 48) * interval '1 hour'
FROM generate_series(1, %s::bigint) AS i
ON CONFLICT (id) DO NOTHING
"""

_ITEMS = """
INSERT INTO public.order_items (order_id, line_no, sku, quantity, unit_price)
SELECT o.id, n, 'SKU-' || lpad(mod(o.id * 31 + n, 500)::text, 4, '0'), 1 + mod(o.id + n, 4),
       round(mod(o.id * 13 + n * 101, 9000) / 100.0 + 0.5, 2)
FROM public.orders AS o
CROSS JOIN LATERAL generate_series(1, 1 + mod(o.id, 3)) AS n
WHERE o.id <= %s
ON CONFLICT (order_id, line_no) DO NOTHING
"""


def seed_demo_source(url: str, rows: int = 5000) -> None:
    """Create the demo tables in the database at `url` and fill orders 1..`rows` (idempotent)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('sync-pipelines demo source'))")
        conn.execute(_TABLES)
        conn.execute(_ORDERS, (rows,))
        conn.execute(_ITEMS, (rows,))


def drift_demo_source(url: str, *, updates: int = 10, inserts: int = 2, deletes: int = 1) -> None:
    """Change a few source rows now (what the app would do), so the next sync has work."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "UPDATE public.orders SET status = 'shipped', amount = amount + 1, updated_at = now()"
            " WHERE id IN (SELECT id FROM public.orders ORDER BY random() LIMIT %s)",
            (updates,),
        )
        conn.execute(
            "WITH next AS (SELECT coalesce(max(id), 0) AS top FROM public.orders)"
            " INSERT INTO public.orders (id, customer_id, status, amount, attributes, created_at, updated_at)"
            " SELECT top + i, 1, 'pending', 9.99, '{}'::jsonb, now(), now()"
            " FROM next, generate_series(1, %s) AS i",
            (inserts,),
        )
        conn.execute(
            "INSERT INTO public.order_items (order_id, line_no, sku, quantity, unit_price)"
            " SELECT id, 1, 'SKU-0001', 1, 9.99 FROM public.orders"
            " WHERE id > (SELECT max(id) FROM public.orders) - %s ON CONFLICT DO NOTHING",
            (inserts,),
        )
        conn.execute(
            "DELETE FROM public.order_items WHERE (order_id, line_no) IN"
            " (SELECT order_id, line_no FROM public.order_items WHERE line_no > 1 ORDER BY random() LIMIT %s)",
            (deletes,),
        )
