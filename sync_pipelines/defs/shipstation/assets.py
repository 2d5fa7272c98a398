"""ShipStation assets per store: the foundation in order, then products and inventory in parallel.

Warehouses → inventory warehouses → inventory locations must land first (inventory rows point at
them); products and inventory depend only on the foundation, so one failing never stops the other.
"""

import dagster as dg

from sync_pipelines.core.dg.assets import sync_asset
from sync_pipelines.defs.shipstation import tables
from sync_pipelines.defs.shipstation.client import PROVIDER, ShipStationSession

stores = dg.DynamicPartitionsDefinition(name="shipstation_stores")

# v2 lists have no modified-since filter: every run reads the whole list, so what it no longer
# returns was deleted upstream (soft-deleted here, revived if it comes back).
_common = dict(provider=PROVIDER, client_key="shipstation", partitions_def=stores, owners=["team:data-eng"],
               propagate_deletes=True)

warehouses = sync_asset(
    name="warehouses", stream_table=tables.WAREHOUSES, fetch=ShipStationSession.warehouses,
    description="Ship-from warehouses of the store.", **_common,
)
inventory_warehouses = sync_asset(
    name="inventory_warehouses", stream_table=tables.INVENTORY_WAREHOUSES,
    fetch=ShipStationSession.inventory_warehouses, deps=[warehouses],
    description="Inventory warehouses (foundation, after warehouses).", **_common,
)
inventory_locations = sync_asset(
    name="inventory_locations", stream_table=tables.INVENTORY_LOCATIONS,
    fetch=ShipStationSession.inventory_locations, deps=[inventory_warehouses],
    description="Inventory locations (foundation, after inventory warehouses).", **_common,
)
products = sync_asset(
    name="products", stream_table=tables.PRODUCTS, fetch=ShipStationSession.products, deps=[inventory_locations],
    description="Product catalogue (content, after the foundation).", **_common,
)
inventory = sync_asset(
    name="inventory", stream_table=tables.INVENTORY, fetch=ShipStationSession.inventory, deps=[inventory_locations],
    description="Stock levels per SKU and location (content, after the foundation).", **_common,
)

all_assets = [warehouses, inventory_warehouses, inventory_locations, products, inventory]

sync_job = dg.define_asset_job(
    name="shipstation_sync",
    selection=dg.AssetSelection.assets(*all_assets),
    partitions_def=stores,
    executor_def=dg.in_process_executor,
    tags={"sync/provider": PROVIDER},
    description="Foundation then content for one store; launched per store by the schedules.",
)
