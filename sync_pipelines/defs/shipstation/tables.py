"""ShipStation's destination tables in schema `shipstation`, keyed by store and ShipStation id.

Every table has `deleted_at`: set for a record the last complete listing no longer returned."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from sync_pipelines.core.entities import entity_table

SCHEMA = "shipstation"
metadata = sa.MetaData()

WAREHOUSES = entity_table(
    metadata, SCHEMA, "warehouses",
    sa.Column("warehouse_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("is_default", sa.Boolean),
    sa.Column("origin_address", JSONB),
    sa.Column("return_address", JSONB),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    soft_delete=True,
    key=["warehouse_id"],
    comment="Ship-from locations (GET /v2/warehouses).",
)

INVENTORY_WAREHOUSES = entity_table(
    metadata, SCHEMA, "inventory_warehouses",
    sa.Column("inventory_warehouse_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    soft_delete=True,
    key=["inventory_warehouse_id"],
    updated_at_path="updated_at",
    comment="Warehouses that hold inventory (GET /v2/inventory_warehouses).",
)

INVENTORY_LOCATIONS = entity_table(
    metadata, SCHEMA, "inventory_locations",
    sa.Column("inventory_location_id", sa.Text, nullable=False),
    sa.Column("inventory_warehouse_id", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    soft_delete=True,
    key=["inventory_location_id"],
    updated_at_path="updated_at",
    comment="Bins and shelves inside inventory warehouses (GET /v2/inventory_locations).",
)

PRODUCTS = entity_table(
    metadata, SCHEMA, "products",
    sa.Column("product_id", sa.BigInteger, nullable=False),
    sa.Column("sku", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("active", sa.Boolean),
    sa.Column("price_amount", sa.Numeric, info={"path": "price.amount"}),
    sa.Column("price_currency", sa.Text, info={"path": "price.currency"}),
    sa.Column("weight_value", sa.Numeric, info={"path": "weight.value"}),
    sa.Column("weight_unit", sa.Text, info={"path": "weight.unit"}),
    sa.Column("product_category", sa.Text, info={"path": "product_category.name"}),
    sa.Column("warehouse_location", sa.Text),
    sa.Column("create_date", sa.DateTime(timezone=True)),
    sa.Column("modify_date", sa.DateTime(timezone=True)),
    soft_delete=True,
    key=["product_id"],
    updated_at_path="modify_date",
    comment="Product catalogue (GET /v2/products).",
)

INVENTORY = entity_table(
    metadata, SCHEMA, "inventory",
    sa.Column("sku", sa.Text, nullable=False),
    sa.Column("inventory_warehouse_id", sa.Text, nullable=False),
    sa.Column("inventory_location_id", sa.Text, nullable=False),
    sa.Column("on_hand", sa.Integer),
    sa.Column("allocated", sa.Integer),
    sa.Column("available", sa.Integer),
    sa.Column("average_cost_amount", sa.Numeric, info={"path": "average_cost.amount"}),
    sa.Column("average_cost_currency", sa.Text, info={"path": "average_cost.currency"}),
    soft_delete=True,
    key=["sku", "inventory_warehouse_id", "inventory_location_id"],
    comment="Stock levels per SKU and location (GET /v2/inventory).",
)
