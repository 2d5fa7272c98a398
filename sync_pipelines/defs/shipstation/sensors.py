"""Keeps the `shipstation_stores` partitions equal to the active stores in the registry."""

from sync_pipelines.core.dg.partitions import build_partitions_sensor
from sync_pipelines.defs.shipstation.assets import stores
from sync_pipelines.defs.shipstation.client import PROVIDER

sensors = [build_partitions_sensor(PROVIDER, stores)]
