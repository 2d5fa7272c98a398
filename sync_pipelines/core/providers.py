"""How a provider makes itself known: small pure declarations, found by scanning a package.

Each provider folder (`sync_pipelines/defs/<provider>/`) may hold modules of declarations that
import no Dagster: `provider.py` exports a `ProviderDeclaration` (its name and the rules core
needs about its accounts), `webhooks.py` a `core.webhooks.WebhookDeclaration`. The CLI and the
receiver call `discover(package, module, kind)` with the `defs` package *they* pass in, so core
never names (or imports) a provider, and adding a provider is adding its folder.

A provider with no `ProviderDeclaration` takes no accounts (e.g. a copy of a source database: its
runs carry a `sync/provider` tag, but nothing is registered for it).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TypeVar

T = TypeVar("T")

# The inbox's provider for external triggers (`POST /triggers/<job>`): written by the receiver,
# read by core's trigger sensor. No provider may declare this name.
TRIGGER_PROVIDER = "trigger"


def _as_typed(account: str) -> str:
    return account


@dataclass(frozen=True)
class ProviderDeclaration:
    """A provider whose connected accounts the registry holds (what `accounts add` accepts).

    `normalise_account` is how an account id is stored and looked up, e.g. `str.lower` for
    hostnames the provider's webhooks send in any case; the registry applies it whenever it is
    handed this declaration.
    """

    name: str
    normalise_account: Callable[[str], str] = field(default=_as_typed)
    description: str = ""
    schedules: Mapping[str, str] = field(default_factory=dict, hash=False)
    """What → UTC cron of the fixed schedules that sync every account, when the provider has
    them; empty when each account's registry `cadence` picks its schedule. `accounts list` and
    `accounts add` show what really drives an account from this."""

    automation: bool = False
    """An automation sensor honours each account's cadence (and lookback) besides the fixed
    `schedules` (the ad platforms: a 5-minute worker plus a nightly sync)."""

    def drives(self, cadence: str) -> str:
        """What launches an account's syncs: its cadence, the provider's fixed schedules, or both."""
        fixed = ", ".join(f"{what} {describe_cron(cron)}" for what, cron in self.schedules.items())
        if not self.schedules:
            return cadence
        if self.automation:
            return f"automation {cadence} + {fixed}"
        return "schedules: " + fixed

    @property
    def takes_cadence(self) -> bool:
        """Whether an account's registry cadence decides anything (else `--cadence` is refused)."""
        return not self.schedules or self.automation

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum() or self.name != self.name.lower():
            raise ValueError(f"provider name must be lowercase letters, digits and '_': {self.name!r}")
        if self.name == TRIGGER_PROVIDER:
            raise ValueError(f"{TRIGGER_PROVIDER!r} is reserved for external triggers")
        if not callable(self.normalise_account):
            raise TypeError(f"{self.name}: normalise_account must be callable")


def describe_cron(cron: str) -> str:
    """A few words for the crons schedules use (`*/15 * * * *` → `every 15 min`), else the cron."""
    fields = cron.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"]:
        return cron
    minute, hour = fields[:2]
    if minute.startswith("*/") and hour == "*":
        return f"every {minute[2:]} min"
    if minute == "0" and hour == "*":
        return "hourly"
    if minute == "0" and hour.startswith("*/"):
        return f"every {hour[2:]} h"
    if minute.isdigit() and hour.isdigit():
        return f"daily {int(hour):02d}:{int(minute):02d} UTC"
    return cron


def declared_modules(package: ModuleType, module: str) -> list[ModuleType]:
    """`<package>.<sub>.<module>` for every subpackage that has one, in name order.

    A subpackage without the module is skipped; an error raised while importing one that exists
    is not (a broken declaration must fail loudly, not make its provider vanish).
    """
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        name = f"{package.__name__}.{info.name}.{module}"
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


def discover(package: ModuleType, module: str, kind: type[T], *, name: Callable[[T], str]) -> dict[str, T]:
    """Every `kind` instance the `module` modules of `package`'s subpackages export, by `name`.

    Two declarations of one name are an error (which one would win is an accident of order).
    """
    found: dict[str, T] = {}
    for declared in declared_modules(package, module):
        for value in vars(declared).values():
            if not isinstance(value, kind):
                continue
            key = name(value)
            if key in found and found[key] is not value:
                raise ValueError(f"two {kind.__name__}s for {key!r} (the second in {declared.__name__})")
            found[key] = value
    return found


def discover_providers(package: ModuleType) -> dict[str, ProviderDeclaration]:
    """The providers that take accounts: each subpackage's `provider.py` declaration."""
    return discover(package, "provider", ProviderDeclaration, name=lambda p: p.name)


@dataclass(frozen=True)
class TriggerDeclaration:
    """A job that `POST /triggers/<job>` may start (a folder's `triggers.py`), and how its JSON body
    becomes the run's config: `parse_body(body)` returns the run config or raises ValueError with a
    message for the caller (the receiver answers 400 with it); None: the body is not used."""

    job: str
    parse_body: Callable[[object], dict] | None = field(default=None, hash=False)
    description: str = ""


def discover_triggers(package: ModuleType) -> dict[str, TriggerDeclaration]:
    """Every job a folder's `triggers.py` lets external triggers start, by job name."""
    return discover(package, "triggers", TriggerDeclaration, name=lambda t: t.job)


def unknown_provider_message(name: str, known: dict[str, ProviderDeclaration]) -> str:
    listed = ", ".join(sorted(known)) or "none"
    return f"unknown provider {name!r}: accounts can be added for {listed}"


@dataclass(frozen=True)
class RetentionDeclaration:
    """A provider's own history rows (e.g. an activity log) that the daily cleanup deletes once
    older than `days` (overridable in the cleanup run's config by `name`); a folder's `retention.py`."""

    name: str
    table: object  # an sa.Table (kept untyped: this module imports no SQLAlchemy)
    timestamp_column: str
    days: int = 30
    description: str = ""

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"{self.name}: retention must be at least one day")


def discover_retention(package: ModuleType) -> dict[str, RetentionDeclaration]:
    """Every history table a folder's `retention.py` asks the daily cleanup to trim, by name."""
    return discover(package, "retention", RetentionDeclaration, name=lambda r: r.name)
