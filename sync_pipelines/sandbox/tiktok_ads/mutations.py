"""Restatement over time (``/_sandbox/tiktok_ads/restate`` and drift).

TikTok's numbers for past days change: conversions are attributed late (up to the attribution
window after the click or view, 7 days by default) and arrive over the following days; invalid
traffic is removed; a campaign deleted since is left out of AUCTION_CAMPAIGN reports (they filter
``campaign_status`` STATUS_NOT_DELETE by default), so its rows vanish. A restatement of the last N
days does those to seeded, randomly chosen campaign-days, so a sync that does not re-read its
window drifts away.
"""

from __future__ import annotations

from typing import Any

from sync_pipelines.sandbox.ad_restatement import drift_amounts, restate_window, window_days
from sync_pipelines.sandbox.tiktok_ads.data import Advertiser, Campaign


class TikTokAdsMutations:
    """The restatements of `TikTokAdsSandbox` (mixed into it)."""

    def restate(self, advertiser_id: str, days: int = 7, *, change: int | None = None,
                vanish: int | None = None) -> dict[str, Any]:
        """Restate the advertiser's last `days` days (today included): `change` rows get late
        conversions (default: half), `vanish` rows disappear (default: a tenth, at least one)."""
        days = window_days(days)
        with self._lock:
            advertiser: Advertiser = self.advertiser(advertiser_id)
            changed, vanished = restate_window(advertiser, advertiser.today(self.now()), days, change=change,
                                               vanish=vanish, restated=_restated)
            return {"advertiser_id": advertiser.advertiser_id, "changed": changed, "vanished": vanished}

    def drift(self, advertiser_id: str) -> dict[str, Any]:
        """What ``make dev`` sees between two syncs: a few late conversions in the last 3 days,
        now and then a vanished row."""
        with self._lock:
            rng = self.advertiser(advertiser_id).rng
            return self.restate(advertiser_id, 3, **drift_amounts(rng))


def _restated(campaign: Campaign, cell: dict[str, int], rng: Any) -> dict[str, int]:
    """A campaign-day after late conversions (in-app or website) and invalid traffic removed."""
    late = rng.randint(1, 3)
    value = int(late * campaign.order_value_cents * (0.8 + 0.4 * rng.random()))
    new = {**cell, "conversion": cell["conversion"] + late}
    if campaign.app:
        new["app_purchase_value"] += value
    else:
        new["complete_payment"] += late
        new["payment_value"] += value
    invalid = rng.randint(0, max(0, cell["clicks"] // 50))
    if invalid:
        new["clicks"] -= invalid
        new["spend"] = max(0, cell["spend"] - cell["spend"] * invalid // max(cell["clicks"], 1) // 2)
    return new
