"""Maystro's webhook deliveries: a Pub/Sub-style push whose `message.data` is base64 JSON.

What receivers of Maystro webhooks read (the seed's maystro-webhook.controller.ts and
maystro.service.ts `processWebhook`): the body's `message.data`, base64 of
`{"event": "OrderStatusChanged", "payload": {"status", "id", "display_id_order",
"external_order_id"}}`. The envelope around it is Google Pub/Sub's push format
(`message.data`, `message.messageId`, `message.publishTime`, `subscription`). Maystro documents
no signature, so none is sent.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

EVENT = "OrderStatusChanged"


def status_event(order: dict[str, Any], store: str) -> dict[str, Any]:
    """The decoded `message.data` of an `OrderStatusChanged` delivery."""
    return {"event": EVENT, "store": store, "created_at": datetime.now(UTC).isoformat(),
            "payload": {"status": order["status"], "id": order["id"], "display_id_order": order["display_id"],
                        "external_order_id": order["external_order_id"]}}


def envelope(event: dict[str, Any], subscription: str) -> dict[str, Any]:
    """The HTTP body Maystro POSTs: the event as base64 JSON in a Pub/Sub push message."""
    message_id = str(uuid.uuid4().int)[:16]
    published = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    data = base64.b64encode(json.dumps(event, ensure_ascii=False).encode()).decode()
    return {"message": {"attributes": {}, "data": data, "messageId": message_id, "message_id": message_id,
                        "publishTime": published, "publish_time": published},
            "subscription": subscription}


def post(url: str, body: dict[str, Any], timeout: float = 5.0) -> int:
    """POST `body` as JSON; the receiver's status (0 when it could not be reached)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "Maystro-Webhooks"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback/dev)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0
