"""Signed external triggers: the pure verification rules, then `POST /triggers/<job>` over real HTTP.

QStash tokens are built here by hand (json + base64url + hmac), independently of the code under
test, in the shape the QStash docs show (alg HS256, iss "Upstash", padded base64url body hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from contextlib import ExitStack

import pytest
import requests

from sync_pipelines import dev
from sync_pipelines.core import inbox
from sync_pipelines.core.embedded import _free_port
from sync_pipelines.receiver import triggers
from sync_pipelines.receiver.app import create_app
from sync_pipelines.receiver.triggers import TriggerConfig, authenticate, verify_bearer, verify_qstash
from sync_pipelines.sandbox.server import serve_in_thread

CURRENT_KEY, NEXT_KEY = "sig_current_key_123", "sig_next_key_456"
TOKEN = "s3cret-bearer-token"
PUBLIC = "https://sync.example.com"
URL = f"{PUBLIC}/triggers/replication_sync"
ENVIRON = {
    "SYNC_AUTH_TOKEN": TOKEN,
    "QSTASH_CURRENT_SIGNING_KEY": CURRENT_KEY,
    "QSTASH_NEXT_SIGNING_KEY": NEXT_KEY,
    "SYNC_RECEIVER_PUBLIC_URL": PUBLIC + "/",
    "SYNC_TRIGGER_JOBS": "replication_sync, other_job",
}
MAX_BODY = 4096


def b64url(data: bytes, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if pad else text.rstrip("=")


def qstash_token(body: bytes, *, key: str = CURRENT_KEY, url: str = URL, iss: str = "Upstash",
                 now: float | None = None, exp_in: float = 300, nbf_in: float = 0, body_hash: str | None = None,
                 alg: str = "HS256", drop: tuple[str, ...] = (), claims: dict | None = None,
                 header_json: bytes | None = None) -> str:
    now = time.time() if now is None else now
    header = {"alg": alg, "typ": "JWT"}
    claims = {
        "iss": iss, "sub": url, "exp": int(now + exp_in), "nbf": int(now + nbf_in), "iat": int(now),
        "jti": f"jwt_{uuid.uuid4().hex}",
        "body": body_hash if body_hash is not None else b64url(hashlib.sha256(body).digest(), pad=True),
        **(claims or {}),
    }
    for name in drop:
        claims.pop(name)
    header_segment = b64url(header_json if header_json is not None else json.dumps(header).encode())
    signing_input = f"{header_segment}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def check(token: str | None, body: bytes = b'{"a": 1}', url: str = URL, keys=(CURRENT_KEY, NEXT_KEY), **kwargs):
    return verify_qstash(token, body, url, keys, **kwargs)


# --- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [CURRENT_KEY, NEXT_KEY], ids=["current", "next"])
def test_valid_qstash_token_is_accepted_with_either_key(key):
    body = b'{"a": 1}'
    verdict = check(qstash_token(body, key=key), body, message_id="msg_1")
    assert verdict.ok and verdict.reason is None
    assert (verdict.source, verdict.message_id) == ("qstash", "msg_1")
    assert verdict.token_id.startswith("jwt_") and verdict.issued_at is not None


def test_body_hash_is_accepted_with_or_without_padding_and_empty_body_works():
    body = b"plain text body"
    unpadded = b64url(hashlib.sha256(body).digest())
    assert check(qstash_token(body, body_hash=unpadded), body).ok
    assert check(qstash_token(body, body_hash=unpadded + "="), body).ok
    assert check(qstash_token(b""), b"").ok


def test_message_id_falls_back_to_the_signed_jti():
    body = b"{}"
    verdict = check(qstash_token(body), body, message_id=None)
    assert verdict.ok and verdict.message_id == verdict.token_id


@pytest.mark.parametrize(
    ("token_kwargs", "verify_kwargs", "reason"),
    [
        ({"exp_in": -120, "nbf_in": -420}, {}, "expired"),
        ({"drop": ("exp",)}, {}, "expired"),
        ({"nbf_in": 120, "exp_in": 420}, {}, "not_yet_valid"),
        ({"iss": "Someone"}, {}, "wrong_issuer"),
        ({"url": "https://evil.example.com/triggers/replication_sync"}, {}, "wrong_url"),
        ({"key": "not-a-signing-key"}, {}, "bad_signature"),
        ({"alg": "none"}, {}, "bad_signature"),
        ({}, {"keys": ()}, "not_configured"),
    ],
    ids=["expired", "no_exp", "nbf_future", "wrong_iss", "wrong_url", "wrong_key", "alg_none", "no_keys"],
)
def test_bad_qstash_tokens_get_the_right_reason(token_kwargs, verify_kwargs, reason):
    body = b'{"a": 1}'
    verdict = check(qstash_token(body, **token_kwargs), body, **verify_kwargs)
    assert (verdict.ok, verdict.reason, verdict.source) == (False, reason, "qstash")


def test_small_clock_skew_is_tolerated():
    body = b"{}"
    assert check(qstash_token(body, exp_in=-10, nbf_in=-310), body).ok
    assert check(qstash_token(body, nbf_in=10), body).ok


def test_tampered_body_is_body_mismatch():
    token = qstash_token(b'{"a": 1}')
    assert check(token, b'{"a": 2}').reason == "body_mismatch"


def test_tampered_claims_break_the_signature():
    token = qstash_token(b"{}", url="https://evil.example.com/x")
    header, _, signature = token.split(".")
    good_claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    good_claims["sub"] = URL
    forged = f"{header}.{b64url(json.dumps(good_claims).encode())}.{signature}"
    assert check(forged, b"{}").reason == "bad_signature"


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "a.b", "....", "ü.ü.ü", "x" * 10_000,
                                     f"{b64url(b'[]')}.{b64url(b'[]')}.{b64url(b'sig')}"])
def test_garbage_tokens_are_bad_signature(garbage):
    assert check(garbage).reason == "bad_signature"


NESTED = b"[" * 5000  # deep enough for RecursionError in json.loads, well under MAX_TOKEN_CHARS


def test_deeply_nested_token_json_is_bad_signature_not_a_crash():
    forged = f"{b64url(NESTED)}.{b64url(b'{}')}.{b64url(b'sig')}"
    assert len(forged) < triggers.MAX_TOKEN_CHARS
    assert check(forged).reason == "bad_signature"
    signed = qstash_token(b"{}", header_json=NESTED)  # even with a valid signature
    assert check(signed, b"{}").reason == "bad_signature"


def test_no_json_is_parsed_before_the_signature_matches(monkeypatch):
    parsed = []
    real = json.loads
    monkeypatch.setattr(triggers.json, "loads", lambda text, *a, **k: parsed.append(text) or real(text, *a, **k))
    assert check(qstash_token(b"{}", key="not-a-signing-key"), b"{}").reason == "bad_signature"
    assert parsed == []
    assert check(qstash_token(b"{}"), b"{}").ok and len(parsed) == 2


@pytest.mark.parametrize("claims", [{"jti": 123}, {"jti": ""}, {"jti": None}, None],
                         ids=["number", "empty", "null", "absent"])
def test_signed_token_without_a_string_jti_is_refused(claims):
    body = b"{}"
    token = qstash_token(body, claims=claims) if claims else qstash_token(body, drop=("jti",))
    verdict = check(token, body, message_id="msg_1")
    assert (verdict.ok, verdict.reason) == (False, "missing_jti")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [({"exp": float("nan")}, "expired"), ({"exp": float("inf")}, "expired"), ({"exp": 10**400}, "expired"),
     ({"exp": 1e300}, "expired"), ({"nbf": float("nan")}, "not_yet_valid"),
     ({"nbf": 10**400}, "not_yet_valid")],
    ids=["exp_nan", "exp_inf", "exp_huge_int", "exp_year_beyond_9999", "nbf_nan", "nbf_huge_int"],
)
def test_non_finite_or_out_of_range_times_are_refused(claims, reason):
    body = b"{}"
    assert check(qstash_token(body, claims=claims), body).reason == reason


@pytest.mark.parametrize("iat", [float("nan"), float("-inf"), 10**400, -1e300])
def test_unusable_iat_is_ignored_not_a_crash(iat):
    body = b"{}"
    verdict = check(qstash_token(body, claims={"iat": iat}), body)
    assert verdict.ok and verdict.issued_at is None


def test_without_a_public_url_qstash_is_not_configured():
    body = b"{}"
    assert check(qstash_token(body), body, url=None).reason == "not_configured"
    config = TriggerConfig.from_env({k: v for k, v in ENVIRON.items() if k != "SYNC_RECEIVER_PUBLIC_URL"})
    url = config.url_for("/triggers/replication_sync", "")
    assert url is None
    verdict = authenticate({"Upstash-Signature": qstash_token(body)}, body, url, config)
    assert (verdict.ok, verdict.reason, verdict.source) == (False, "not_configured", "qstash")


def test_secrets_are_not_in_repr():
    text = repr(TriggerConfig.from_env(ENVIRON))
    assert TOKEN not in text and CURRENT_KEY not in text and NEXT_KEY not in text
    assert PUBLIC in text  # the rest stays readable


@pytest.mark.parametrize("missing", [None, ""])
def test_missing_signature_is_missing_credentials(missing):
    assert check(missing).reason == "missing_credentials"


def test_bearer_rules():
    assert verify_bearer(f"Bearer {TOKEN}", TOKEN).ok
    assert verify_bearer(f"bearer   {TOKEN} ", TOKEN).ok
    assert verify_bearer("Bearer nope", TOKEN).reason == "bad_token"
    assert verify_bearer(f"Basic {TOKEN}", TOKEN).reason == "bad_token"
    assert verify_bearer("Bearer ", TOKEN).reason == "bad_token"
    assert verify_bearer("Bearer ünïcode", TOKEN).reason == "bad_token"
    assert verify_bearer(None, TOKEN).reason == "missing_credentials"
    assert verify_bearer(f"Bearer {TOKEN}", None).reason == "not_configured"


def test_secrets_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(triggers.hmac, "compare_digest", spy)
    assert not verify_bearer("Bearer wrong", TOKEN).ok
    assert (b"wrong", TOKEN.encode()) in calls
    calls.clear()
    body = b"{}"
    assert check(qstash_token(body, key=NEXT_KEY), body).ok
    assert len(calls) >= 3  # both keys tried, then the body hash


def test_authenticate_picks_qstash_when_signed_else_bearer():
    config = TriggerConfig.from_env(ENVIRON)
    body = b"{}"
    signed = {"upstash-signature": qstash_token(body), "upstash-message-id": "msg_9",
              "authorization": f"Bearer {TOKEN}"}
    assert authenticate(signed, body, URL, config).message_id == "msg_9"
    # A bad QStash signature is not rescued by a valid bearer token sent alongside.
    signed["upstash-signature"] = qstash_token(body, key="wrong")
    assert authenticate(signed, body, URL, config).reason == "bad_signature"
    bearer = authenticate({"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k1"}, body, URL, config)
    assert (bearer.ok, bearer.source, bearer.message_id) == (True, "bearer", "k1")
    assert authenticate({}, body, URL, config).reason == "missing_credentials"


def test_config_from_env():
    config = TriggerConfig.from_env(ENVIRON)
    assert config.jobs == {"replication_sync", "other_job"}
    assert config.signing_keys == (CURRENT_KEY, NEXT_KEY)
    assert config.url_for("/triggers/x", "") == f"{PUBLIC}/triggers/x"
    assert config.url_for("/triggers/x", "a=1") == f"{PUBLIC}/triggers/x?a=1"
    bare = TriggerConfig.from_env({"QSTASH_CURRENT_SIGNING_KEY": " ", "SYNC_AUTH_TOKEN": ""})
    assert (bare.jobs, bare.signing_keys, bare.bearer_token) == ({"replication_sync"}, (), None)
    assert bare.url_for("/triggers/x", "") is None


def test_kept_headers_never_hold_secrets():
    headers = {"Authorization": f"Bearer {TOKEN}", "Upstash-Signature": "jwt", "Upstash-Message-Id": "m",
               "Upstash-Retried": "1", "Idempotency-Key": "k"}
    assert triggers.kept_headers(headers, "qstash") == {"source": "qstash", "Upstash-Message-Id": "m",
                                                        "Upstash-Retried": "1"}
    assert triggers.kept_headers(headers, "bearer") == {"source": "bearer", "Idempotency-Key": "k"}


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver(database_url):
    with serve_in_thread(create_app(database_url, max_body_bytes=MAX_BODY, environ=ENVIRON)) as server:
        yield server.url


def post(receiver, body=b"", headers=None, job="replication_sync"):
    return requests.post(f"{receiver}/triggers/{job}", data=body, headers=headers or {}, timeout=10)


def qstash_headers(body: bytes, message_id: str | None = None, **token_kwargs) -> dict[str, str]:
    return {"Upstash-Signature": qstash_token(body, **token_kwargs), "Content-Type": "application/json",
            "Upstash-Message-Id": message_id or f"msg_{uuid.uuid4().hex}", "Upstash-Retried": "0"}


def rows(conn, message_id, job="replication_sync"):
    return conn.execute(
        "SELECT id, account, topic, payload, headers, duplicates, event_id, triggered_at FROM sync.inbox"
        " WHERE provider = 'trigger' AND delivery_id = %s", (f"{job}:{message_id}",)).fetchall()


def rejections(conn, reason):
    inbox.ensure_inbox_tables(conn)  # the receivers here run without lifespan: tables come with their first request
    return conn.execute("SELECT coalesce(sum(count), 0) FROM sync.webhook_rejection_counts"
                        " WHERE provider = 'trigger' AND reason = %s AND account = ''", (reason,)).fetchone()[0]


def test_qstash_trigger_is_202_and_in_the_inbox(receiver, conn):
    body = b'{"reason": "every 6 hours"}'
    headers = qstash_headers(body)
    response = post(receiver, body, headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    [(inbox_id, account, topic, payload, kept, duplicates, event_id, triggered_at)] = rows(
        conn, headers["Upstash-Message-Id"])
    assert (inbox_id, account, topic, payload, duplicates) == (
        response.json()["id"], "replication_sync", "trigger", {"reason": "every 6 hours"}, 0)
    assert kept == {"source": "qstash", "Upstash-Message-Id": headers["Upstash-Message-Id"],
                    "Upstash-Retried": "0", "Content-Type": "application/json",
                    "User-Agent": kept["User-Agent"]}
    assert event_id.startswith("jwt_") and triggered_at is not None
    assert headers["Upstash-Signature"] not in json.dumps(kept)


def test_replayed_message_is_200_duplicate_and_one_row(receiver, conn):
    body = b"{}"
    message_id = f"msg_{uuid.uuid4().hex}"
    first = post(receiver, body, qstash_headers(body, message_id))
    retry = post(receiver, body, qstash_headers(body, message_id))  # QStash's retry: new JWT, same id
    assert first.status_code == 202
    assert (retry.status_code, retry.json()) == (200, {"status": "duplicate", "id": first.json()["id"]})
    assert [(r[0], r[5]) for r in rows(conn, message_id)] == [(first.json()["id"], 1)]


def test_a_captured_token_replayed_under_a_new_message_id_launches_nothing(receiver, conn):
    body = b"{}"
    headers = qstash_headers(body)
    first = post(receiver, body, headers)
    replay = post(receiver, body, dict(headers, **{"Upstash-Message-Id": f"msg_{uuid.uuid4().hex}"}))
    assert first.status_code == 202
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate", "id": first.json()["id"]})
    assert rows(conn, replay.request.headers["Upstash-Message-Id"]) == []


def trigger_rows_for(conn, *message_ids, job="replication_sync"):
    return conn.execute("SELECT id FROM sync.inbox WHERE provider = 'trigger' AND delivery_id = ANY(%s) ORDER BY id",
                        ([f"{job}:{m}" for m in message_ids],)).fetchall()


def test_a_retry_is_a_duplicate_and_its_token_cannot_be_replayed_under_any_message_id(receiver, conn):
    """QStash's retry (new jti, same message id) launches nothing; its jti is recorded all the
    same, so replaying the retry's token — under a forged message id or its own — launches nothing."""
    body = b"{}"
    message_id = f"msg_{uuid.uuid4().hex}"
    first = post(receiver, body, qstash_headers(body, message_id))
    retry_headers = qstash_headers(body, message_id)
    retry = post(receiver, body, retry_headers)
    forged_id = f"msg_{uuid.uuid4().hex}"
    replay_forged = post(receiver, body, dict(retry_headers, **{"Upstash-Message-Id": forged_id}))
    replay_same = post(receiver, body, retry_headers)

    assert first.status_code == 202, first.text
    duplicate = {"status": "duplicate", "id": first.json()["id"]}
    assert (retry.status_code, retry.json()) == (200, duplicate)
    assert (replay_forged.status_code, replay_forged.json()) == (200, duplicate)
    assert (replay_same.status_code, replay_same.json()) == (200, duplicate)
    # One trigger row (one run for the sensor), none under the forged id.
    assert trigger_rows_for(conn, message_id, forged_id) == [(first.json()["id"],)]


