"""How Shopify signs and names its webhooks, and where each topic goes: `WEBHOOKS`, one complete
declaration (pure functions and tables; no Dagster).

Shopify signs the raw request body with HMAC-SHA256 under the app's client secret and sends it
base64-encoded in `X-Shopify-Hmac-Sha256`. Secrets rotate, so the receiver accepts the current
and the previous one during a rotation. The receiver discovers `WEBHOOKS` without Dagster; the
topic map (`ROUTES`) is also what the management job subscribes to and what the apply job applies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sync_pipelines.core.headers import header
from sync_pipelines.core.webhooks import TopicRoute, WebhookDeclaration
from sync_pipelines.defs.shopify import tables
from sync_pipelines.defs.shopify.provider import DECLARATION as _PROVIDER

PROVIDER = _PROVIDER.name

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_HEADER = "X-Shopify-Shop-Domain"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"
API_VERSION_HEADER = "X-Shopify-API-Version"

SECRET_ENV = "SHOPIFY_WEBHOOK_SECRET"
PREVIOUS_SECRET_ENV = "SHOPIFY_WEBHOOK_SECRET_PREVIOUS"


def _upsert(table) -> TopicRoute:
    return TopicRoute(table=table, asset=(PROVIDER, table.name))


def _delete(table) -> TopicRoute:
    return TopicRoute(table=table, asset=(PROVIDER, table.name), delete=True)


# The topic map: every topic we subscribe to, and the table (and asset) its payloads update.
ROUTES = {
    "orders/create": _upsert(tables.ORDERS),
    "orders/updated": _upsert(tables.ORDERS),
    "orders/paid": _upsert(tables.ORDERS),
    "orders/cancelled": _upsert(tables.ORDERS),
    "orders/delete": _delete(tables.ORDERS),
    "customers/create": _upsert(tables.CUSTOMERS),
    "customers/update": _upsert(tables.CUSTOMERS),
    "customers/delete": _delete(tables.CUSTOMERS),
    "products/create": _upsert(tables.PRODUCTS),
    "products/update": _upsert(tables.PRODUCTS),
    "products/delete": _delete(tables.PRODUCTS),
    "carts/create": _upsert(tables.CARTS),
    "carts/update": _upsert(tables.CARTS),
    "checkouts/create": _upsert(tables.CHECKOUTS),
    "checkouts/update": _upsert(tables.CHECKOUTS),
}
TOPICS = tuple(ROUTES)

# Headers worth keeping with a delivery (never the HMAC).
KEPT_HEADERS = (TOPIC_HEADER, SHOP_HEADER, WEBHOOK_ID_HEADER, EVENT_ID_HEADER, TRIGGERED_AT_HEADER,
                API_VERSION_HEADER)


def signature(secret: str, body: bytes) -> str:
    """The value Shopify puts in `X-Shopify-Hmac-Sha256` for `body`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, header_value: str | None, secrets: Sequence[str]) -> bool:
    """True if `header_value` is the signature of the raw `body` under any of `secrets`.

    Every secret is compared, so the time taken does not reveal which one matched.
    """
    if not header_value or not secrets:
        return False
    try:
        received = base64.b64decode(header_value.strip(), validate=True)
    except (ValueError, UnicodeEncodeError):
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, received)
    return matched


def secrets_from_env(environ: Mapping[str, str]) -> list[str]:
    """The current secret, then the previous one during a rotation; empty values are ignored."""
    return [value for name in (SECRET_ENV, PREVIOUS_SECRET_ENV) if (value := environ.get(name, "").strip())]


def account(headers: Mapping[str, str]) -> str | None:
    """The shop's myshopify domain, which is the account (partition) key."""
    shop = header(headers, SHOP_HEADER)
    return _PROVIDER.normalise_account(shop) if shop else None


def delivery_id(headers: Mapping[str, str]) -> str | None:
    return header(headers, WEBHOOK_ID_HEADER)


def topic(headers: Mapping[str, str]) -> str | None:
    return header(headers, TOPIC_HEADER)


def event_id(headers: Mapping[str, str]) -> str | None:
    return header(headers, EVENT_ID_HEADER)


def triggered_at(headers: Mapping[str, str]) -> datetime | None:
    """When Shopify says the event happened (ISO 8601, UTC if no offset); None if absent or unparseable."""
    value = header(headers, TRIGGERED_AT_HEADER)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The non-secret headers stored with a delivery, keyed by their canonical names."""
    kept = {name: header(headers, name) for name in KEPT_HEADERS}
    return {name: value for name, value in kept.items() if value is not None}


WEBHOOKS = WebhookDeclaration(
    provider=PROVIDER,
    signature_header=HMAC_HEADER,
    secrets_from_env=secrets_from_env,
    verify=verify,
    account=account,
    delivery_id=delivery_id,
    topic=topic,
    triggered_at=triggered_at,
    event_id=event_id,
    kept_headers=kept_headers,
    routes=ROUTES,
)
