"""Restatement over time (``/_sandbox/meta_ads/restate`` and drift).

Meta changes past numbers: conversions are attributed late (up to 28 days after the click) and
invalid clicks are removed for a few days, taking their spend with them; a campaign-day can
vanish entirely ("Insights data may change", https://developers.facebook.com/docs/marketing-api/
insights/best-practices/). A restatement of the last N days does all three to seeded, randomly
chosen campaign-days of an account, so a sync that does not re-read its window drifts away.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sync_pipelines.sandbox.meta_ads.data import AccountData


class MetaAdsMutations:
    """The restatements of `MetaAdsSandbox` (mixed into it)."""

    def restate(self, account_id: str, days: int = 28, *, change: int | None = None,
                vanish: int | None = None) -> dict[str, Any]:
        """Restate the account's last `days` local days (today included): `change` rows get late
        conversions and lose invalid clicks (default: half of the rows), `vanish` rows disappear
        (default: a tenth, at least one). Returns the changed and vanished campaign-days."""
        if int(days) < 1:
            raise ValueError("days must be >= 1")
        with self._lock:
            account: AccountData = self.account(account_id)
            today = account.today(self.now())
            present = [(campaign, day, cell)
                       for offset in range(int(days)) for day in [today - timedelta(days=offset)]
                       for campaign in account.campaigns
                       if (cell := account.cell(campaign, day)) is not None]
            rng = account.rng
            n_vanish = min(len(present), max(1, len(present) // 10) if vanish is None else max(0, int(vanish)))
            picked = rng.sample(range(len(present)), len(present))
            gone, rest = picked[:n_vanish], picked[n_vanish:]
            n_change = min(len(rest), len(present) // 2 if change is None else max(0, int(change)))
            vanished, changed = [], []
            for i in sorted(gone):
                campaign, day, _ = present[i]
                account.overrides[(campaign.id, day)] = None
                vanished.append({"campaign_id": campaign.id, "date": day.isoformat()})
            for i in sorted(rest[:n_change]):
                campaign, day, cell = present[i]
                account.overrides[(campaign.id, day)] = _restated(cell, campaign.order_value_minor, rng)
                changed.append({"campaign_id": campaign.id, "date": day.isoformat()})
            return {"account_id": account.account_id, "changed": changed, "vanished": vanished}

    def drift(self, account_id: str) -> dict[str, Any]:
        """What ``make dev`` sees between two syncs: a few late conversions in the last 3 days,
        now and then a vanished row."""
        with self._lock:
            rng = self.account(account_id).rng
            return self.restate(account_id, 3, change=rng.randint(1, 3), vanish=1 if rng.random() < 0.2 else 0)


def _restated(cell: dict[str, int], order_value_minor: int, rng: Any) -> dict[str, int]:
    """A campaign-day after late conversions and invalid-click removal (never equal to `cell`)."""
    new = dict(cell)
    late = rng.randint(1, 3)
    new["purchases"] += late
    new["purchase_value"] += int(late * order_value_minor * (0.8 + 0.4 * rng.random()))
    new["add_to_cart"] += late
    invalid = min(cell["clicks"], rng.randint(0, max(1, cell["clicks"] // 40)))
    if invalid:
        new["clicks"] -= invalid
        new["spend"] = max(0, cell["spend"] - cell["spend"] * invalid // max(cell["clicks"], 1) // 2)
        new["landing_page_views"] = min(new["landing_page_views"], new["clicks"])
    return new