def test_a_token_is_accepted_once_whatever_job_or_message_id_it_comes_with(receiver, conn):
    body = b"{}"
    headers = qstash_headers(body)
    first = post(receiver, body, headers)
    again = post(receiver, body, headers)  # the very same request, replayed
    other_id = f"msg_{uuid.uuid4().hex}"
    forged = post(receiver, body, dict(headers, **{"Upstash-Message-Id": other_id}))
    assert first.status_code == 202
    for replay in (again, forged):
        assert (replay.status_code, replay.json()) == (200, {"status": "duplicate", "id": first.json()["id"]})
    assert trigger_rows_for(conn, headers["Upstash-Message-Id"], other_id) == [(first.json()["id"],)]


def test_expired_tokens_are_forgotten_only_after_they_expire(conn):
    inbox.ensure_inbox_tables(conn)
    token = f"jwt_{uuid.uuid4().hex}"
    live = f"jwt_{uuid.uuid4().hex}"
    conn.execute("INSERT INTO sync.accepted_tokens (provider, token_id, expires_at) VALUES"
                 " ('trigger', %s, now() - interval '2 hours'), ('trigger', %s, now() + interval '5 minutes')",
                 (token, live))
    assert inbox.purge_expired_tokens(conn) >= 1
    left = conn.execute("SELECT token_id FROM sync.accepted_tokens WHERE token_id = ANY(%s)",
                        ([token, live],)).fetchall()
    assert left == [(live,)]


