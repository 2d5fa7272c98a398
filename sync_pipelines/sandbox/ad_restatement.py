"""Restatement as the Meta, LinkedIn and TikTok sandboxes do it: which campaign-days of a window
vanish and which get late numbers, drawn from the account's seeded generator, and the control endpoints that ask for them.

The three platforms restate alike (late conversions, invalid clicks removed, a campaign-day
gone) and differ only in what a restated cell holds, so that is the one thing each passes in.
One picker keeps their draws in the same order, so the same seed restates the same rows. Google
Ads is not among them: it restates by revision counts per day (``google_ads.mutations``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, Callable, Protocol, Sequence

from starlette.requests import Request

from sync_pipelines.sandbox.control import only_fields

Cell = dict[str, int]


class RestatedAccount(Protocol):
    """What a restatement reads and writes on an account (``AccountData``, ``Advertiser``)."""

    campaigns: Sequence[Any]
    overrides: dict[tuple[Any, date], Cell | None]
    rng: random.Random

    def cell(self, campaign: Any, day: date) -> Cell | None: ...


def window_days(days: Any) -> int:
    """The days a restatement covers, refused below one before anything is looked up."""
    if int(days) < 1:
        raise ValueError("days must be >= 1")
    return int(days)


def restate_window(account: RestatedAccount, today: date, days: int, *, change: int | None, vanish: int | None,
                   restated: Callable[[Any, Cell, random.Random], Cell]) -> tuple[list[dict], list[dict]]:
    """Restate the `days` days up to `today` (included): `vanish` campaign-days disappear
    (default a tenth, at least one), then `change` others become ``restated(campaign, cell,
    rng)`` (default half of them). Returns the changed and the vanished campaign-days."""
    present = [(campaign, day, cell) for offset in range(days) for day in [today - timedelta(days=offset)]
               for campaign in account.campaigns if (cell := account.cell(campaign, day)) is not None]
    rng = account.rng
    n_vanish = min(len(present), max(1, len(present) // 10) if vanish is None else max(0, int(vanish)))
    order = rng.sample(range(len(present)), len(present))
    gone, rest = order[:n_vanish], order[n_vanish:]
    n_change = min(len(rest), len(present) // 2 if change is None else max(0, int(change)))
    vanished, changed = [], []
    for i in sorted(gone):
        campaign, day, _ = present[i]
        account.overrides[(campaign.id, day)] = None
        vanished.append({"campaign_id": str(campaign.id), "date": day.isoformat()})
    for i in sorted(rest[:n_change]):
        campaign, day, cell = present[i]
        account.overrides[(campaign.id, day)] = restated(campaign, cell, rng)
        changed.append({"campaign_id": str(campaign.id), "date": day.isoformat()})
    return changed, vanished


def drift_amounts(rng: random.Random) -> dict[str, int]:
    """What ``make dev`` sees between two syncs: 1–3 rows with late conversions, and one time in
    five a vanished row (``restate(…, 3, **drift_amounts(rng))``)."""
    return {"change": rng.randint(1, 3), "vanish": 1 if rng.random() < 0.2 else 0}


class RestateControl:
    """``/_sandbox/<provider>/restate`` and ``/drift`` (mixed into the control class; the route
    table names them): the body names the account under `restate_field`, and ``days`` left out
    is the sandbox's own `restate` default."""

    restate_field = "account_id"

    def _ctl_restate(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {self.restate_field, "days", "change", "vanish"})
        days = {"days": int(body["days"])} if "days" in body else {}
        return self.restate(str(body.get(self.restate_field, "")), **days,  # type: ignore[attr-defined]
                            change=body.get("change"), vanish=body.get("vanish"))

    def _ctl_drift(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        only_fields(body, {self.restate_field})
        return self.drift(str(body.get(self.restate_field, "")))  # type: ignore[attr-defined]
