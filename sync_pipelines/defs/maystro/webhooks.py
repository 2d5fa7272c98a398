"""Maystro's webhooks: `WEBHOOKS` (pure).

Maystro pushes `{"message": {"data": "<base64 JSON>", "messageId": …, "publishTime": …}, …}`
(a Pub/Sub-style envelope) whose data decodes to `{"event": "OrderStatusChanged", "payload":
{"status", "id", "display_id_order", "external_order_id"}, …}`. It documents **no signature**, so
the endpoint is protected by a per-store token in the URL instead:
`POST /webhooks/maystro/<store>/<token>`, where the token is HMAC-SHA256 of the store name under
`MAYSTRO_WEBHOOK_SECRET` (hex; `…_PREVIOUS` also accepted during a rotation), compared in constant
time. Nothing secret is stored per store, and a leaked URL exposes one store until the secret
rotates (`sync-pipelines maystro webhook-url STORE` prints the URL to paste in Maystro).
Deliveries are de-duplicated on the envelope's `messageId` (else a hash of the data).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sync_pipelines.core.entities import parse_instant
from sync_pipelines.core.webhooks import DeliveryFacts, TopicRoute, WebhookDeclaration, WebhookRequest
from sync_pipelines.defs.maystro import statuses, tables
from sync_pipelines.defs.maystro.provider import DECLARATION as _PROVIDER

PROVIDER = _PROVIDER.name
SECRET_ENV = "MAYSTRO_WEBHOOK_SECRET"
PREVIOUS_SECRET_ENV = "MAYSTRO_WEBHOOK_SECRET_PREVIOUS"
EVENT = "OrderStatusChanged"


def token(secret: str, store: str) -> str:
    """The URL token of `store` under `secret`."""
    message = f"{PROVIDER}-webhook:{_PROVIDER.normalise_account(store)}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def webhook_path(secret: str, store: str) -> str:
    return f"/webhooks/{PROVIDER}/{_PROVIDER.normalise_account(store)}/{token(secret, store)}"


def secrets_from_env(environ: Mapping[str, str]) -> list[str]:
    return [value for name in (SECRET_ENV, PREVIOUS_SECRET_ENV) if (value := environ.get(name, "").strip())]


def authenticate(request: WebhookRequest, secrets: Sequence[str]) -> bool:
    """The URL's token matches the store's under any secret (every one compared, constant time)."""
    if len(request.path) != 2 or not secrets:
        return False
    store, received = request.path
    try:
        expected = [token(secret, store) for secret in secrets]
    except ValueError:
        return False
    matched = False
    for value in expected:
        matched |= hmac.compare_digest(value.encode(), received.lower().encode("ascii", "replace"))
    return matched


def read(request: WebhookRequest) -> DeliveryFacts:
    """Unwrap the envelope: the decoded event is what is stored; ValueError if it is not one."""
    try:
        envelope = json.loads(request.body)
        message = envelope["message"]
        data = base64.b64decode(message["data"], validate=True)
        event = json.loads(data)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValueError("not a Maystro envelope with base64 JSON data") from None
    if not isinstance(event, dict) or not isinstance(event.get("payload"), dict):
        raise ValueError("the decoded data has no payload object")
    message_id = message.get("messageId") or message.get("message_id")
    delivery = str(message_id) if message_id else hashlib.sha256(data).hexdigest()[:40]
    return DeliveryFacts(
        account=_PROVIDER.normalise_account(request.path[0]),
        delivery_id=delivery,
        topic=event.get("event") if isinstance(event.get("event"), str) else None,
        triggered_at=_instant(message.get("publishTime") or message.get("publish_time")),
        event_id=delivery,
        payload=json.dumps(event["payload"]).encode(),
    )


def _instant(value: object) -> datetime | None:
    try:
        return parse_instant(value) if isinstance(value, str) else None
    except ValueError:
        return None


def apply_status(conn, account: str, payload: dict, triggered_at: datetime | None) -> int:
    """One OrderStatusChanged delivery: the shipment's status and a history row (source webhook);
    how many shipments it changed (0: an older or repeated delivery)."""
    if not isinstance(payload, dict) or payload.get("id") is None or payload.get("status") is None:
        raise ValueError("OrderStatusChanged without id or status")
    counts = statuses.apply_webhook_status(conn, account, payload, triggered_at or datetime.now(UTC))
    return counts.new + counts.changed


WEBHOOKS = WebhookDeclaration(
    provider=PROVIDER,
    secrets_from_env=secrets_from_env,
    authenticate=authenticate,
    read=read,
    path_segments=2,
    routes={EVENT: TopicRoute(table=tables.SHIPMENTS, asset=(PROVIDER, tables.SHIPMENTS.name), apply=apply_status)},
)
