"""Restatement over time (``/_sandbox/meta_ads/restate`` and drift).

Meta changes past numbers: conversions are attributed late (up to 28 days after the click) and
invalid clicks are removed for a few days, taking their spend with them; a campaign-day can
vanish entirely ("Insights data may change", https://developers.facebook.com/docs/marketing-api/
insights/best-practices/). A restatement of the last N days does all three to seeded, randomly
chosen campaign-days of an account, so a sync that does not re-read its window drifts away.
"""

from __future__ import annotations

from typing import Any

from sync_pipelines.sandbox.ad_restatement import drift_amounts, restate_window, window_days
from sync_pipelines.sandbox.meta_ads.data import AccountData, Campaign


class MetaAdsMutations:
    """The restatements of `MetaAdsSandbox` (mixed into it)."""

    def restate(self, account_id: str, days: int = 28, *, change: int | None = None,
                vanish: int | None = None) -> dict[str, Any]:
        """Restate the account's last `days` local days (today included): `change` rows get late
        conversions and lose invalid clicks (default: half of the rows), `vanish` rows disappear
        (default: a tenth, at least one). Returns the changed and vanished campaign-days."""
        days = window_days(days)
        with self._lock:
            account: AccountData = self.account(account_id)
            changed, vanished = restate_window(account, account.today(self.now()), days, change=change,
                                               vanish=vanish, restated=_restated)
            return {"account_id": account.account_id, "changed": changed, "vanished": vanished}

    def drift(self, account_id: str) -> dict[str, Any]:
        """What ``make dev`` sees between two syncs: a few late conversions in the last 3 days,
        now and then a vanished row."""
        with self._lock:
            rng = self.account(account_id).rng
            return self.restate(account_id, 3, **drift_amounts(rng))


def _restated(campaign: Campaign, cell: dict[str, int], rng: Any) -> dict[str, int]:
    """A campaign-day after late conversions and invalid-click removal (never equal to `cell`)."""
    new = dict(cell)
    late = rng.randint(1, 3)
    new["purchases"] += late
    new["purchase_value"] += int(late * campaign.order_value_minor * (0.8 + 0.4 * rng.random()))
    new["add_to_cart"] += late
    invalid = min(cell["clicks"], rng.randint(0, max(1, cell["clicks"] // 40)))
    if invalid:
        new["clicks"] -= invalid
        new["spend"] = max(0, cell["spend"] - cell["spend"] * invalid // max(cell["clicks"], 1) // 2)
        new["landing_page_views"] = min(new["landing_page_views"], new["clicks"])
    return new
