"""The Admin REST API's list parameters: filters, sort order, ``limit`` and ``page_info``.

As Shopify does: orders default to ``status=open`` (closed and cancelled orders are invisible
unless the client asks for ``status=any``), and cursor pagination goes through an RFC 8288
``Link`` header whose ``page_info`` token carries the filters, so a page_info request may only
add ``limit`` and ``fields``. Each error here is the 400 (with Shopify's wording) a bad
parameter gets.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sync_pipelines.sandbox.base import bounded_int
from sync_pipelines.sandbox.control import dumps
from sync_pipelines.sandbox.shopify.data import ShopData

LIMIT_DEFAULT = 50
LIMIT_MAX = 250
ORDER_STATUSES = ("open", "closed", "cancelled", "any")
PRODUCT_STATUSES = ("active", "archived", "draft")
SORTS = ("id asc", "id desc", "updated_at asc", "updated_at desc", "created_at asc", "created_at desc")
NOT_FOUND = {"errors": "Not Found"}
PAGE_INFO_INVALID = {"errors": {"page_info": "Invalid value."}}  # Shopify's wording for a bad token
PAGINATION_DOCS = "https://shopify.dev/api/usage/pagination-rest"


class ApiError(Exception):
    """An error reply: ``status`` with ``payload`` (Shopify's ``{"errors": ...}``)."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(status, payload)
        self.status, self.payload = status, payload


def _parse_instant(raw: str, tz: ZoneInfo, name: str) -> float:
    """Any ISO-8601 form -> epoch seconds; a naive value is read in the shop's time zone.
    An unencoded ``+02:00`` arrives as `` 02:00`` (form decoding), so that is accepted too."""
    text = raw.strip()
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, {"errors": {name: f"{raw!r} is not an ISO 8601 date-time"}}) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.timestamp()


def filters_from_query(shop: ShopData, resource: str, params: Any) -> dict[str, Any]:
    """Canonical filter set (JSON-able: it travels inside page_info)."""
    f: dict[str, Any] = {}
    if resource == "orders":
        status = params.get("status") or "open"
        if status not in ORDER_STATUSES:
            raise ApiError(400, {"errors": {"status": f"must be one of {', '.join(ORDER_STATUSES)}"}})
        f["status"] = status
    elif resource == "products" and params.get("status"):
        wanted = sorted({s.strip() for s in params["status"].split(",") if s.strip()})
        if not set(wanted) <= set(PRODUCT_STATUSES):
            raise ApiError(400, {"errors": {"status": f"must be among {', '.join(PRODUCT_STATUSES)}"}})
        f["status"] = wanted
    for name in ("ids", "since_id"):
        raw = params.get(name)
        if raw:
            try:
                values = sorted({int(part) for part in raw.split(",") if part.strip()})
            except ValueError:
                raise ApiError(400, {"errors": {name: "expected integer ids"}}) from None
            if name == "since_id":
                if len(values) != 1:
                    raise ApiError(400, {"errors": {name: "expected one integer id"}})
                f[name] = values[0]
            else:
                f[name] = values
    for name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
        if params.get(name):
            f[name] = _parse_instant(params[name], shop.tz, name)
    return f


def _valid_filters(resource: str, f: Any) -> bool:
    """For filters that came back inside a page_info token (which a client could forge)."""
    if not isinstance(f, dict):
        return False
    for name, value in f.items():
        if name == "status":
            ok = (value in ORDER_STATUSES if resource == "orders"
                  else resource == "products" and isinstance(value, list) and set(value) <= set(PRODUCT_STATUSES))
        elif name == "ids":
            ok = isinstance(value, list) and all(isinstance(v, int) for v in value)
        elif name == "since_id":
            ok = isinstance(value, int)
        elif name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = False
        if not ok:
            return False
    return resource != "orders" or "status" in f


def row_matcher(f: dict[str, Any]) -> Callable[[Any], bool] | None:
    checks: list[Callable[[Any], bool]] = []
    status = f.get("status")
    if status == "open":
        checks.append(lambda r: r.closed is None and r.cancelled is None)
    elif status == "closed":
        checks.append(lambda r: r.closed is not None)
    elif status == "cancelled":
        checks.append(lambda r: r.cancelled is not None)
    elif isinstance(status, list):
        wanted = set(status)
        checks.append(lambda r: r.status in wanted)
    if "ids" in f:
        ids = set(f["ids"])
        checks.append(lambda r: r.id in ids)
    if "since_id" in f:
        since = f["since_id"]
        checks.append(lambda r: r.id > since)
    for name, attr in (("created_at_min", "created"), ("updated_at_min", "updated")):
        if name in f:
            checks.append(lambda r, a=attr, v=f[name]: getattr(r, a) >= v)
    for name, attr in (("created_at_max", "created"), ("updated_at_max", "updated")):
        if name in f:
            checks.append(lambda r, a=attr, v=f[name]: getattr(r, a) <= v)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda r: all(check(r) for check in checks)


def sort_key(order: str) -> Callable[[Any], tuple[int, int]]:
    """Keyset key: (sort value, id), negated for desc, so bisect works on ascending keys."""
    field, direction = order.split()
    attr = {"id": "id", "updated_at": "updated", "created_at": "created"}[field]
    if direction == "asc":
        return lambda r: (getattr(r, attr), r.id)
    return lambda r: (-getattr(r, attr), -r.id)


def parse_order(raw: str | None) -> str:
    if not raw:
        return "id asc"
    parts = raw.strip().lower().split()
    order = " ".join(parts if len(parts) == 2 else parts + ["asc"])
    if order not in SORTS:
        raise ApiError(400, {"errors": {"order": f"must be one of {', '.join(SORTS)}"}})
    return order


def parse_limit(params: Any) -> int:
    try:
        return bounded_int(params.get("limit"), LIMIT_DEFAULT, 1, LIMIT_MAX)
    except ValueError as exc:
        raise ApiError(400, {"errors": {"limit": str(exc)}}) from None


def encode_page_info(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(dumps(payload)).rstrip(b"=").decode()


def decode_page_info(raw: str, resource: str) -> dict[str, Any]:
    try:
        token = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        ok = (isinstance(token, dict) and token.get("resource") == resource
              and token.get("direction") in ("next", "prev") and token.get("order") in SORTS
              and isinstance(token.get("last_id"), int) and isinstance(token.get("last_value"), int)
              and _valid_filters(resource, token.get("filters")))
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise ApiError(400, PAGE_INFO_INVALID)
    return token


