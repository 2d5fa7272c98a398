"""Partitions equal to the active accounts; the automation (backfill on connect, weekly
restatement, cadence) launching what is due in bounded runs."""

from sync_pipelines.core.dg.partitions import build_partitions_sensor
from sync_pipelines.core.dg.report_automation import automation_sensor
from sync_pipelines.defs.meta_ads.assets import SPEC, accounts, sync_job
from sync_pipelines.defs.meta_ads.provider import NAME

sensors = [build_partitions_sensor(NAME, accounts), automation_sensor(SPEC, sync_job)]
