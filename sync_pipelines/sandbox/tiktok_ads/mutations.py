"""Restatement over time (``/_sandbox/tiktok_ads/restate`` and drift).

TikTok's numbers for past days change: conversions are attributed late (up to the attribution
window after the click or view, 7 days by default) and arrive over the following days; invalid
traffic is removed; a campaign deleted since is left out of AUCTION_CAMPAIGN reports (they filter
``campaign_status`` STATUS_NOT_DELETE by default), so its rows vanish. A restatement of the last N
days does those to seeded, randomly chosen campaign-days, so a sync that does not re-read its
window drifts away.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sync_pipelines.sandbox.tiktok_ads.data import Advertiser


class TikTokAdsMutations:
    """The restatements of `TikTokAdsSandbox` (mixed into it)."""

    def restate(self, advertiser_id: str, days: int = 7, *, change: int | None = None,
                vanish: int | None = None) -> dict[str, Any]:
        """Restate the advertiser's last `days` days (today included): `change` rows get late
        conversions (default: half), `vanish` rows disappear (default: a tenth, at least one)."""
        if int(days) < 1:
            raise ValueError("days must be >= 1")
        with self._lock:
            advertiser: Advertiser = self.advertiser(advertiser_id)
            today = advertiser.today(self.now())
            present = [(campaign, day, cell) for offset in range(int(days)) for day in [today - timedelta(days=offset)]
                       for campaign in advertiser.campaigns if (cell := advertiser.cell(campaign, day)) is not None]
            rng = advertiser.rng
            n_vanish = min(len(present), max(1, len(present) // 10) if vanish is None else max(0, int(vanish)))
            order = rng.sample(range(len(present)), len(present))
            gone, rest = order[:n_vanish], order[n_vanish:]
            n_change = min(len(rest), len(present) // 2 if change is None else max(0, int(change)))
            vanished, changed = [], []
            for i in sorted(gone):
                campaign, day, _ = present[i]
                advertiser.overrides[(campaign.id, day)] = None
                vanished.append({"campaign_id": campaign.id, "date": day.isoformat()})
            for i in sorted(rest[:n_change]):
                campaign, day, cell = present[i]
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
                advertiser.overrides[(campaign.id, day)] = new
                changed.append({"campaign_id": campaign.id, "date": day.isoformat()})
            return {"advertiser_id": advertiser.advertiser_id, "changed": changed, "vanished": vanished}

    def drift(self, advertiser_id: str) -> dict[str, Any]:
        """What ``make dev`` sees between two syncs: a few late conversions in the last 3 days,
        now and then a vanished row."""
        with self._lock:
            rng = self.advertiser(advertiser_id).rng
            return self.restate(advertiser_id, 3, change=rng.randint(1, 3), vanish=1 if rng.random() < 0.2 else 0)
