"""The sandboxes' settable clock: real time unless a test or a control call sets it.

Mixed into a sandbox's control class; the sandbox's `__init__` calls `_init_clock()`. Days,
partial "today" numbers, token expiry and timestamps all read `now()`, so a test can freeze a
sandbox at a chosen instant or move it forward.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any


class SettableClock:
    def _init_clock(self) -> None:
        self._clock_lock = threading.Lock()
        self._frozen: float | None = None
        self._offset = 0.0

    def now(self) -> float:
        with self._clock_lock:
            return self._frozen if self._frozen is not None else time.time() + self._offset

    def set_clock(self, when: datetime | None, *, frozen: bool = True) -> None:
        """Freeze the clock at ``when`` (aware datetime) or, with ``frozen=False``, let it run from
        there; ``None`` goes back to the real clock."""
        with self._clock_lock:
            if when is None:
                self._frozen, self._offset = None, 0.0
            elif when.tzinfo is None:
                raise ValueError("set_clock needs an aware datetime")
            elif frozen:
                self._frozen, self._offset = when.timestamp(), 0.0
            else:
                self._frozen, self._offset = None, when.timestamp() - time.time()

    def advance(self, seconds: float) -> float:
        with self._clock_lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds
        return self.now()

    def _ctl_clock(self, request: Any, body: dict[str, Any]) -> dict[str, Any]:
        """`/_sandbox/<provider>/clock`: GET reads it; POST `{"now": ISO | null, "frozen": bool}`
        sets it (null or `"real": true`: the real clock), `{"advance_seconds": n}` moves it on
        (`set`/`advance` are accepted as older spellings)."""
        from sync_pipelines.sandbox.control import only_fields

        if request.method == "POST":
            only_fields(body, {"now", "set", "frozen", "advance_seconds", "advance", "real"})
            if body.get("real"):
                self.set_clock(None)
            for key in ("now", "set"):
                if key in body:
                    when = body[key]
                    try:
                        parsed = None if when is None else datetime.fromisoformat(str(when).replace("Z", "+00:00"))
                    except ValueError:
                        raise ValueError(f"{key} must be an ISO 8601 time with an offset, got {when!r}") from None
                    self.set_clock(parsed, frozen=bool(body.get("frozen", True)))
            for key in ("advance_seconds", "advance"):
                if body.get(key):
                    self.advance(float(body[key]))
        with self._clock_lock:
            frozen = self._frozen is not None
        return {"now": datetime.fromtimestamp(self.now(), UTC).isoformat(), "frozen": frozen}
