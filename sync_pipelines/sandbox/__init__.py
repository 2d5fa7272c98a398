"""Local emulators of provider APIs, so the pipelines can be run and tested offline.

Test/dev tooling only: production code must never import this package. Re-exports are
lazy so ``python -m sync_pipelines.sandbox.server`` doesn't import its module twice.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FAULT_KINDS": "faults",
    "Faults": "faults",
    "LeakyBucket": "ratelimit",
    "ProviderSandbox": "base",
    "RateDecision": "ratelimit",
    "RateLimiter": "ratelimit",
    "RunningServer": "server",
    "serve_in_thread": "server",
    "ShipStationSandbox": "shipstation",
    "StoreData": "shipstation",
    "ShopifySandbox": "shopify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
