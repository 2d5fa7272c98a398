"""Restatement over time (``/_sandbox/linkedin_ads/restate`` and drift).

LinkedIn changes past numbers: conversions are attributed late (within the conversion window,
up to 90 days after the click) and invalid clicks are removed with their cost; a campaign-day
can vanish. A restatement of the last N UTC days does all three to seeded, randomly chosen
campaign-days, so a sync that does not re-read its window drifts away.
"""

from __future__ import annotations

from typing import Any

from sync_pipelines.sandbox.ad_restatement import drift_amounts, restate_window, window_days


class LinkedInAdsMutations:
    """The restatements of `LinkedInAdsSandbox` (mixed into it)."""

    def restate(self, account_id: str, days: int = 28, *, change: int | None = None,
                vanish: int | None = None) -> dict[str, Any]:
        """Restate the account's last `days` days (today included): `change` rows get late
        conversions and lose invalid clicks (default half), `vanish` rows disappear (default a
        tenth, at least one). Returns the changed and vanished campaign-days."""
        days = window_days(days)
        with self._lock:
            account = self.account(account_id)
            changed, vanished = restate_window(account, account.today(self.now()), days, change=change,
                                               vanish=vanish, restated=_restated)
            return {"account_id": account.account_id, "changed": changed, "vanished": vanished}

    def drift(self, account_id: str) -> dict[str, Any]:
        """What ``make dev`` sees between syncs: a few late conversions in the last 3 days, now
        and then a vanished row."""
        with self._lock:
            rng = self.account(account_id).rng
            return self.restate(account_id, 3, **drift_amounts(rng))


def _restated(campaign: Any, cell: dict[str, int], rng: Any) -> dict[str, int]:
    """A campaign-day after late conversions and invalid-click removal."""
    late = rng.randint(1, 3)
    new = dict(cell, conversions=cell["conversions"] + late,
               value_cents=cell["value_cents"] + late * campaign.value_cents)
    invalid = min(cell["clicks"], rng.randint(0, max(1, cell["clicks"] // 40)))
    if invalid:
        new["clicks"] -= invalid
        new["cost_micros"] = max(0, cell["cost_micros"] - cell["cost_micros"] * invalid // max(cell["clicks"], 1) // 2)
    return new
