"""Who may start a job from outside, and how we know: pure functions (standard library and `core.headers`).

`POST /triggers/<job>` is authenticated one of two ways:

* **QStash** (Upstash's scheduler): when an `Upstash-Signature` header is present, it must be an
  HS256 JWT signed with `QSTASH_CURRENT_SIGNING_KEY` or `QSTASH_NEXT_SIGNING_KEY` (both are tried,
  so a key rotation never drops a message), with `iss` "Upstash", `sub` the URL QStash was told
  to call, `exp`/`nbf` honoured with a small leeway, `body` the base64url SHA-256 of the raw
  body (QStash pads it with `=`; with or without is accepted) and a `jti`. The header
  `Upstash-Message-Id` (same on every retry of a message) is the de-duplication key (per job);
  each verified token (`jti`, new on every retry) is accepted once, whatever message id comes
  with it, so a captured token replayed within its lifetime launches nothing.
  `sub` is compared with `SYNC_RECEIVER_PUBLIC_URL` + path, never with the request's Host: one
  account's signing keys sign for all its destinations, so without a public URL QStash requests
  are refused.
* **Bearer**: otherwise `Authorization: Bearer <SYNC_AUTH_TOKEN>`, for people and scripts; an
  optional `Idempotency-Key` header de-duplicates their retries (per job).

Why HS256 by hand and not PyJWT: only one algorithm is ever accepted here, so verifying is a
dozen lines of `hmac` over the first two segments; fixing the algorithm (rather than reading it
from the token's header) rules out algorithm-confusion by construction, the receiver keeps its
"standard library for signature rules" property (like the providers' `webhooks.py`), and there
is no new dependency to pin. Every comparison of a secret-derived value uses
`hmac.compare_digest`.

Nothing here does I/O or knows Dagster: the receiver imports it, tests call it directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync_pipelines.core.headers import header
from sync_pipelines.core.providers import TRIGGER_PROVIDER

PROVIDER = TRIGGER_PROVIDER  # the inbox's provider for external triggers (core's trigger sensor reads it)
TOPIC = "trigger"

BEARER_TOKEN_ENV = "SYNC_AUTH_TOKEN"
QSTASH_CURRENT_KEY_ENV = "QSTASH_CURRENT_SIGNING_KEY"
QSTASH_NEXT_KEY_ENV = "QSTASH_NEXT_SIGNING_KEY"
PUBLIC_URL_ENV = "SYNC_RECEIVER_PUBLIC_URL"
JOBS_ENV = "SYNC_TRIGGER_JOBS"
DEFAULT_JOBS = ("replication_sync",)

AUTHORIZATION_HEADER = "Authorization"
SIGNATURE_HEADER = "Upstash-Signature"
MESSAGE_ID_HEADER = "Upstash-Message-Id"
IDEMPOTENCY_HEADER = "Idempotency-Key"

QSTASH_ISSUER = "Upstash"
LEEWAY_SECONDS = 30
MAX_TOKEN_CHARS = 8192  # a QStash JWT is a few hundred characters
MAX_ID_CHARS = 255  # message ids and idempotency keys longer than this are refused

QSTASH = "qstash"
BEARER = "bearer"

# Non-secret headers stored with a trigger (never Authorization or the signature).
KEPT_HEADERS = {
    QSTASH: (MESSAGE_ID_HEADER, "Upstash-Retried", "Upstash-Schedule-Id", "Upstash-Caller-Ip",
             "Content-Type", "User-Agent"),
    BEARER: (IDEMPOTENCY_HEADER, "Content-Type", "User-Agent"),
}

# Failure reasons (short codes, answered as {"error": reason}).
MISSING_CREDENTIALS = "missing_credentials"
BAD_TOKEN = "bad_token"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
WRONG_ISSUER = "wrong_issuer"
WRONG_URL = "wrong_url"
BODY_MISMATCH = "body_mismatch"
MISSING_JTI = "missing_jti"
NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True)
class Verdict:
    """The outcome of authenticating one trigger request.

    `message_id` is the de-duplication key the caller supplied (QStash message id, else the token's
    `jti`; for bearer requests the `Idempotency-Key`), None when there is none.
    """

    ok: bool
    reason: str | None = None
    source: str | None = None
    message_id: str | None = None
    issued_at: datetime | None = None
    token_id: str | None = None
    expires_at: datetime | None = None  # until when the token verifies (so until when a replay must be refused)


def _fail(reason: str, source: str | None) -> Verdict:
    return Verdict(ok=False, reason=reason, source=source)


@dataclass(frozen=True)
class TriggerConfig:
    """Trigger settings read once from the environment; empty values count as unset.

    The secrets stay out of `repr`, so they never reach logs or tracebacks.
    """

    bearer_token: str | None = field(repr=False)
    signing_keys: tuple[str, ...] = field(repr=False)
    public_url: str | None
    jobs: frozenset[str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str], declared: Sequence[str] = DEFAULT_JOBS) -> TriggerConfig:
        """`declared`: the jobs the folders' `triggers.py` open to triggers; `SYNC_TRIGGER_JOBS`, when
        set, is the allow-list instead (comma-separated; empty: none)."""
        def value(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        keys = tuple(key for name in (QSTASH_CURRENT_KEY_ENV, QSTASH_NEXT_KEY_ENV) if (key := value(name)))
        jobs_text = environ.get(JOBS_ENV)
        jobs = declared if jobs_text is None else [job.strip() for job in jobs_text.split(",")]
        return cls(bearer_token=value(BEARER_TOKEN_ENV), signing_keys=keys,
                   public_url=value(PUBLIC_URL_ENV), jobs=frozenset(job for job in jobs if job))

    def url_for(self, path: str, query: str) -> str | None:
        """The URL QStash was told to call (its `sub` claim): the public base URL + path (+ query).

        None without a public URL: the request's Host is the sender's to choose, so it cannot say
        which URL a token was signed for (and QStash requests are then refused).
        """
        if not self.public_url:
            return None
        return self.public_url.rstrip("/") + path + (f"?{query}" if query else "")


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64url_decode(segment: str) -> bytes:
    """Strict base64url (padding optional); raises ValueError on anything else."""
    if not segment or any(c not in _B64URL_ALPHABET for c in segment.rstrip("=")):
        raise ValueError("not base64url")
    stripped = segment.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error



def body_hash(body: bytes) -> str:
    """base64url(SHA-256(body)) without padding: what QStash's `body` claim holds (modulo `=`)."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode("ascii").rstrip("=")