def test_bearer_trigger_with_and_without_idempotency_key(receiver, conn):
    key = f"idem-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key}
    first = post(receiver, b"", headers, job="other_job")
    again = post(receiver, b"", headers, job="other_job")
    assert (first.status_code, again.status_code, again.json()["status"]) == (202, 200, "duplicate")
    [(_, account, _, payload, kept, duplicates, _, _)] = rows(conn, key, job="other_job")
    assert (account, payload, kept["source"], kept["Idempotency-Key"], duplicates) == ("other_job", {}, "bearer", key, 1)
    assert TOKEN not in json.dumps(kept)
    one = post(receiver, b'{"full": true}', {"Authorization": f"Bearer {TOKEN}"})
    two = post(receiver, b'{"full": true}', {"Authorization": f"Bearer {TOKEN}"})
    assert (one.status_code, two.status_code) == (202, 202) and one.json()["id"] != two.json()["id"]


def test_the_same_idempotency_key_for_two_jobs_is_two_triggers(receiver, conn):
    key = f"idem-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key}
    first = post(receiver, b"", headers, job="replication_sync")
    second = post(receiver, b"", headers, job="other_job")
    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert first.json()["id"] != second.json()["id"]
    assert [r[1] for r in rows(conn, key)] == ["replication_sync"]
    assert [r[1] for r in rows(conn, key, job="other_job")] == ["other_job"]


