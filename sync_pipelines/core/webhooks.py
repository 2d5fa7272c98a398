"""A provider's webhooks, declared completely in one value the receiver and Dagster both read.

Each provider's pure `webhooks.py` exports one `WebhookDeclaration`: how deliveries are signed
and verified, where the secrets come from, where the account, delivery id, topic, trigger time
and event id are, which headers are kept, and the topic map (topic → `TopicRoute`: the table and
asset its payloads update, upsert or soft delete). The receiver discovers the declarations
(`discover_webhooks`) and never names a provider; the provider's Dagster half builds its apply
job and its subscriptions from the same topic map. Free of Dagster.
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
class TopicRoute:
    """Where one topic's payloads go: upserted into `table` (newer wins), or, with `delete`, the
    record with the payload's `id_path` soft-deleted; `asset` is the asset key they update."""

    table: sa.Table
    asset: tuple[str, ...]
    delete: bool = False
    id_path: str = "id"

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
    signature_header: str
    secrets_from_env: Callable[[Mapping[str, str]], list[str]]
    verify: Callable[[bytes, str | None, Sequence[str]], bool]
    account: Callable[[Headers], str | None]
    delivery_id: Callable[[Headers], str | None]
    topic: Callable[[Headers], str | None]
    triggered_at: Callable[[Headers], datetime | None]
    event_id: Callable[[Headers], str | None]
    kept_headers: Callable[[Headers], dict[str, str]]
    routes: Mapping[str, TopicRoute]
    topics: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.provider == TRIGGER_PROVIDER:
            raise ValueError(f"{TRIGGER_PROVIDER!r} is reserved for external triggers")
        if not self.routes:
            raise ValueError(f"{self.provider}: a webhook declaration needs at least one topic")
        for name in ("secrets_from_env", "verify", "account", "delivery_id", "topic", "triggered_at",
                     "event_id", "kept_headers"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{self.provider}: {name} must be callable")
        for topic, route in self.routes.items():
            if not isinstance(route, TopicRoute):
                raise TypeError(f"{self.provider}: topic {topic!r} must map to a TopicRoute, not {route!r}")
        object.__setattr__(self, "routes", MappingProxyType(dict(self.routes)))
        object.__setattr__(self, "topics", tuple(self.routes))


def discover_webhooks(package: ModuleType) -> dict[str, WebhookDeclaration]:
    """The webhook declarations of `package`'s subpackages (their `webhooks.py`), by provider."""
    return discover(package, "webhooks", WebhookDeclaration, name=lambda d: d.provider)
