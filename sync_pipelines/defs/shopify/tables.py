"""Shopify's destination tables in schema `shopify`, keyed by shop domain and Shopify id.

`deleted_at` is set by the delete webhooks and by reconciliation (soft delete): the row stays
for history and analytics can exclude it.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.entities import entity_table

SCHEMA = "shopify"
metadata = sa.MetaData()


def _deleted_at() -> sa.Column:
    return sa.Column("deleted_at", sa.DateTime(timezone=True), info={"path": "deleted_at"},
                     comment="set when Shopify deleted the record (webhook or reconciliation)")


ORDERS = entity_table(
    metadata, SCHEMA, "orders",
    sa.Column("order_id", sa.BigInteger, nullable=False, info={"path": "id"}),
    sa.Column("name", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("customer_id", sa.BigInteger, info={"path": "customer.id"}),
    sa.Column("financial_status", sa.Text),
    sa.Column("fulfillment_status", sa.Text),
    sa.Column("currency", sa.Text),
    sa.Column("total_price", sa.Numeric),
    sa.Column("subtotal_price", sa.Numeric),
    sa.Column("total_tax", sa.Numeric),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    _deleted_at(),
    key=["order_id"],
    updated_at_path="updated_at",
    comment="Orders of every status (GET orders.json?status=any).",
)

CUSTOMERS = entity_table(
    metadata, SCHEMA, "customers",
    sa.Column("customer_id", sa.BigInteger, nullable=False, info={"path": "id"}),
    sa.Column("email", sa.Text),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("state", sa.Text),
    sa.Column("orders_count", sa.Integer),
    sa.Column("total_spent", sa.Numeric),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    _deleted_at(),
    key=["customer_id"],
    updated_at_path="updated_at",
    comment="Customers (GET customers.json).",
)

PRODUCTS = entity_table(
    metadata, SCHEMA, "products",
    sa.Column("product_id", sa.BigInteger, nullable=False, info={"path": "id"}),
    sa.Column("title", sa.Text),
    sa.Column("handle", sa.Text),
    sa.Column("vendor", sa.Text),
    sa.Column("product_type", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("variants", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    _deleted_at(),
    key=["product_id"],
    updated_at_path="updated_at",
    comment="Products with their variants (GET products.json).",
)

CARTS = entity_table(
    metadata, SCHEMA, "carts",
    sa.Column("cart_token", sa.Text, nullable=False, info={"path": "token"}),
    sa.Column("line_items", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    key=["cart_token"],
    updated_at_path="updated_at",
    comment="Carts, known only from carts/create and carts/update webhooks.",
)

CHECKOUTS = entity_table(
    metadata, SCHEMA, "checkouts",
    sa.Column("checkout_token", sa.Text, nullable=False, info={"path": "token"}),
    sa.Column("checkout_id", sa.BigInteger, info={"path": "id"}),
    sa.Column("cart_token", sa.Text),
    sa.Column("email", sa.Text),
    sa.Column("total_price", sa.Numeric),
    sa.Column("line_items", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    key=["checkout_token"],
    updated_at_path="updated_at",
    comment="Checkouts, known only from checkouts/create and checkouts/update webhooks.",
)

DAILY_METRICS = sa.Table(
    "daily_metrics",
    metadata,
    sa.Column("account", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True, comment="the shop's local day of the order's created_at"),
    sa.Column("orders", sa.Integer, nullable=False),
    sa.Column("revenue", sa.Numeric, nullable=False, comment="sum of total_price (gross of refunds); cancelled and test orders excluded"),
    sa.Column("average_order_value", sa.Numeric),
    sa.Column("new_customers", sa.Integer, nullable=False, comment="first order ever (cancelled ones count) on this day"),
    sa.Column("returning_customers", sa.Integer, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
    schema=SCHEMA,
    comment="Per shop and day: orders, revenue, AOV, new vs returning customers.",
)