def test_qstash_needs_the_public_url_whatever_the_host_header_says(database_url, conn, caplog):
    environ = {k: v for k, v in ENVIRON.items() if k != "SYNC_RECEIVER_PUBLIC_URL"}
    with caplog.at_level(logging.WARNING, logger="sync_pipelines.receiver"):
        app = create_app(database_url, environ=environ)
    assert "SYNC_RECEIVER_PUBLIC_URL" in caplog.text
    assert CURRENT_KEY not in caplog.text and TOKEN not in caplog.text
    with serve_in_thread(app) as server:
        body = b"{}"
        own = qstash_headers(body, url=f"{server.url}/triggers/replication_sync")
        foreign = "staging.other-service.example"  # another destination of the same QStash account
        spoofed = dict(qstash_headers(body, url=f"http://{foreign}/triggers/replication_sync"), Host=foreign)
        for headers in (own, spoofed):
            response = post(server.url, body, headers)
            assert (response.status_code, response.json()) == (401, {"error": "not_configured"})
            assert rows(conn, headers["Upstash-Message-Id"]) == []
        assert post(server.url, b"", {"Authorization": f"Bearer {TOKEN}"}).status_code == 202  # bearer unaffected


def test_make_dev_receiver_checks_qstash_against_its_own_address(database_url, conn):
    port = _free_port()
    env = {"DATABASE_URL": database_url, "QSTASH_CURRENT_SIGNING_KEY": CURRENT_KEY}
    with ExitStack() as stack:
        url = dev._receiver(env, stack, port)
        body = b"{}"
        headers = qstash_headers(body, url=f"{url}/triggers/replication_sync")
        assert post(url, body, headers).status_code == 202