def _hs256(key: str, signing_input: bytes) -> bytes:
    return hmac.new(key.encode("utf-8"), signing_input, hashlib.sha256).digest()


def _number(value: Any) -> float | None:
    """A claim time as a finite timestamp `datetime` can hold, else None.

    JSON allows NaN (which never compares as expired) and integers too large for a float.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
        datetime.fromtimestamp(number, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return number if math.isfinite(number) else None


def verify_bearer(authorization: str | None, token: str | None) -> Verdict:
    """`Authorization: Bearer <token>` against the configured token, compared in constant time."""
    if not authorization:
        return _fail(MISSING_CREDENTIALS, BEARER)
    if not token:
        return _fail(NOT_CONFIGURED, BEARER)
    scheme, _, presented = authorization.strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return _fail(BAD_TOKEN, BEARER)
    if not hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8")):
        return _fail(BAD_TOKEN, BEARER)
    return Verdict(ok=True, source=BEARER)


def verify_qstash(
    signature: str | None,
    body: bytes,
    url: str | None,
    signing_keys: Sequence[str],
    *,
    message_id: str | None = None,
    now: float | None = None,
    leeway: float = LEEWAY_SECONDS,
) -> Verdict:
    """Check an `Upstash-Signature` JWT against the raw `body` and the URL it was sent to.

    The signature over the raw segments is checked first (under every key, so timing does not
    reveal which matched); no JSON is parsed before it matches, so a forged token cannot reach
    the parser. Then the claims: time window, issuer, URL, body hash, `jti`. `url` None (no
    public URL configured) refuses every token.
    """
    if not signature:
        return _fail(MISSING_CREDENTIALS, QSTASH)
    if not signing_keys or not url:
        return _fail(NOT_CONFIGURED, QSTASH)
    token = signature.strip()
    parts = token.split(".")
    if len(token) > MAX_TOKEN_CHARS or len(parts) != 3:
        return _fail(BAD_SIGNATURE, QSTASH)
    header_segment, claims_segment, _ = parts
    try:  # base64 only (this also keeps the signing input ASCII); JSON waits for the signature
        header_bytes, claims_bytes, received = (_b64url_decode(part) for part in parts)
    except ValueError:
        return _fail(BAD_SIGNATURE, QSTASH)
    signing_input = f"{header_segment}.{claims_segment}".encode("ascii")
    matched = False
    for key in signing_keys:
        matched |= hmac.compare_digest(_hs256(key, signing_input), received)
    if not matched:
        return _fail(BAD_SIGNATURE, QSTASH)
    try:
        jose_header, claims = json.loads(header_bytes), json.loads(claims_bytes)
    except (ValueError, RecursionError):  # ValueError includes JSONDecodeError and UnicodeDecodeError
        return _fail(BAD_SIGNATURE, QSTASH)
    # The algorithm is fixed, never taken from the token: "none" or RS256 tricks cannot apply.
    if not isinstance(jose_header, dict) or jose_header.get("alg") != "HS256" or not isinstance(claims, dict):
        return _fail(BAD_SIGNATURE, QSTASH)

    now = time.time() if now is None else now
    expires, not_before = _number(claims.get("exp")), _number(claims.get("nbf"))
    if expires is None or now > expires + leeway:  # a token that never expires is refused too
        return _fail(EXPIRED, QSTASH)
    if "nbf" in claims and (not_before is None or now + leeway < not_before):
        return _fail(NOT_YET_VALID, QSTASH)
    if claims.get("iss") != QSTASH_ISSUER:  # public values: a plain comparison is fine
        return _fail(WRONG_ISSUER, QSTASH)
    if claims.get("sub") != url:
        return _fail(WRONG_URL, QSTASH)
    claimed_hash = claims.get("body")
    if not isinstance(claimed_hash, str) or not hmac.compare_digest(
        claimed_hash.rstrip("=").encode("utf-8"), body_hash(body).encode("ascii")
    ):
        return _fail(BODY_MISMATCH, QSTASH)
    token_id = claims.get("jti")
    if not isinstance(token_id, str) or not token_id:  # without it a token could be replayed freely
        return _fail(MISSING_JTI, QSTASH)

    issued = _number(claims.get("iat"))
    return Verdict(
        ok=True,
        source=QSTASH,
        message_id=message_id or token_id,
        issued_at=datetime.fromtimestamp(issued, UTC) if issued is not None else None,
        token_id=token_id,
        expires_at=datetime.fromtimestamp(expires + leeway, UTC),
    )


def authenticate(
    headers: Mapping[str, str], body: bytes, url: str | None, config: TriggerConfig, *, now: float | None = None
) -> Verdict:
    """QStash rules when an `Upstash-Signature` header is present, else bearer rules.

    `url` is `config.url_for(...)` (None without a public URL). A request carrying a QStash
    signature is judged by it alone: a bad signature is not rescued by a bearer token sent
    alongside, so the two schemes never weaken each other.
    """
    signature = header(headers, SIGNATURE_HEADER)
    if signature is not None:
        return verify_qstash(signature, body, url, config.signing_keys,
                             message_id=header(headers, MESSAGE_ID_HEADER), now=now)
    verdict = verify_bearer(header(headers, AUTHORIZATION_HEADER), config.bearer_token)
    if verdict.ok:
        return Verdict(ok=True, source=BEARER, message_id=header(headers, IDEMPOTENCY_HEADER))
    return verdict


def kept_headers(headers: Mapping[str, str], source: str) -> dict[str, str]:
    """`{"source": "qstash"|"bearer"}` plus that source's non-secret headers, canonical names."""
    kept = {name: header(headers, name) for name in KEPT_HEADERS.get(source, ())}
    return {"source": source, **{name: value for name, value in kept.items() if value is not None}}
