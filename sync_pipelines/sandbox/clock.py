"""The sandboxes' settable clock: real time unless a test or a control call sets it.

Mixed into a sandbox's control class; the sandbox's `__init__` calls `_init_clock()`. Days,
partial "today" numbers, token expiry and timestamps all read `now()`, so a test can freeze a
sandbox at a chosen instant or move it forward.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime


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