@pytest.mark.parametrize(
    "case", ["no_credentials", "bad_bearer", "expired", "wrong_url", "tampered", "wrong_key", "nested_json",
             "no_jti"])
def test_unauthenticated_triggers_are_401_recorded_and_not_stored(receiver, conn, case):
    body = b'{"a": 1}'
    message_id = f"msg_{uuid.uuid4().hex}"
    nested = f"{b64url(NESTED)}.{b64url(b'{}')}.{b64url(b'sig')}"
    headers, reason = {
        "no_credentials": ({}, "missing_credentials"),
        "bad_bearer": ({"Authorization": "Bearer nope"}, "bad_token"),
        "expired": (qstash_headers(body, message_id, exp_in=-600, nbf_in=-900), "expired"),
        "wrong_url": (qstash_headers(body, message_id, url=f"{PUBLIC}/triggers/other_job"), "wrong_url"),
        "tampered": (qstash_headers(body, message_id), "body_mismatch"),
        "wrong_key": (qstash_headers(body, message_id, key="sig_forged"), "bad_signature"),
        "nested_json": (dict(qstash_headers(body, message_id), **{"Upstash-Signature": nested}), "bad_signature"),
        "no_jti": (qstash_headers(body, message_id, drop=("jti",)), "missing_jti"),
    }[case]
    if case == "tampered":
        body = b'{"a": 2}'
    headers.setdefault("Idempotency-Key", message_id)
    before = rejections(conn, reason)
    response = post(receiver, body, headers)
    assert (response.status_code, response.json()) == (401, {"error": reason})
    assert rejections(conn, reason) == before + 1
    assert rows(conn, message_id) == []


