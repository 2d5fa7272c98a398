"""Restatement over time: Google Ads changes the numbers of past days.

Conversions keep arriving for days after the click (Google Ads counts a conversion on the day
of the click, within the conversion window), and clicks found invalid are removed with their
cost for a few days after (https://support.google.com/google-ads/answer/2549113 on data
freshness; https://support.google.com/google-ads/answer/42995 on invalid clicks). A
restatement of the last N days bumps each day's restatement count — every served row of those
days gets late conversions, and some lose invalid clicks and cost — and can make campaign-days
vanish altogether (all of a day's clicks were invalid). ``drift`` is a small restatement, for
``make dev``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any


class GoogleAdsMutations:
    """Restatements of `GoogleAdsSandbox` (mixed into it)."""

    def restate(self, customer_id: str, days: int = 7, vanish: int = 0) -> dict[str, Any]:
        """Restate the customer's last ``days`` days before its today and remove ``vanish``
        of the campaign-days served in them; returns what changed."""
        if days < 1 or vanish < 0:
            raise ValueError("need days >= 1 and vanish >= 0")
        with self._lock:
            customer = self.customer(customer_id)
            now = self.now()
            today, fraction = customer.today(now), customer.day_fraction(now)
            window = [today - timedelta(days=n) for n in range(days, 0, -1)]
            served = [(c.id, day) for day in window for c in customer.campaigns
                      if customer.metrics(c, day, today, fraction) is not None]
            for day in window:
                customer.revisions[day] = customer.revisions.get(day, 0) + 1
            gone = sorted(customer.rng.sample(served, min(vanish, len(served))), key=lambda p: (p[1], p[0]))
            customer.vanished.update(gone)
        return {"customer_id": customer.customer_id, "days": [d.isoformat() for d in window],
                "vanished": [{"campaign_id": str(cid), "date": day.isoformat()} for cid, day in gone]}

    def drift(self, customer_id: str) -> dict[str, Any]:
        """The last 3 days restated, and now and then one campaign-day removed."""
        with self._lock:
            vanish = 1 if self.customer(customer_id).rng.random() < 0.3 else 0
        return self.restate(customer_id, days=3, vanish=vanish)
