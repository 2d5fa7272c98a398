"""What the receiver needs to know about each provider's webhooks, in one generic shape.

A provider plugs in by adding a `WebhookSpec` built from its pure `webhooks.py` to `PROVIDERS`;
the receiver's code never names a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sync_pipelines.defs.shopify import webhooks as shopify

Headers = Mapping[str, str]


@dataclass(frozen=True)
class WebhookSpec:
    provider: str
    signature_header: str
    topics: frozenset[str]
    secrets_from_env: Callable[[Mapping[str, str]], list[str]]
    verify: Callable[[bytes, str | None, Sequence[str]], bool]
    account: Callable[[Headers], str | None]
    delivery_id: Callable[[Headers], str | None]
    topic: Callable[[Headers], str | None]
    triggered_at: Callable[[Headers], datetime | None]
    event_id: Callable[[Headers], str | None]
    kept_headers: Callable[[Headers], dict[str, str]]


SHOPIFY = WebhookSpec(
    provider=shopify.PROVIDER,
    signature_header=shopify.HMAC_HEADER,
    topics=frozenset(shopify.TOPICS),
    secrets_from_env=shopify.secrets_from_env,
    verify=shopify.verify,
    account=shopify.account,
    delivery_id=shopify.delivery_id,
    topic=shopify.topic,
    triggered_at=shopify.triggered_at,
    event_id=shopify.event_id,
    kept_headers=shopify.kept_headers,
)

PROVIDERS: dict[str, WebhookSpec] = {spec.provider: spec for spec in (SHOPIFY,)}
