"""The code location: every provider's Definitions merged, plus the shared app database."""

import dagster as dg

from sync_pipelines.core.resources import AppDatabase
from sync_pipelines.defs.shipstation import definitions as shipstation

defs = dg.Definitions.merge(
    shipstation.defs,
    dg.Definitions(resources={"app_db": AppDatabase()}),
)
