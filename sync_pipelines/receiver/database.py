"""The receiver's road to the app database: a small pool behind a circuit breaker.

A provider waits a few seconds for its answer (5 s is common), so a database outage must cost a
delivery a fast 503 — which the provider retries — never the pool's whole wait. A connection has
to be had within `acquire_timeout` and the work done within `operation_timeout`; the first
failure to reach the database opens the breaker, and while it is open every request gets 503 at
once, without touching the pool. A probe tries to connect every `probe_interval`; when one
succeeds, the pool is replaced by a fresh one (psycopg_pool reconnects with an exponential
backoff, so after a long outage its own pool could take minutes to come back) and the breaker
closes. Nothing to restart.

Statement errors that are not about reaching the database (a unique violation, data PostgreSQL
refuses) pass through untouched: they are the caller's to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger("sync_pipelines.receiver")

# What "the database cannot be reached" looks like; TimeoutError is our own operation deadline.
UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, TimeoutError)


T = TypeVar("T")


class Unavailable(Exception):
    """The database cannot be reached now (or the breaker is open); answer 503."""


class DatabaseGate:
    """One connection pool, its deadlines, and the breaker that answers for it during an outage."""

    def __init__(self, url: str, *, max_size: int = 10, acquire_timeout: float = 0.5,
                 operation_timeout: float = 0.8, probe_interval: float = 0.5,
                 prepare: Callable[[str], None] | None = None, name: str = "webhook-receiver"):
        self.url = url
        self.max_size = max_size
        self.acquire_timeout = acquire_timeout
        self.operation_timeout = operation_timeout
        self.probe_interval = probe_interval
        self.name = name
        self._prepare = prepare  # run once, in a thread, before the first pool serves (e.g. DDL)
        self._prepared = prepare is None
        self._pool: AsyncConnectionPool | None = None
        self._lock = asyncio.Lock()
        self._open_since: float | None = None  # the breaker: None when closed
        self._probe: asyncio.Task | None = None
        self._retired: set[asyncio.Task] = set()

    @property
    def is_open(self) -> bool:
        return self._open_since is not None

    def _new_pool(self) -> AsyncConnectionPool:
        return AsyncConnectionPool(self.url, min_size=1, max_size=self.max_size, open=False,
                                   timeout=self.acquire_timeout, kwargs={"autocommit": True}, name=self.name)

    async def start(self, open_timeout: float = 30.0) -> None:
        """Prepare and open the pool once (from the lifespan, or on first use when it is off)."""
        async with self._lock:
            if self._pool is None:
                await self._prepare_once()
                pool = self._new_pool()
                try:
                    await pool.open(wait=True, timeout=open_timeout)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool

    async def _prepare_once(self) -> None:
        if not self._prepared:
            await asyncio.to_thread(self._prepare, self.url)
            self._prepared = True

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        for task in list(self._retired):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 2.0)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def run(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]], timeout: float | None = None) -> T:
        """`await work(connection)` on a pooled autocommit connection, within `timeout` seconds
        (default `operation_timeout`), acquiring included; raises `Unavailable` at once when the
        database cannot be reached (breaker open) and within the deadline when it stops answering.

        The work runs in its own task: psycopg, cancelled mid-query, first tries to cancel the
        query on the server and waits for that — seconds when the server is silent — so on the
        deadline the task is left to clean up in the background and the caller answers now.
        """
        if self._open_since is not None:
            raise Unavailable("circuit_open")
        task = asyncio.get_running_loop().create_task(self._run(work))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout or self.operation_timeout)
        except TimeoutError as error:
            task.cancel()
            self._retired.add(task)
            task.add_done_callback(self._forget)
            self._trip(error)
            raise Unavailable("timeout") from error

    async def _run(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        try:
            if self._pool is None:
                await self.start()
            async with self._pool.connection(timeout=self.acquire_timeout) as aconn:
                return await work(aconn)
        except UNREACHABLE as error:
            self._trip(error)
            raise Unavailable(type(error).__name__) from error

    def _forget(self, task: asyncio.Task) -> None:
        self._retired.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned task's error is expected, not "never retrieved"

    def _trip(self, error: BaseException) -> None:
        if self._open_since is not None:
            return
        self._open_since = time.monotonic()
        log.warning("database unreachable (%s): answering 503 until a probe connects again", type(error).__name__)
        self._probe = asyncio.get_running_loop().create_task(self._probe_until_reachable())

    async def _probe_until_reachable(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            fresh = self._new_pool()
            try:
                async with asyncio.timeout(max(2.0, self.operation_timeout)):
                    await fresh.open(wait=True)
                    async with fresh.connection() as aconn:
                        await aconn.execute("SELECT 1")
                    await self._prepare_once()  # when the database was down from the start
            except (*UNREACHABLE, OSError) as error:
                log.debug("database probe failed: %s", type(error).__name__)
                await fresh.close()
                continue
            break
        old, self._pool = self._pool, fresh
        outage = time.monotonic() - (self._open_since or time.monotonic())
        self._open_since = None
        self._probe = None
        log.warning("database reachable again after %.1f s: accepting deliveries", outage)
        if old is not None:  # its connections are likely broken; close it without waiting on them
            task = asyncio.get_running_loop().create_task(old.close(timeout=1.0))
            self._retired.add(task)
            task.add_done_callback(self._forget)
