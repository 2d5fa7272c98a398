"""The webhook receiver: verify, de-duplicate, store in the inbox, answer — in milliseconds.

No Dagster here (sensors read the inbox). A delivery is checked in the order that costs least and
trusts least first: size, signature on the raw bytes, then headers, topic, account and JSON. It is
appended to `sync.inbox` before the 200, so a 200 always means "stored"; a repeated delivery id
answers 200 too, so the provider stops retrying. Rejections are counted by reason and answered
with `{"error": reason}` only (counted in bulk: `rejections.py`). Database trouble answers 503
within a second (`database.py`), which providers retry.

`POST /triggers/<job>` is the same pipeline for signed external triggers (QStash or a bearer
token, rules in `triggers.py`): an allow-listed job, a verified request (else 401, whatever the
reason), one inbox row per job and message id, each signed token accepted once (202 when new, 200
"duplicate" for a retry or a replayed token); the
`external_triggers_sensor` launches the run.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import sync_pipelines.defs
from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables, resolve_database_url
from sync_pipelines.core.registry import INTEGRATIONS
from sync_pipelines.core.providers import TriggerDeclaration, discover_triggers
from sync_pipelines.core.webhooks import WebhookDeclaration, WebhookRequest, discover_webhooks
from sync_pipelines.receiver import triggers
from sync_pipelines.receiver.database import DatabaseGate, Unavailable
from sync_pipelines.receiver.health import check_dagster
from sync_pipelines.receiver.rejections import RejectionRecorder

log = logging.getLogger("sync_pipelines.receiver")

NEGATIVE_CACHE_SECONDS = 5.0  # an account connected a moment ago is accepted soon after
MAX_CACHED_ACCOUNTS = 10_000
HEALTH_TIMEOUT_SECONDS = 2.0  # /health may wait a little longer than a delivery: it is a probe
MAX_KEY_CHARS = 255  # account, delivery id, topic: indexed columns, and PostgreSQL caps index rows
_ACTIVE_ACCOUNT = "SELECT active FROM sync.integrations WHERE provider = %s AND account = %s"


class Rejected(Exception):
    def __init__(self, status: int, reason: str, account: str | None = None, detail: str | None = None):
        super().__init__(reason)
        self.status, self.reason, self.account, self.detail = status, reason, account, detail


class ReceiverState:
    """The database gate, the rejection counter and the active-account cache, one per event loop."""

    def __init__(self, database_url: str, secrets: Mapping[str, list[str]], account_cache_seconds: float,
                 db_options: Mapping[str, float] | None = None):
        self.database_url = database_url
        self.secrets = secrets
        self.account_cache_seconds = account_cache_seconds
        self.db = DatabaseGate(database_url, prepare=_ensure_tables, **(db_options or {}))
        self.rejections = RejectionRecorder(self.db)
        self._accounts: dict[tuple[str, str], tuple[bool, float]] = {}

    async def start(self) -> None:
        """Ensure tables and open the pool (from the lifespan, or on first use if lifespan is off)."""
        await self.db.start()

    async def stop(self) -> None:
        await self.rejections.flush()
        await self.db.stop()

    async def account_active(self, provider: str, account: str) -> bool:
        """Is `account` an active account of `provider`? Cached; "no" for a shorter time."""
        key = (provider, account)
        now = time.monotonic()
        cached = self._accounts.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        async def read(aconn: psycopg.AsyncConnection):
            return await (await aconn.execute(_ACTIVE_ACCOUNT, key)).fetchone()

        row = await self.db.run(read)
        active = bool(row and row[0])
        ttl = self.account_cache_seconds if active else min(self.account_cache_seconds, NEGATIVE_CACHE_SECONDS)
        if len(self._accounts) >= MAX_CACHED_ACCOUNTS:
            self._accounts.clear()
        self._accounts[key] = (active, now + ttl)
        return active

    async def record_rejection(self, provider: str, reason: str, account: str | None) -> None:
        log.debug("rejected %s request: %s", provider, reason)  # counted; a flood must not flood the log
        await self.rejections.record(provider, reason, account)


def _ensure_tables(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
        ensure_tables(conn, [*inbox.TABLES, INTEGRATIONS])


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        too_large = int(declared) > limit
    except ValueError:
        raise Rejected(400, "bad_content_length") from None
    if too_large:
        raise Rejected(413, "too_large")


async def _read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refusing more than `limit` bytes even when no Content-Length was sent."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: Python accepts them, PostgreSQL does not


def _json_object_text(body: bytes, account: str | None) -> str:
    try:
        text = body.decode("utf-8")
        parsed = json.loads(text, parse_constant=_reject_constant)
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        raise Rejected(400, "malformed_json", account) from None
    except RecursionError:  # nested deeper than the interpreter's recursion limit (~1,000 levels)
        raise Rejected(400, "too_deep", account) from None
    if not isinstance(parsed, dict):
        raise Rejected(400, "malformed_json", account)
    if "\\u0000" in text.lower():
        # jsonb cannot hold U+0000; refusing would lose the delivery for good (the provider
        # retries, then drops the subscription), so the character becomes U+FFFD, as in text.
        try:
            cleaned = _without_nul(parsed)
            if cleaned != parsed:
                log.warning("delivery%s: U+0000 replaced by U+FFFD", f" for {account}" if account else "")
                return json.dumps(cleaned, ensure_ascii=False)
        except RecursionError:  # parsed just under the limit, but walking it again goes deeper
            raise Rejected(400, "too_deep", account) from None
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


async def _accept(state: ReceiverState, spec: WebhookDeclaration, request: Request,
                  max_body_bytes: int) -> JSONResponse:
    secrets = state.secrets[spec.provider]
    if not secrets:
        raise Rejected(503, "not_configured")  # retried by the provider once a secret is set
    headers = request.headers
    path = _path_segments(request, spec)
    _check_declared_length(request, max_body_bytes)
    if spec.authenticate is None:
        signature = headers.get(spec.signature_header)
        if not signature:
            raise Rejected(401, "missing_signature")
    body = await _read_capped(request, max_body_bytes)
    incoming = WebhookRequest(headers=headers, body=body, path=path, query=dict(request.query_params))
    if spec.authenticate is not None:
        if not spec.authenticate(incoming, secrets):  # a token in the URL, compared in constant time
            raise Rejected(401, "bad_token")
    elif not spec.verify(body, signature, secrets):  # on the raw bytes, before any parsing
        raise Rejected(401, "bad_signature")
    try:
        facts = spec.facts(incoming)
    except ValueError:
        raise Rejected(400, "malformed_body") from None
    account, delivery_id, topic = facts.account, facts.delivery_id, facts.topic
    if not (account and delivery_id and topic):
        raise Rejected(400, "missing_headers", account)
    if len(account) > MAX_KEY_CHARS:  # over-long keys would fail the insert (503) and be retried forever
        raise Rejected(400, "bad_account")
    if len(delivery_id) > MAX_KEY_CHARS:
        raise Rejected(400, "bad_delivery_id", account)
    if len(topic) > MAX_KEY_CHARS:
        raise Rejected(400, "bad_topic", account)
    if topic not in spec.topics:
        raise Rejected(400, "unknown_topic", account)
    if not await state.account_active(spec.provider, account):
        raise Rejected(403, "unknown_account", account)
    payload = _json_object_text(body if facts.payload is None else facts.payload, account)
    store = functools.partial(
        inbox.append_async, provider=spec.provider, account=account, topic=topic, delivery_id=delivery_id,
        payload=payload, triggered_at=facts.triggered_at, event_id=facts.event_id,
        headers=dict(facts.kept_headers),
    )
    try:
        inbox_id, is_new = await state.db.run(store)
    except psycopg.DataError:  # valid JSON that jsonb refuses, e.g. a \u0000 escape
        raise Rejected(400, "unstorable_json", account) from None
    return JSONResponse({"status": "accepted" if is_new else "duplicate", "id": inbox_id})


def _path_segments(request: Request, spec: WebhookDeclaration) -> tuple[str, ...]:
    """The URL segments after `/webhooks/<provider>/`, as many as the provider declares."""
    rest = request.path_params.get("rest", "")
    segments = tuple(part for part in rest.split("/") if part) if rest else ()
    if len(segments) > spec.path_segments or any(len(part) > MAX_KEY_CHARS for part in segments):
        raise Rejected(404, "unknown_path")
    return segments


async def _accept_trigger(state: ReceiverState, config: triggers.TriggerConfig, job: str, request: Request,
                          max_body_bytes: int, declaration: TriggerDeclaration | None = None) -> JSONResponse:
    """Verify a trigger and store it; the sensor launches the run. 202 new, 200 duplicate."""
    _check_declared_length(request, max_body_bytes)
    body = await _read_capped(request, max_body_bytes)
    url = config.url_for(request.url.path, request.url.query)
    verdict = triggers.authenticate(request.headers, body, url, config)
    if not verdict.ok:  # unauthenticated is 401 even when our configuration is missing (startup warns)
        raise Rejected(401, verdict.reason)
    message_id = verdict.message_id or str(uuid.uuid4())
    if len(message_id) > triggers.MAX_ID_CHARS:
        raise Rejected(400, "bad_delivery_id")
    delivery_id = f"{job}:{message_id}"  # per job: one Idempotency-Key sent to two jobs is two triggers
    payload = _json_object_text(body, None) if body.strip() else "{}"
    if declaration is not None and declaration.parse_body is not None:
        try:  # the caller learns now, not from a run that never starts
            declaration.parse_body(json.loads(payload))
        except ValueError as error:
            raise Rejected(400, "invalid_body", detail=str(error)[:500]) from None
    delivery = dict(provider=triggers.PROVIDER, account=job, topic=triggers.TOPIC, delivery_id=delivery_id,
                    payload=payload, triggered_at=verdict.issued_at, event_id=verdict.token_id,
                    headers=triggers.kept_headers(request.headers, verdict.source))

    async def store(aconn: psycopg.AsyncConnection) -> tuple[int | None, bool, bool]:
        if verdict.token_id is not None:  # a signed token (retries included) is accepted once
            return await inbox.append_once_per_token_async(
                aconn, token_id=verdict.token_id, expires_at=verdict.expires_at, **delivery)
        return (*await inbox.append_async(aconn, **delivery), False)

    try:
        inbox_id, is_new, replayed = await state.db.run(store)
    except psycopg.errors.UniqueViolation:
        # A token stored as an inbox row's event id before tokens were recorded on their own.
        inbox_id = await state.db.run(
            functools.partial(inbox.find_by_event_id_async, provider=triggers.PROVIDER, event_id=verdict.token_id))
        replayed = True
    except psycopg.DataError:
        raise Rejected(400, "unstorable_json") from None
    if replayed:  # the same signed token again, under whatever message id: launch nothing
        log.warning("trigger for %s: signed token replayed", job)
        return JSONResponse({"status": "duplicate", "id": inbox_id})
    if is_new:
        log.info("trigger for %s accepted (%s, inbox id %s)", job, verdict.source, inbox_id)
        return JSONResponse({"status": "accepted", "id": inbox_id}, status_code=202)
    return JSONResponse({"status": "duplicate", "id": inbox_id})


async def _answer(state: ReceiverState, provider: str, accept: Awaitable[JSONResponse]) -> JSONResponse:
    """Run an accept step and turn its refusals into answers (rejections are counted)."""
    try:
        return await accept
    except Rejected as rejected:
        await state.record_rejection(provider, rejected.reason, rejected.account)
        answer = {"error": rejected.reason, **({"detail": rejected.detail} if rejected.detail else {})}
        return JSONResponse(answer, status_code=rejected.status)
    except Unavailable:  # the gate logged the outage once; a 503 per request is expected meanwhile
        return JSONResponse({"error": "unavailable"}, status_code=503)
    except ClientDisconnect:
        return JSONResponse({"error": "client_disconnected"}, status_code=400)


def create_app(
    database_url: str | None = None,
    *,
    max_body_bytes: int = 1_048_576,
    account_cache_seconds: float = 30.0,
    environ: Mapping[str, str] = os.environ,
    defs_package: ModuleType = sync_pipelines.defs,
    db_options: Mapping[str, float] | None = None,
) -> Starlette:
    """The receiver app; secrets are read from `environ` now, the database is opened at startup.

    `/webhooks/<provider>` serves every provider whose folder in `defs_package` declares
    its webhooks (a `WebhookDeclaration` in its `webhooks.py`); nothing here names a provider.

    `db_options` tunes the database gate (`database.DatabaseGate`: `acquire_timeout`,
    `operation_timeout`, `probe_interval`, `max_size`); the pool size also comes from
    `SYNC_RECEIVER_DB_POOL_SIZE` (10, per worker process).

    `/health` also reads Dagster's storage (`DAGSTER_PG_*`) for daemon heartbeats, and is unhealthy
    when a delivery has waited longer than `SYNC_INBOX_MAX_AGE_SECONDS` (900).

    Triggers read `SYNC_AUTH_TOKEN`, `QSTASH_CURRENT_SIGNING_KEY`, `QSTASH_NEXT_SIGNING_KEY`,
    `SYNC_RECEIVER_PUBLIC_URL` (required for QStash) and `SYNC_TRIGGER_JOBS` (default
    `replication_sync`) from `environ`.
    """
    started_at = time.monotonic()
    max_inbox_age = float(environ.get("SYNC_INBOX_MAX_AGE_SECONDS", "900"))
    declared = discover_webhooks(defs_package)
    state = ReceiverState(
        resolve_database_url(database_url),
        {name: spec.secrets_from_env(environ) for name, spec in declared.items()},
        account_cache_seconds,
        {"max_size": int(environ.get("SYNC_RECEIVER_DB_POOL_SIZE", "10")), **(db_options or {})},
    )
    for name, secrets in state.secrets.items():
        if not secrets:
            log.warning("no webhook secret configured for %s: its deliveries get 503", name)
    declared_triggers = discover_triggers(defs_package)
    trigger_config = triggers.TriggerConfig.from_env(environ, sorted(declared_triggers))
    if not (trigger_config.bearer_token or trigger_config.signing_keys):
        log.warning("no trigger credentials configured (%s, %s): triggers get 401",
                    triggers.BEARER_TOKEN_ENV, triggers.QSTASH_CURRENT_KEY_ENV)
    elif trigger_config.signing_keys and not trigger_config.public_url:
        log.warning("QStash signing keys are set but %s is not: QStash triggers get 401 (the URL QStash"
                    " signed cannot be checked)", triggers.PUBLIC_URL_ENV)

    async def webhook(request: Request) -> JSONResponse:
        spec = declared.get(request.path_params["provider"])
        if spec is None:
            return JSONResponse({"error": "unknown_provider"}, status_code=404)
        return await _answer(state, spec.provider, _accept(state, spec, request, max_body_bytes))

    async def probe(request: Request) -> JSONResponse:
        """A provider checking, on activation, that its delivery URL is reachable (says nothing more)."""
        spec = declared.get(request.path_params["provider"])
        if spec is None or not spec.answers_probe:
            return JSONResponse({"error": "unknown_provider"}, status_code=404)
        return JSONResponse({"status": "ok"})

    async def trigger(request: Request) -> JSONResponse:
        job = request.path_params["job"]
        if job not in trigger_config.jobs:
            return JSONResponse({"error": "unknown_job"}, status_code=404)
        return await _answer(state, triggers.PROVIDER,
                             _accept_trigger(state, trigger_config, job, request, max_body_bytes,
                                             declared_triggers.get(job)))

    async def health(request: Request) -> JSONResponse:
        begun = time.perf_counter()
        checks: dict = {}
        try:
            async def probe(aconn: psycopg.AsyncConnection) -> dict:
                await aconn.execute("SELECT 1")
                checks["database"] = {"status": "ok", "response_ms": round((time.perf_counter() - begun) * 1000, 2)}
                return await inbox.backlog_async(aconn)

            backlog = await state.db.run(probe, timeout=HEALTH_TIMEOUT_SECONDS)
            oldest = backlog.get("oldest_pending_age_seconds") or 0
            checks["inbox"] = {"status": "ok" if oldest <= max_inbox_age else "error", **backlog}
        except Unavailable as error:
            checks["database"] = {"status": "error", "error": str(error)}
        except Exception as error:
            checks["database"] = {"status": "error", "error": type(error).__name__}
        checks["dagster"] = await check_dagster(environ)
        healthy = all(c["status"] in ("ok", "not_configured") for c in checks.values())
        return JSONResponse(
            {"status": "healthy" if healthy else "unhealthy", "timestamp": datetime.now(UTC).isoformat(),
             "uptime": round(time.monotonic() - started_at, 1),
             "response_ms": round((time.perf_counter() - begun) * 1000, 2), "checks": checks},
            status_code=200 if healthy else 503,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = Starlette(
        routes=[
            Route("/webhooks/{provider}", webhook, methods=["POST"]),
            Route("/webhooks/{provider}", probe, methods=["GET"]),
            Route("/webhooks/{provider}/{rest:path}", webhook, methods=["POST"]),
            Route("/webhooks/{provider}/{rest:path}", probe, methods=["GET"]),
            Route("/triggers/{job}", trigger, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.receiver = state
    return app
