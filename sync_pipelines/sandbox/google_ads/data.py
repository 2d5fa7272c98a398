"""A Google Ads customer's data: campaigns, their seeded campaign×day metrics, and GAQL results.

Nothing is stored per day: a campaign-day's numbers are a pure function of ``(seed, customer,
campaign, day)`` plus the day's restatement count, so 1,000 customers × years of days cost
nothing until queried, and the same seed always serves the same numbers. Days are the
customer's own calendar days in its ``time_zone``
(https://developers.google.com/google-ads/api/reference/rpc/v26/Customer: "time_zone … the
local timezone ID of the customer"), and today's row is today's partial numbers so far; nothing
is served after the customer's today. A day with no impressions has no row (the API omits
zero-impression campaign-days), and so has a campaign-day that a restatement removed.

Rows are rendered as the REST API's JSON (https://developers.google.com/google-ads/api/rest/overview):
lowerCamelCase field names, int64 as decimal strings (``"costMicros": "1234567"``), doubles as
JSON numbers (whole ones without a fraction, as the protobuf JSON printer writes them), and each
resource with its ``resourceName``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from sync_pipelines.sandbox.google_ads.gaql import FIELDS, Query

# Campaigns start between these dates (absolute, so the same seed serves the same history
# whatever the wall clock says).
HISTORY_START = date(2024, 1, 1)
_START_SPREAD_DAYS = 200
_CURRENCY_SCALE = {"USD": 1.0, "EUR": 0.95, "GBP": 0.8, "CAD": 1.35, "AUD": 1.5, "JPY": 150.0, "INR": 83.0,
                   "BRL": 5.0, "MXN": 17.0, "CHF": 0.9}
_BRANDS = ("Brand", "Generic", "Competitor", "Remarketing", "Prospecting", "Summer Sale", "Black Friday",
           "Été – Promo", "Café \"Crème\"", "Spring's Best")
_CHANNELS = ("SEARCH", "SEARCH", "DISPLAY", "SHOPPING", "PERFORMANCE_MAX", "VIDEO")
_GEOS = ("US", "UK", "DE", "FR", "CA", "ES", "JP", "Global")
METRICS = ("impressions", "clicks", "cost_micros", "conversions", "conversions_value")


def normalise_customer_id(raw: str) -> str:
    """``123-456-7890`` or ``1234567890`` → ``1234567890``; anything else is a ValueError."""
    text = str(raw).replace("-", "").strip()
    if not re.fullmatch(r"\d{10}", text):
        raise ValueError(f"customer id must be 10 digits (dashes allowed), got {raw!r}")
    return text


def camel(path: str) -> str:
    """``metrics.cost_micros`` → ``metrics.costMicros`` (the JSON / FieldMask spelling)."""
    return ".".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), part) for part in path.split("."))


@dataclass
class Campaign:
    id: int
    name: str
    channel: str
    start: date  # first day it served
    end: date | None  # last day it served (paused or removed then), None: still serving
    final_status: str  # ENABLED, or PAUSED/REMOVED once `end` has passed
    impressions: int  # typical daily impressions
    ctr: float
    cpc_micros: int
    cvr: float
    value_per_conversion: float

    def status(self, today: date) -> str:
        return self.final_status if self.end is not None and self.end < today else "ENABLED"


@dataclass
class CustomerData:
    customer_id: str
    currency_code: str
    time_zone: str
    descriptive_name: str
    manager_id: str | None
    seed: int
    campaigns: list[Campaign] = field(default_factory=list)
    revisions: dict[date, int] = field(default_factory=dict)  # day -> restatements so far
    vanished: set[tuple[int, date]] = field(default_factory=set)  # (campaign id, day) removed upstream
    rng: random.Random = field(default_factory=random.Random)  # restatements' choices

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def today(self, now: float) -> date:
        """The customer's calendar day at epoch second ``now``."""
        return datetime.fromtimestamp(now, timezone.utc).astimezone(self.zone).date()

    def day_fraction(self, now: float) -> float:
        """How much of the customer's today has passed (today's numbers are partial)."""
        local = datetime.fromtimestamp(now, timezone.utc).astimezone(self.zone)
        midnight = datetime.combine(local.date(), datetime.min.time(), self.zone)
        return min(1.0, max(0.0, (local - midnight).total_seconds() / 86_400))

    # ------------------------------------------------------------ metrics
    def metrics(self, campaign: Campaign, day: date, today: date, fraction: float) -> dict[str, Any] | None:
        """One campaign-day's numbers as served now, or None when the API has no row for it."""
        if day < campaign.start or day > today or (campaign.end is not None and day > campaign.end):
            return None
        if (campaign.id, day) in self.vanished:
            return None
        r = random.Random(f"google_ads:{self.seed}:{self.customer_id}:{campaign.id}:{day.isoformat()}")
        if r.random() < 0.04:  # no serving that day
            return None
        weekday = 0.75 if day.weekday() >= 5 else 1.0
        impressions = int(campaign.impressions * weekday * r.uniform(0.6, 1.4))
        clicks = int(impressions * campaign.ctr * r.uniform(0.7, 1.3))
        cost_micros = int(clicks * campaign.cpc_micros * r.uniform(0.8, 1.2))
        conversions = round(clicks * campaign.cvr * r.uniform(0.5, 1.5), 2)
        if r.random() < 0.3:  # data-driven attribution: fractional conversions
            conversions = round(conversions + 1 / 3, 6)
        value = round(conversions * campaign.value_per_conversion, 2)
        for k in range(1, self.revisions.get(day, 0) + 1):
            adj = random.Random(f"google_ads-restate:{self.seed}:{self.customer_id}:{campaign.id}:"
                                f"{day.isoformat()}:{k}")
            late = adj.choice((0.5, 1.0, 1.5, 2.0))  # late conversions arrive
            conversions = round(conversions + late, 6)
            value = round(value + late * campaign.value_per_conversion, 2)
            invalid = adj.randint(0, max(0, clicks // 10))  # invalid clicks removed, with their cost
            if clicks:
                cost_micros = int(cost_micros * (clicks - invalid) / clicks)
                clicks -= invalid
        if day == today:
            impressions, clicks = int(impressions * fraction), int(clicks * fraction)
            cost_micros = int(cost_micros * fraction)
            conversions, value = round(conversions * fraction, 6), round(value * fraction, 2)
        if impressions <= 0:
            return None
        return {"impressions": impressions, "clicks": clicks, "cost_micros": cost_micros,
                "conversions": conversions, "conversions_value": value}

    def days(self, low: date | None, high: date | None, today: date) -> Iterator[date]:
        first = max(low or HISTORY_START, HISTORY_START)
        last = min(high or today, today)
        for n in range((last - first).days + 1):
            yield first + timedelta(days=n)

    # ------------------------------------------------------------ queries
    def execute(self, query: Query, now: float) -> list[dict[str, Any]]:
        """The rows a validated query returns, rendered as REST JSON."""
        today, fraction = self.today(now), self.day_fraction(now)
        low, high = query.date_range(today)
        named = {*query.select, *(c.field for c in query.where), *(f for f, _ in query.order_by)}
        per_day = any(FIELDS[f].category in ("METRIC", "SEGMENT") for f in named)
        by_date = "segments.date" in query.select
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        campaigns = self.campaigns if query.resource == "campaign" else [None]
        for campaign in campaigns:
            if not per_day:
                groups[(campaign.id if campaign else None,)] = {"campaign": campaign}
                continue
            for source in (self.campaigns if campaign is None else [campaign]):
                for day in self.days(low, high, today):
                    m = self.metrics(source, day, today, fraction)
                    if m is None:
                        continue
                    key = (campaign.id if campaign else None, day if by_date else None)
                    group = groups.setdefault(key, {"campaign": campaign, "day": key[1],
                                                    **dict.fromkeys(METRICS, 0)})
                    for name in METRICS:
                        group[name] += m[name]
        values = [self._values(g, today) for g in groups.values()]
        rows = [v for v in values if query.matches(v)]
        for name, descending in reversed(query.order_by):
            rows.sort(key=lambda v: (v.get(name) is None, v.get(name)), reverse=descending)
        if query.limit is not None:
            rows = rows[:query.limit]
        return [self._render(query, v) for v in rows]

    def _values(self, group: dict[str, Any], today: date) -> dict[str, Any]:
        """Every field the group can answer, as Python values (dates as ISO text)."""
        v: dict[str, Any] = {
            "customer.resource_name": f"customers/{self.customer_id}", "customer.id": int(self.customer_id),
            "customer.descriptive_name": self.descriptive_name, "customer.currency_code": self.currency_code,
            "customer.time_zone": self.time_zone, "customer.manager": False,
        }
        campaign: Campaign | None = group.get("campaign")
        if campaign is not None:
            v.update({"campaign.resource_name": f"customers/{self.customer_id}/campaigns/{campaign.id}",
                      "campaign.id": campaign.id, "campaign.name": campaign.name,
                      "campaign.status": campaign.status(today), "campaign.advertising_channel_type": campaign.channel})
        if "impressions" in group:
            if group.get("day") is not None:
                v["segments.date"] = group["day"].isoformat()
            for name in METRICS:
                v[f"metrics.{name}"] = group[name]
            v["metrics.conversions"] = round(v["metrics.conversions"], 6)
            v["metrics.conversions_value"] = round(v["metrics.conversions_value"], 2)
            impressions, clicks = group["impressions"], group["clicks"]
            v["metrics.ctr"] = clicks / impressions if impressions else 0.0
            v["metrics.average_cpc"] = group["cost_micros"] / clicks if clicks else 0.0
        return v

    def _render(self, query: Query, values: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        omit = query.parameters.get("omit_unselected_resource_names", False)
        for resource in ("campaign", "customer"):
            wanted = resource == query.resource or any(f.startswith(f"{resource}.") for f in query.select)
            name = f"{resource}.resource_name"
            if wanted and name in values and (not omit or name in query.select):
                row.setdefault(resource, {})["resourceName"] = values[name]
        for path in query.select:
            if path.endswith(".resource_name"):
                continue
            value = values.get(path)
            if value is None:
                continue
            resource, _, leaf = path.partition(".")
            row.setdefault(resource, {})[camel(leaf)] = _json_value(FIELDS[path].kind, value)
        return row


def _json_value(kind: str, value: Any) -> Any:
    """proto3 JSON: int64 as a string, a double as a number (``2`` for 2.0), the rest as is."""
    if kind == "INT64":
        return str(int(value))
    if kind == "DOUBLE":
        value = float(value)
        return int(value) if value.is_integer() and abs(value) < 1e15 else value
    return value


def generate_customer(seed: int, customer_id: str, *, currency_code: str = "USD",
                      time_zone: str = "America/New_York", campaigns: int = 5, manager_id: str | None = None,
                      descriptive_name: str | None = None) -> CustomerData:
    """A customer and its campaigns, the same for the same ``(seed, customer_id)``."""
    if campaigns < 0:
        raise ValueError("campaigns must be >= 0")
    if not re.fullmatch(r"[A-Z]{3}", currency_code):
        raise ValueError(f"currency_code must be an ISO 4217 code like 'USD', got {currency_code!r}")
    ZoneInfo(time_zone)  # an unknown zone raises before anything is built
    r = random.Random(f"google_ads:{seed}:{customer_id}")
    data = CustomerData(customer_id=customer_id, currency_code=currency_code, time_zone=time_zone,
                        descriptive_name=descriptive_name or f"{r.choice(_BRANDS)} Store {customer_id[-4:]}",
                        manager_id=manager_id, seed=seed,
                        rng=random.Random(f"google_ads-mutations:{seed}:{customer_id}"))
    scale = _CURRENCY_SCALE.get(currency_code, 1.0)
    ids: set[int] = set()
    for n in range(campaigns):
        cid = r.randint(10**10, 10**11 - 1)
        while cid in ids:
            cid = r.randint(10**10, 10**11 - 1)
        ids.add(cid)
        start = HISTORY_START + timedelta(days=r.randrange(_START_SPREAD_DAYS))
        ending = r.random()
        end, final = (None, "ENABLED") if ending < 0.75 or n == 0 else (
            start + timedelta(days=r.randint(60, 500)), "PAUSED" if ending < 0.9 else "REMOVED")
        channel = r.choice(_CHANNELS)
        data.campaigns.append(Campaign(
            id=cid, name=f"{r.choice(_BRANDS)} - {channel.replace('_', ' ').title()} - {r.choice(_GEOS)} #{n + 1}",
            channel=channel, start=start, end=end, final_status=final,
            impressions=r.randint(200, 20_000), ctr=r.uniform(0.01, 0.08),
            cpc_micros=int(r.uniform(0.2, 3.5) * scale * 1_000_000), cvr=r.uniform(0.01, 0.1),
            value_per_conversion=round(r.uniform(5, 250) * scale, 2)))
    return data
