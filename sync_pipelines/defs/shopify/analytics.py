"""Daily shop metrics computed in SQL from the synced orders (no data leaves the database).

Days are the shop's own calendar days (its IANA time zone from `shop.json`), as a merchant
reads "orders on Monday".

Revenue is gross (`total_price`, refunds not subtracted); cancelled, deleted and test orders do
not count. A customer is new on the day of their first order among the synced orders (a cancelled
first order still makes later ones returning), so history before the synced orders is unknown.

Recomputed in full per shop (an aggregate over the shop's orders), so late edits, cancellations
and deletes of old orders are reflected; the upsert rewrites only days whose figures changed, and
days that no longer have orders are removed.
"""

from typing import Any

import psycopg

_REFRESH = """
WITH placed AS (  -- every real order, cancelled ones too: a customer's first order is their first
    SELECT order_id, customer_id, total_price, cancelled_at, (created_at AT TIME ZONE %(timezone)s)::date AS day
    FROM shopify.orders
    WHERE account = %(account)s AND deleted_at IS NULL AND created_at IS NOT NULL
      AND NOT coalesce((raw ->> 'test')::boolean, false)
),
live AS (
    SELECT order_id, customer_id, total_price, day FROM placed WHERE cancelled_at IS NULL
),
first_day AS (
    SELECT customer_id, min(day) AS day FROM placed WHERE customer_id IS NOT NULL GROUP BY customer_id
),
per_day AS (
    SELECT l.day,
           count(*) AS orders,
           coalesce(sum(l.total_price), 0) AS revenue,
           round(avg(l.total_price), 2) AS average_order_value,
           count(DISTINCT l.customer_id) FILTER (WHERE f.day = l.day) AS new_customers,
           count(DISTINCT l.customer_id) FILTER (WHERE f.day < l.day) AS returning_customers
    FROM live l LEFT JOIN first_day f USING (customer_id)
    GROUP BY l.day
),
removed AS (
    DELETE FROM shopify.daily_metrics m
    WHERE m.account = %(account)s AND NOT EXISTS (SELECT 1 FROM per_day p WHERE p.day = m.day)
    RETURNING 1
),
written AS (
    INSERT INTO shopify.daily_metrics AS m
        (account, day, orders, revenue, average_order_value, new_customers, returning_customers)
    SELECT %(account)s, day, orders, revenue, average_order_value, new_customers, returning_customers
    FROM per_day
    ON CONFLICT (account, day) DO UPDATE SET
        orders = EXCLUDED.orders, revenue = EXCLUDED.revenue,
        average_order_value = EXCLUDED.average_order_value,
        new_customers = EXCLUDED.new_customers, returning_customers = EXCLUDED.returning_customers,
        computed_at = now()
    WHERE (m.orders, m.revenue, m.average_order_value, m.new_customers, m.returning_customers)
          IS DISTINCT FROM (EXCLUDED.orders, EXCLUDED.revenue, EXCLUDED.average_order_value,
                            EXCLUDED.new_customers, EXCLUDED.returning_customers)
    RETURNING 1
)
SELECT (SELECT count(*) FROM per_day), (SELECT count(*) FROM written), (SELECT count(*) FROM removed),
       (SELECT coalesce(sum(orders), 0) FROM per_day), (SELECT coalesce(sum(revenue), 0) FROM per_day)
"""


def refresh_daily_metrics(conn: psycopg.Connection, account: str, timezone: str = "UTC") -> dict[str, Any]:
    with conn.transaction():
        days, written, removed, orders, revenue = conn.execute(
            _REFRESH, {"account": account, "timezone": timezone}).fetchone()
    return {
        "days": int(days),
        "days_written": int(written),
        "days_removed": int(removed),
        "orders": int(orders),
        "revenue": float(revenue),
        "timezone": timezone,
        "dagster/row_count": int(days),
    }
