"""Counting refused requests without letting a flood of them reach the database.

A forged request costs the sender nothing, so it must cost us little: each rejection is added to
an in-memory tally per (provider, reason, account, hour), and one writer at a time upserts the
tallies (`inbox.record_rejections_async`). When nothing is being written, the request that starts
a write waits for it, so at a trickle a refusal is counted before its answer leaves; under a flood
the refusals arriving during a write join the next batch, written `min_interval` later — one
connection and a few rows per batch however fast they come. While the database is unreachable
the tallies wait in memory (a bounded number of keys) and the writer retries every
`min_interval` until they are written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sync_pipelines.core import inbox
from sync_pipelines.receiver.database import DatabaseGate

log = logging.getLogger("sync_pipelines.receiver")

MAX_PENDING_KEYS = 10_000  # (provider, reason, account, hour) tallies held while the database is away


class RejectionRecorder:
    def __init__(self, db: DatabaseGate, *, min_interval: float = 0.25):
        self.db = db
        self.min_interval = min_interval
        self._pending: dict[inbox.RejectionKey, inbox.RejectionTally] = {}
        self._writer: asyncio.Task | None = None
        self._stopping = False
        self.dropped = 0  # rejections not counted because too many distinct keys were pending

    def add(self, provider: str, reason: str, account: str | None) -> None:
        now = datetime.now(UTC)
        key = inbox.rejection_key(provider, reason, account, now)
        tally = self._pending.get(key)
        if tally is None:
            if len(self._pending) >= MAX_PENDING_KEYS:
                self.dropped += 1
                return
            tally = self._pending[key] = inbox.RejectionTally()
        tally.add(now)

    async def record(self, provider: str, reason: str, account: str | None) -> None:
        """Count one rejection; waits only when it starts a write (see the module docstring)."""
        self.add(provider, reason, account)
        if self._writer is not None and not self._writer.done():
            return
        first_written = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_while_pending(first_written))
        await first_written.wait()

    async def _write_while_pending(self, first_written: asyncio.Event) -> None:
        """Write batches while refusals keep coming; while the database is away, retry every
        `min_interval` (the gate fails fast then), warning once per outage."""
        failing = False
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                written = await self._write(batch, warn=not failing)
                first_written.set()
                if not written and self._stopping:
                    return
                failing = not written
                if self._pending:
                    await asyncio.sleep(self.min_interval)
        finally:
            first_written.set()

    async def _write(self, batch: dict[inbox.RejectionKey, inbox.RejectionTally], *, warn: bool = True) -> bool:
        try:
            await self.db.run(lambda aconn: inbox.record_rejections_async(aconn, batch))
        except Exception as error:  # the answers matter more than the counts: keep them for later
            for key, tally in batch.items():
                merged = self._pending.setdefault(key, inbox.RejectionTally())
                merged.count += tally.count
                merged.samples = (tally.samples + merged.samples)[:inbox.REJECTION_SAMPLES]
            if warn:
                log.warning("rejections kept in memory until the database answers (%s)", type(error).__name__)
            return False
        by_reason: dict[str, int] = {}
        for (provider, reason, _, _), tally in batch.items():
            by_reason[f"{provider} {reason}"] = by_reason.get(f"{provider} {reason}", 0) + tally.count
        log.info("recorded rejected requests (%s)", ", ".join(f"{k}: {n}" for k, n in sorted(by_reason.items())))
        return True

    async def flush(self) -> None:
        """Write what is pending now, once (at shutdown)."""
        self._stopping = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._pending:
            batch, self._pending = self._pending, {}
            await self._write(batch)
