"""Meta Marketing API emulator: ad accounts, Insights (sync and async report runs), Business Use
Case throttling, access tokens and their exchange, restatement over time, plus a control plane.

Run it with ``python -m sync_pipelines.sandbox.meta_ads``; `MetaAdsSandbox` (in ``app``) is the
Python API.
"""

from sync_pipelines.sandbox.meta_ads.app import (
    DEFAULT_TOKEN, SUPPORTED_API_VERSIONS, MetaAdsSandbox, account_number, main,
)
from sync_pipelines.sandbox.meta_ads.data import PURCHASE_ACTION_TYPES, AccountData, Campaign, money
from sync_pipelines.sandbox.meta_ads.reports import LIMIT_DEFAULT, LIMIT_MAX
from sync_pipelines.sandbox.meta_ads.throttle import AD_ACCOUNT_HEADER, BUC_HEADER, INSIGHTS_THROTTLE_HEADER

__all__ = ["AD_ACCOUNT_HEADER", "BUC_HEADER", "DEFAULT_TOKEN", "INSIGHTS_THROTTLE_HEADER", "LIMIT_DEFAULT",
           "LIMIT_MAX", "PURCHASE_ACTION_TYPES", "SUPPORTED_API_VERSIONS", "AccountData", "Campaign",
           "MetaAdsSandbox", "account_number", "main", "money"]
