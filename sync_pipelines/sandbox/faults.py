"""Fault injection, so client retry/parse paths get exercised without a flaky network.

Two mechanisms: probabilistic rates (seeded, for soak runs) and deterministic bursts
queued with ``fail_next`` (for tests that need "exactly the next N requests fail").
Bursts are consumed before the rates are consulted.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import deque
from typing import Any, Callable

FAULT_KINDS = ("429", "500", "503", "truncated", "invalid_json")

_RATE_KNOBS = ("rate_5xx", "rate_429", "rate_truncated_json", "rate_invalid_json")


def unit_interval(name: str, value: Any) -> float:
    """A probability knob: a float within [0, 1], or a ValueError naming the knob."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value}")
    return value


def at_least(name: str, value: Any, lo: int, cast: Callable[[Any], Any] = float) -> Any:
    """A knob cast by ``cast`` (float, int) and >= ``lo``, or a ValueError naming the knob."""
    value = cast(value)
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return value


class Faults:
    """Thread-safe: request handlers and the control endpoint touch it concurrently."""

    def __init__(
        self,
        *,
        seed: int = 0,
        rate_5xx: float = 0.0,
        rate_429: float = 0.0,
        rate_truncated_json: float = 0.0,
        rate_invalid_json: float = 0.0,
        latency_ms: float = 0.0,
        retry_after_seconds: int = 1,
    ) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self._queue: deque[list[Any]] = deque()  # [kind, remaining]
        self.rate_5xx = 0.0
        self.rate_429 = 0.0
        self.rate_truncated_json = 0.0
        self.rate_invalid_json = 0.0
        self.latency_ms = 0.0
        self.retry_after_seconds = 1
        self.configure(
            rate_5xx=rate_5xx,
            rate_429=rate_429,
            rate_truncated_json=rate_truncated_json,
            rate_invalid_json=rate_invalid_json,
            latency_ms=latency_ms,
            retry_after_seconds=retry_after_seconds,
        )
        self.injected: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)

    def configure(self, **knobs: Any) -> None:
        """Validate everything before applying anything, so a bad control request is a no-op."""
        clean: dict[str, Any] = {}
        for name, value in knobs.items():
            if name in _RATE_KNOBS:
                value = unit_interval(name, value)
            elif name == "latency_ms":
                value = at_least(name, value, 0)
            elif name == "retry_after_seconds":
                value = at_least(name, value, 0, int)
            elif name == "seed":
                value = int(value)
            else:
                raise ValueError(f"unknown fault knob {name!r}")
            clean[name] = value
        with self._lock:
            for name, value in clean.items():
                if name == "seed":
                    self._seed = value
                    self._rng = random.Random(value)
                else:
                    setattr(self, name, value)

    def fail_next(self, kind: str, n: int = 1) -> None:
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        n = at_least("n", n, 0, int)
        if n:
            with self._lock:
                self._queue.append([kind, n])

    def reset(self) -> None:
        """Back to a healthy server (rates 0, no queued bursts, no latency)."""
        with self._lock:
            self._queue.clear()
            self.rate_5xx = self.rate_429 = 0.0
            self.rate_truncated_json = self.rate_invalid_json = 0.0
            self.latency_ms = 0.0
            self.retry_after_seconds = 1
            self._rng = random.Random(self._seed)

    def decide(self) -> str | None:
        """The fault for one request, or None for a normal response."""
        with self._lock:
            kind = self._decide_locked()
            if kind is not None:
                self.injected[kind] += 1
            return kind

    def _decide_locked(self) -> str | None:
        if self._queue:
            head = self._queue[0]
            head[1] -= 1
            if head[1] <= 0:
                self._queue.popleft()
            return head[0]
        if not (self.rate_429 or self.rate_5xx or self.rate_truncated_json or self.rate_invalid_json):
            return None  # don't advance the rng: keeps seeded runs reproducible across toggles
        draw = self._rng.random()
        edge = self.rate_429
        if draw < edge:
            return "429"
        edge += self.rate_5xx
        if draw < edge:
            return "500" if self._rng.random() < 0.5 else "503"
        edge += self.rate_truncated_json
        if draw < edge:
            return "truncated"
        edge += self.rate_invalid_json
        if draw < edge:
            return "invalid_json"
        return None

    async def delay(self) -> None:
        """Wait ``latency_ms`` (if set) before a request is handled."""
        latency = self.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)

    @staticmethod
    def corrupt(body: bytes, kind: str | None, garbage: bytes) -> bytes:
        """The response body as a ``truncated`` (first half) or ``invalid_json`` (``garbage``)
        fault sends it; ``body`` itself for any other outcome."""
        if kind == "truncated":
            return body[: len(body) // 2]
        if kind == "invalid_json":
            return garbage
        return body

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "rate_5xx": self.rate_5xx,
                "rate_429": self.rate_429,
                "rate_truncated_json": self.rate_truncated_json,
                "rate_invalid_json": self.rate_invalid_json,
                "latency_ms": self.latency_ms,
                "retry_after_seconds": self.retry_after_seconds,
                "seed": self._seed,
                "pending": [{"kind": k, "n": n} for k, n in self._queue],
                "injected": dict(self.injected),
            }

    def apply_control(self, body: dict[str, Any]) -> dict[str, Any]:
        """Body of ``POST /_sandbox/faults``: knobs, ``fail_next`` (one or a list), ``reset``."""
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        body = dict(body)
        if body.pop("reset", False):
            self.reset()
        fail_next = body.pop("fail_next", None)
        bursts = [] if fail_next is None else fail_next if isinstance(fail_next, list) else [fail_next]
        for burst in bursts:
            if not isinstance(burst, dict) or "kind" not in burst:
                raise ValueError('fail_next must look like {"kind": "429", "n": 5}')
            if str(burst["kind"]) not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {burst['kind']!r}; expected one of {FAULT_KINDS}")
        self.configure(**body)
        for burst in bursts:
            self.fail_next(str(burst["kind"]), int(burst.get("n", 1)))
        return self.snapshot()
