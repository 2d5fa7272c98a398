"""Replication's Definitions: one asset per configured table, the job, its schedule, the source.

The table list is read when the code location loads (`REPLICATION_CONFIG` or the packaged
`replication.yaml`); an invalid file fails the load with every problem named.
"""

from __future__ import annotations

import os

import dagster as dg

from sync_pipelines.defs.replication.assets import replication_asset, replication_job
from sync_pipelines.defs.replication.config import load_config
from sync_pipelines.defs.replication.resources import SourceDatabase
from sync_pipelines.defs.replication.schedules import replication_schedule


def build_definitions(config_path: str | os.PathLike | None = None) -> dg.Definitions:
    specs = load_config(config_path)
    assets = [replication_asset(spec) for spec in specs]
    resources = {"source_db": SourceDatabase()}
    if not assets:
        return dg.Definitions(resources=resources)
    job = replication_job(assets)
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[replication_schedule(job)],
        # POST /triggers/replication_sync (declared in triggers.py) launches the job: the trigger
        # sensor is built once, for every folder's declared jobs, in sync_pipelines/definitions.py.
        resources=resources,
    )


defs = build_definitions()
