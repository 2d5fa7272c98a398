"""TikTok Business API emulator: advertisers, the synchronous report (JSON-encoded list
parameters, 30-day limit by day, page/page_size paging), advertiser info, access tokens and their
refresh, errors answered with HTTP 200 and a code, restatement over time, plus a control plane.

Run it with ``python -m sync_pipelines.sandbox.tiktok_ads``; `TikTokAdsSandbox` (in ``app``) is
the Python API.
"""

from sync_pipelines.sandbox.tiktok_ads.app import ALL_METRICS, DEFAULT_TOKEN, TikTokAdsSandbox, main
from sync_pipelines.sandbox.tiktok_ads.reports import MAX_DAYS_BY_DAY, PAGE_SIZE_MAX

__all__ = ["ALL_METRICS", "DEFAULT_TOKEN", "MAX_DAYS_BY_DAY", "PAGE_SIZE_MAX", "TikTokAdsSandbox", "main"]
