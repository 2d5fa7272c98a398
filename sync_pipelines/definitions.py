"""The code location: every provider's Definitions merged, plus the shared app database."""

import dagster as dg

from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.defs.operations import definitions as operations
from sync_pipelines.defs.replication import definitions as replication
from sync_pipelines.defs.shipstation import definitions as shipstation
from sync_pipelines.defs.shopify import definitions as shopify

defs = dg.Definitions.merge(
    shipstation.defs,
    shopify.defs,
    replication.defs,
    operations.defs,
    # Also for runs outside the named jobs ("Materialize all"): API-bound steps, where a
    # subprocess per step would cost seconds.
    dg.Definitions(resources={"app_db": AppDatabase()}, executor=dg.in_process_executor),
)
