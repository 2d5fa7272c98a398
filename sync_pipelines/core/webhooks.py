"""A provider's webhooks, declared completely in one value the receiver and Dagster both read.

Each provider's pure `webhooks.py` exports one `WebhookDeclaration`: how deliveries are signed
and verified, where the secrets come from, where the account, delivery id, topic, trigger time
and event id are, which headers are kept, and the topic map (topic → `TopicRoute`: the table and
asset its payloads update, upsert or soft delete). The receiver discovers the declarations
(`discover_webhooks`) and never names a provider; the provider's Dagster half builds its apply
job and its subscriptions from the same topic map. Free of Dagster.

Providers differ in where a delivery's facts are. Shopify puts them all in headers (the header
callables). Others put some in the URL or the body: `read(request)` then returns them all from
the whole request (`WebhookRequest`: headers, raw body, URL path segments after the provider,
query), e.g. a delivery id hashed from the body, or a payload wrapped in base64. A provider that
signs nothing is protected by a per-account token in the URL, checked by `authenticate(request,
secrets)` in constant time instead of `verify`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType, ModuleType

import sqlalchemy as sa

from sync_pipelines.core.providers import TRIGGER_PROVIDER, discover

Headers = Mapping[str, str]


@dataclass(frozen=True)
class WebhookRequest:
    """What the receiver hands a declaration's `read` / `authenticate`: nothing parsed yet."""

    headers: Headers
    body: bytes
    path: tuple[str, ...] = ()
    """URL path segments after `/webhooks/<provider>/` (e.g. the account and a token)."""
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryFacts:
    """A delivery's facts as `read` finds them; `payload` is the JSON text to store (None: the body)."""

    account: str | None
    delivery_id: str | None
    topic: str | None
    triggered_at: datetime | None = None
    event_id: str | None = None
    kept_headers: Mapping[str, str] = field(default_factory=dict)
    payload: bytes | None = None


def _absent(_headers: Headers) -> None:
    return None


def _nothing_kept(_headers: Headers) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class TopicRoute:
    """Where one topic's payloads go: upserted into `table` (newer wins), or, with `delete`, the
    record with the payload's `id_path` soft-deleted; `asset` is the asset key they update."""

    table: sa.Table
    asset: tuple[str, ...]
    delete: bool = False
    id_path: str = "id"
    apply: Callable[..., int] | None = None
    """For payloads that are not whole records (a status change): `apply(conn, account, payload,
    triggered_at)` writes one delivery inside the apply transaction and returns the rows it changed;
    raising ValueError sets the delivery aside. Unset: the payload is upserted into `table`."""

    @property
    def name(self) -> str:
        """Topics sharing a name are applied as one batch (orders/create, orders/paid → orders)."""
        return f"{self.asset[-1]}_delete" if self.delete else self.asset[-1]


@dataclass(frozen=True)
class WebhookDeclaration:
    """Everything the receiver needs to accept a provider's deliveries, and the topic map.

    The callables read request headers (any case) and return None when the value is absent.
    """

    provider: str
    secrets_from_env: Callable[[Mapping[str, str]], list[str]]
    routes: Mapping[str, TopicRoute]
    signature_header: str | None = None
    verify: Callable[[bytes, str | None, Sequence[str]], bool] | None = None
    account: Callable[[Headers], str | None] = _absent
    delivery_id: Callable[[Headers], str | None] = _absent
    topic: Callable[[Headers], str | None] = _absent
    triggered_at: Callable[[Headers], datetime | None] = _absent
    event_id: Callable[[Headers], str | None] = _absent
    kept_headers: Callable[[Headers], dict[str, str]] = _nothing_kept
    read: Callable[[WebhookRequest], DeliveryFacts] | None = None
    """Set when facts are in the URL or the body: replaces the header callables; raises ValueError
    for a body it cannot read (answered 400)."""
    authenticate: Callable[[WebhookRequest, Sequence[str]], bool] | None = None
    """Set for providers that sign nothing: checks a token (in the URL) against the secrets, in
    constant time; replaces `signature_header` + `verify`."""
    answers_probe: bool = False
    """Answer `GET` on the webhook URL with 200: providers that check it is reachable on activation."""
    path_segments: int = 0
    """How many URL segments may follow `/webhooks/<provider>/` (0: none)."""
    after_apply: Callable[..., Mapping[str, int]] | None = None
    """`after_apply(conn, accounts)`, called by the apply job after the deliveries of `accounts`
    committed (its own transaction), e.g. to assign new orders; returns counts for the run's log."""
    topics: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.provider == TRIGGER_PROVIDER:
            raise ValueError(f"{TRIGGER_PROVIDER!r} is reserved for external triggers")
        if not self.routes:
            raise ValueError(f"{self.provider}: a webhook declaration needs at least one topic")
        if self.authenticate is None and (self.signature_header is None or self.verify is None):
            raise ValueError(f"{self.provider}: declare signature_header and verify, or authenticate")
        for name in ("secrets_from_env", "account", "delivery_id", "topic", "triggered_at",
                     "event_id", "kept_headers"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{self.provider}: {name} must be callable")
        for name in ("verify", "read", "authenticate", "after_apply"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TypeError(f"{self.provider}: {name} must be callable")
        for topic, route in self.routes.items():
            if not isinstance(route, TopicRoute):
                raise TypeError(f"{self.provider}: topic {topic!r} must map to a TopicRoute, not {route!r}")
        object.__setattr__(self, "routes", MappingProxyType(dict(self.routes)))
        object.__setattr__(self, "topics", tuple(self.routes))

    def facts(self, request: WebhookRequest) -> DeliveryFacts:
        """The delivery's facts, from `read` or else the header callables."""
        if self.read is not None:
            return self.read(request)
        headers = request.headers
        return DeliveryFacts(account=self.account(headers), delivery_id=self.delivery_id(headers),
                             topic=self.topic(headers), triggered_at=self.triggered_at(headers),
                             event_id=self.event_id(headers), kept_headers=self.kept_headers(headers))


def discover_webhooks(package: ModuleType) -> dict[str, WebhookDeclaration]:
    """The webhook declarations of `package`'s subpackages (their `webhooks.py`), by provider."""
    return discover(package, "webhooks", WebhookDeclaration, name=lambda d: d.provider)
