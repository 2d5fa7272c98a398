"""The synchronous report's parameters, checked like the API checks them, and its rows.

``GET /open_api/v1.3/report/integrated/get/`` ("Run a synchronous report",
https://business-api.tiktok.com/portal/docs?id=1740302848100353): ``advertiser_id``,
``report_type`` (BASIC here), ``service_type`` (AUCTION, the default), ``data_level``
(AUCTION_CAMPAIGN here), ``dimensions`` and ``metrics`` as **JSON-encoded arrays** in the query
string, ``start_date``/``end_date`` (``YYYY-MM-DD``, inclusive, the advertiser's days), ``page``
(from 1) and ``page_size`` (1–1,000, default 10). With ``stat_time_day`` among the dimensions a
request may span **at most 30 days** (365 without it). The answer's ``data`` holds ``list`` and
``page_info`` (``page``, ``page_size``, ``total_number``, ``total_page``). Every refusal is a 40002.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sync_pipelines.sandbox.base import bounded_int
from sync_pipelines.sandbox.tiktok_ads.data import METRICS, Advertiser, add_cells, render
from sync_pipelines.sandbox.tiktok_ads.errors import param_error

MAX_DAYS_BY_DAY, MAX_DAYS = 30, 365
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 10, 1000
DEFAULT_METRICS = ("spend", "impressions")
DIMENSION_SETS = ({"campaign_id", "stat_time_day"}, {"campaign_id"})


@dataclass(frozen=True)
class ReportQuery:
    advertiser_id: str
    by_day: bool
    metrics: tuple[str, ...]
    start: date
    end: date
    page: int
    page_size: int


def _json_list(params: dict[str, str], name: str) -> list[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise param_error(f"{name}: must be a JSON-encoded list of strings, e.g. [\"campaign_id\"]; got {raw!r}"
                          ) from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise param_error(f"{name}: must be a JSON-encoded list of strings; got {raw!r}")
    return value


def _day(params: dict[str, str], name: str) -> date:
    raw = params.get(name)
    if not raw:
        raise param_error(f"{name}: required (YYYY-MM-DD) unless query_lifetime is true")
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise param_error(f"{name}: must be a date YYYY-MM-DD; got {raw!r}") from None


def parse(params: dict[str, str]) -> ReportQuery:
    advertiser_id = params.get("advertiser_id", "")
    if not advertiser_id.isdigit():
        raise param_error("advertiser_id: required, the advertiser's numeric id")
    if params.get("report_type") != "BASIC":
        raise param_error(f"report_type: the sandbox serves BASIC; got {params.get('report_type')!r}")
    if params.get("service_type", "AUCTION") != "AUCTION":
        raise param_error("service_type: must be AUCTION")
    if params.get("data_level") != "AUCTION_CAMPAIGN":
        raise param_error(f"data_level: the sandbox serves AUCTION_CAMPAIGN; got {params.get('data_level')!r}")
    dimensions = _json_list(params, "dimensions")
    if dimensions is None or set(dimensions) not in DIMENSION_SETS or len(set(dimensions)) != len(dimensions):
        raise param_error(f"dimensions: the sandbox serves [\"campaign_id\",\"stat_time_day\"] or [\"campaign_id\"];"
                          f" got {params.get('dimensions')!r}")
    metrics = _json_list(params, "metrics") or list(DEFAULT_METRICS)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise param_error(f"metrics: unknown metric {unknown[0]!r}")
    start, end = _day(params, "start_date"), _day(params, "end_date")
    if end < start:
        raise param_error("end_date must not be earlier than start_date")
    by_day = "stat_time_day" in dimensions
    limit = MAX_DAYS_BY_DAY if by_day else MAX_DAYS
    if (end - start).days + 1 > limit:
        raise param_error(f"The time span between start_date and end_date cannot exceed {limit} days"
                          + (" when stat_time_day is a dimension." if by_day else "."))
    try:
        page = bounded_int(params.get("page"), 1, 1, None)
        page_size = bounded_int(params.get("page_size"), PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX)
    except ValueError as error:
        raise param_error(f"page/page_size {error}") from None
    return ReportQuery(advertiser_id, by_day, tuple(dict.fromkeys(metrics)), start, end, page, page_size)


def compute_rows(advertiser: Advertiser, query: ReportQuery, today: date) -> list[dict[str, Any]]:
    """Every row of the query as served now, in a stable order (day, campaign); none after today."""
    last = min(query.end, today)
    days = [query.start + timedelta(days=i) for i in range((last - query.start).days + 1)] if last >= query.start else []
    rows = []
    if query.by_day:
        for day in days:
            for campaign in advertiser.campaigns:
                cell = advertiser.cell(campaign, day)
                if cell is not None:
                    rows.append(render(advertiser, campaign, day, cell, list(query.metrics)))
        return rows
    for campaign in advertiser.campaigns:
        cells = [c for day in days if (c := advertiser.cell(campaign, day)) is not None]
        if cells:
            rows.append(render(advertiser, campaign, None, add_cells(cells), list(query.metrics)))
    return rows


def page(rows: list[dict[str, Any]], query: ReportQuery) -> dict[str, Any]:
    """``{"list", "page_info"}`` for the query's page (past the last page: an empty list)."""
    total = len(rows)
    first = (query.page - 1) * query.page_size
    return {"list": rows[first:first + query.page_size],
            "page_info": {"page": query.page, "page_size": query.page_size, "total_number": total,
                          "total_page": math.ceil(total / query.page_size)}}
