"""Nightly at 02:00 UTC: every automatable Meta account's lookback window, in batch runs."""

from sync_pipelines.core.dg.report_automation import nightly_schedule
from sync_pipelines.defs.meta_ads.assets import SPEC, sync_job

schedules = [nightly_schedule(SPEC, sync_job)]
