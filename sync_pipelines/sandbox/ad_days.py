"""Seeded campaign-days as the Meta, LinkedIn and TikTok sandboxes generate them.

A campaign-day's numbers are a pure function of a seed string: whether the campaign ran and
delivered that day, then impressions around its daily mean, clicks at its CTR, cost at its CPM,
conversions at its CVR and their value. The platforms name and render these numbers differently;
drawing them here, once and in one order, keeps every sandbox serving the numbers it always did.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

NO_DELIVERY_RATE = 0.06  # a campaign-day without delivery has no row at all


@dataclass(frozen=True)
class SeededCampaign:
    """What every ad sandbox's ``Campaign`` has (it adds its id, its kind and its money fields):
    the days it runs and the rates its days are drawn from."""

    name: str
    start: date
    end: date | None
    impressions_per_day: int
    ctr: float  # clicks per impression
    cvr: float  # conversions per click

    def runs_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


def delivered(key: str, campaign: SeededCampaign, day: date) -> random.Random | None:
    """The generator of the campaign's numbers on `day`, seeded by `key` (provider, seed,
    account), campaign and day; None when it has no row: not running, or no delivery."""
    if not campaign.runs_on(day):
        return None
    rng = random.Random(f"{key}:{campaign.id}:{day.isoformat()}")  # type: ignore[attr-defined]
    if rng.random() < NO_DELIVERY_RATE:
        return None
    return rng


def funnel(rng: random.Random, campaign: SeededCampaign, *, cpm: int, order_value: int,
           weekday: float = 1.0) -> tuple[int, int, int, int, int]:
    """A delivered day's (impressions, clicks, cost, conversions, value), `cpm` and `order_value`
    in the unit the cost and value come out in; `weekday` scales the impressions."""
    impressions = max(1, int(campaign.impressions_per_day * weekday * (0.6 + 0.8 * rng.random())))
    clicks = int(impressions * campaign.ctr * (0.7 + 0.6 * rng.random()))
    cost = max(1, int(impressions * cpm / 1000 * (0.85 + 0.3 * rng.random())))
    conversions = int(clicks * campaign.cvr * (0.5 + rng.random()))
    value = int(conversions * order_value * (0.8 + 0.4 * rng.random()))
    return impressions, clicks, cost, conversions, value
