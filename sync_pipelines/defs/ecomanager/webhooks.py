"""How EcoManager signs and names its webhooks, and where each event goes: `WEBHOOKS` (pure).

Contract (EcoManager shop API v2, "Webhooks"): a POST whose body is the order exactly as
"Retrieve a single order" returns it, with `X-Ecomanager-Signature` = HMAC-SHA256 of the full raw
body under the webhook's secret (hex), `X-Ecomanager-Source` = the full URL of the account
(`https://STORE.ecomanager.dz`, our account id), `X-Ecomanager-Event` and `X-Ecomanager-Webhook-ID`
(the *webhook's* id, the same for all its deliveries). A GET to the delivery URL validates it on
activation; a 200 is wanted within 5 s, else the delivery is retried up to 6 times over ~24 h.

We choose the secret when creating a store's webhooks, so one secret (`ECOMANAGER_WEBHOOK_SECRET`,
and `ECOMANAGER_WEBHOOK_SECRET_PREVIOUS` during a rotation) serves every store. A retry repeats the
same body, so the delivery id is the webhook id plus a hash of the body: retries de-duplicate,
distinct events (their `updated_at` differs) do not. Once a run has applied deliveries, the new
orders they brought are assigned to agents (`after_apply`), without waiting for the hourly sync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from sync_pipelines.core.entities import parse_instant
from sync_pipelines.core.headers import header
from sync_pipelines.core.webhooks import DeliveryFacts, TopicRoute, WebhookDeclaration, WebhookRequest
from sync_pipelines.defs.ecomanager import assignment, tables
from sync_pipelines.defs.ecomanager.provider import DECLARATION as _PROVIDER

PROVIDER = _PROVIDER.name

SIGNATURE_HEADER = "X-Ecomanager-Signature"
SOURCE_HEADER = "X-Ecomanager-Source"
EVENT_HEADER = "X-Ecomanager-Event"
WEBHOOK_ID_HEADER = "X-Ecomanager-Webhook-ID"
KEPT_HEADERS = (SOURCE_HEADER, EVENT_HEADER, WEBHOOK_ID_HEADER)

SECRET_ENV = "ECOMANAGER_WEBHOOK_SECRET"
PREVIOUS_SECRET_ENV = "ECOMANAGER_WEBHOOK_SECRET_PREVIOUS"

_ORDERS = (PROVIDER, tables.ORDERS.name)
ROUTES = {
    "OrderCreated": TopicRoute(table=tables.ORDERS, asset=_ORDERS),
    "OrderStatusChanged": TopicRoute(table=tables.ORDERS, asset=_ORDERS),
    "OrderConfirmationStatusChanged": TopicRoute(table=tables.ORDERS, asset=_ORDERS),
    "OrderShippingStatusChanged": TopicRoute(table=tables.ORDERS, asset=_ORDERS),
    "OrderDeleted": TopicRoute(table=tables.ORDERS, asset=_ORDERS, delete=True),
}
EVENTS = tuple(ROUTES)


def signature(secret: str, body: bytes) -> str:
    """The value EcoManager puts in `X-Ecomanager-Signature` for `body` (lowercase hex)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header_value: str | None, secrets: Sequence[str]) -> bool:
    """True if `header_value` is the hex signature of the raw `body` under any of `secrets`
    (every secret compared, in constant time, so timing tells nothing)."""
    if not header_value or not secrets:
        return False
    received = header_value.strip().lower().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(signature(secret, body).encode("ascii"), received)
    return matched


def secrets_from_env(environ: Mapping[str, str]) -> list[str]:
    return [value for name in (SECRET_ENV, PREVIOUS_SECRET_ENV) if (value := environ.get(name, "").strip())]


def read(request: WebhookRequest) -> DeliveryFacts:
    """Account from `X-Ecomanager-Source`, the event, and a delivery id hashed from the body."""
    headers = request.headers
    source, webhook_id = header(headers, SOURCE_HEADER), header(headers, WEBHOOK_ID_HEADER)
    try:
        account = _PROVIDER.normalise_account(source) if source else None
    except ValueError:
        account = None
    digest = hashlib.sha256(request.body).hexdigest()[:40]
    return DeliveryFacts(
        account=account,
        delivery_id=f"{webhook_id}:{digest}" if webhook_id else None,
        topic=header(headers, EVENT_HEADER),
        triggered_at=_updated_at(request.body),
        kept_headers={name: value for name in KEPT_HEADERS if (value := header(headers, name)) is not None},
    )


def _updated_at(body: bytes):
    """The order's `updated_at` (when the event happened); None if absent or unreadable."""
    try:
        order = json.loads(body)
        return parse_instant(order.get("updated_at"), tables.ORDERS.info["naive_zone"]) if isinstance(order, dict) else None
    except (ValueError, TypeError):
        return None


def assign_new_orders(conn, accounts: Sequence[str]) -> dict:
    """After deliveries are applied: a new order brought by OrderCreated is assigned at once."""
    return assignment.assign_pending(conn, list(accounts)).as_metadata()


WEBHOOKS = WebhookDeclaration(
    provider=PROVIDER,
    signature_header=SIGNATURE_HEADER,
    secrets_from_env=secrets_from_env,
    verify=verify,
    read=read,
    answers_probe=True,
    routes=ROUTES,
    after_apply=assign_new_orders,
)
