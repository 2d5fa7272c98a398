"""EcoManager's destination table in schema `ecomanager`: orders, keyed by store and EcoManager id.

Fields are read as the v2 order resource names them (`GET /api/shop/v2/orders`, and the webhook
body, "formatted exactly like the response from the Retrieve a single order endpoint"): French
state names are kept as sent. EcoManager prints its own wall-clock time without an offset
(`2025-04-26 14:30:00`); such timestamps are read in Africa/Algiers, the platform's zone (ISO
values with an offset are taken as they are).
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.entities import entity_table
from sync_pipelines.defs.ecomanager.provider import DEFAULT_TIMEZONE

SCHEMA = "ecomanager"
metadata = sa.MetaData()

ORDERS = entity_table(
    metadata, SCHEMA, "orders",
    sa.Column("order_id", sa.BigInteger, nullable=False, info={"path": "id"}),
    sa.Column("reference", sa.Text),
    sa.Column("order_state", sa.Text, info={"path": "order_state_name"}, comment="e.g. 'En dispatch', as sent"),
    sa.Column("confirmation_state", sa.Text, info={"path": "confirmation_state_name"}),
    sa.Column("confirmation_history", JSONB, comment="[{state_name, created_at}, …] as sent"),
    sa.Column("confirmator_id", sa.BigInteger, info={"path": "confirmator.id"}),
    sa.Column("confirmator_name", sa.Text, info={"path": "confirmator.name"}),
    sa.Column("customer_name", sa.Text, info={"path": "full_name"}),
    sa.Column("phone", sa.Text, info={"path": "telephone"}),
    sa.Column("wilaya", sa.Text),
    sa.Column("commune", sa.Text),
    sa.Column("items", JSONB),
    sa.Column("total", sa.Numeric),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    key=["order_id"],
    updated_at_path="updated_at",
    soft_delete=True,
    naive_timestamps_in=DEFAULT_TIMEZONE,
    comment="Orders of each store (GET /api/shop/v2/orders, OrderCreated/…Changed webhooks).",
)