def test_unknown_job_is_404_even_when_authenticated(receiver, conn):
    response = post(receiver, b"", {"Authorization": f"Bearer {TOKEN}"}, job="drop_everything")
    assert (response.status_code, response.json()) == (404, {"error": "unknown_job"})


def test_default_allow_list_is_replication_sync_only(database_url):
    environ = {"SYNC_AUTH_TOKEN": TOKEN}
    with serve_in_thread(create_app(database_url, environ=environ)) as server:
        assert post(server.url, b"", {"Authorization": f"Bearer {TOKEN}"}).status_code == 202
        assert post(server.url, b"", {"Authorization": f"Bearer {TOKEN}"}, job="other_job").status_code == 404


@pytest.mark.parametrize(
    ("configured", "headers"),
    [((), {"Authorization": f"Bearer {TOKEN}"}), ((), "qstash"),
     (("SYNC_AUTH_TOKEN",), "qstash"), (("SYNC_AUTH_TOKEN",), {"Upstash-Signature": "junk"}),
     (("QSTASH_CURRENT_SIGNING_KEY", "SYNC_RECEIVER_PUBLIC_URL"), {"Authorization": "Bearer junk"}),
     (("QSTASH_CURRENT_SIGNING_KEY", "SYNC_RECEIVER_PUBLIC_URL"), {"Authorization": "Basic Zm9vOmJhcg=="})],
    ids=["nothing_bearer", "nothing_qstash", "bearer_only_qstash", "bearer_only_junk_signature",
         "qstash_only_bearer", "qstash_only_basic"],
)
def test_an_unconfigured_scheme_answers_401(database_url, conn, configured, headers):
    """Not 503: an unauthenticated caller must not be told to retry (the startup log tells the operator)."""
    body = b"{}"
    with serve_in_thread(create_app(database_url, environ={k: ENVIRON[k] for k in configured})) as server:
        if headers == "qstash":
            headers = qstash_headers(body, url=f"{server.url}/triggers/replication_sync")
        before = rejections(conn, "not_configured")
        response = post(server.url, body, headers)
        assert (response.status_code, response.json()) == (401, {"error": "not_configured"})
        assert rejections(conn, "not_configured") == before + 1


@pytest.mark.parametrize("body", [b"{not json", b"[1]", b"null"])
def test_authenticated_non_object_body_is_400(receiver, body):
    response = post(receiver, body, {"Authorization": f"Bearer {TOKEN}"})
    assert (response.status_code, response.json()) == (400, {"error": "malformed_json"})


def test_oversized_trigger_is_413(receiver):
    body = json.dumps({"padding": "x" * (2 * MAX_BODY)}).encode()
    response = post(receiver, body, qstash_headers(body))
    assert (response.status_code, response.json()) == (413, {"error": "too_large"})


def test_overlong_idempotency_key_is_400(receiver):
    response = post(receiver, b"", {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": "k" * 300})
    assert (response.status_code, response.json()) == (400, {"error": "bad_delivery_id"})
