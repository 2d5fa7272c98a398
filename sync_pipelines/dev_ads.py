"""`make dev`'s ad platforms: the Google Ads and Meta sandboxes, and two demo users whose accounts on
both platforms are connected the way `sync-pipelines accounts connect` connects them (registry row
with the user as owner, tokens stored encrypted). The automation sensor then backfills them.

Dev only (imports the sandboxes). The encryption key is generated once into the local state
directory (`.local/credentials.key`) unless `SYNC_CREDENTIALS_KEYS` is set, so tokens stored by an
earlier session stay readable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from sync_pipelines.core import credentials
from sync_pipelines.core.credentials import Cipher, Tokens
from sync_pipelines.core.embedded import local_dir
from sync_pipelines.core.registry import get_account, upsert_account

# user → (Google Ads customer ids, Meta ad account ids) with their time zones
DEMO_USERS = {
    "user-alice": {"google_ads": {"1234567890": "America/New_York", "2345678901": "Europe/Paris"},
                   "meta_ads": {"1001": "America/Los_Angeles"}},
    "user-bob": {"google_ads": {"3456789012": "Asia/Tokyo"},
                 "meta_ads": {"1002": "Europe/London", "1003": "Australia/Sydney"}},
}
META_APP_ID, META_APP_SECRET = "sandbox-meta-app", "sandbox-meta-app-secret"


def credentials_key(env: dict[str, str]) -> None:
    """`SYNC_CREDENTIALS_KEYS` for local use: a key kept in the local state directory."""
    if env.get(credentials.KEYS_ENV):
        return
    from cryptography.fernet import Fernet

    path = local_dir() / "credentials.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    env[credentials.KEYS_ENV] = path.read_text().strip()


def start(env: dict[str, str], stack: ExitStack, args: argparse.Namespace, register: bool,
          connect: Callable) -> dict[str, str]:
    """Serve both sandboxes, point the clients at them, connect the demo users' accounts."""
    from sync_pipelines.sandbox.google_ads import CLIENT_ID, CLIENT_SECRET, DEVELOPER_TOKEN, GoogleAdsSandbox
    from sync_pipelines.sandbox.meta_ads import MetaAdsSandbox
    from sync_pipelines.sandbox.server import serve_in_thread

    credentials_key(env)
    google = GoogleAdsSandbox(seed=7)
    meta = MetaAdsSandbox(seed=7, app_id=META_APP_ID, app_secret=META_APP_SECRET)
    for box in (google, meta):
        stack.callback(box.close)
    tokens: dict[tuple[str, str], Tokens] = {}
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    for user, platforms in DEMO_USERS.items():
        for customer, zone in platforms["google_ads"].items():
            google.add_customer(customer, time_zone=zone, campaigns=6)
            refresh = google.grant(customers=[customer])
            tokens[("google_ads", customer)] = Tokens(google.access_token(refresh), refresh, in_an_hour)
        for number, zone in platforms["meta_ads"].items():
            meta.add_account(number, timezone_name=zone, campaigns=5)
            token = meta.issue_token(f"EAAdemo{number}", accounts=[number], expires_in=None).value
            tokens[("meta_ads", number)] = Tokens(token, None, datetime.now(UTC) + timedelta(days=60))
    google_url = stack.enter_context(serve_in_thread(google.app, port=args.google_ads_sandbox_port)).url
    meta_url = stack.enter_context(serve_in_thread(meta.app, port=args.meta_sandbox_port)).url
    env.update({"GOOGLE_ADS_BASE_URL": google_url, "GOOGLE_ADS_TOKEN_URL": f"{google_url}/token",
                "GOOGLE_ADS_CLIENT_ID": CLIENT_ID, "GOOGLE_ADS_CLIENT_SECRET": CLIENT_SECRET,
                "GOOGLE_ADS_DEVELOPER_TOKEN": DEVELOPER_TOKEN, "META_ADS_BASE_URL": meta_url,
                "META_APP_ID": META_APP_ID, "META_APP_SECRET": META_APP_SECRET})
    if register:
        cipher = Cipher.from_env(env)
        with connect(env) as conn:
            for user, platforms in DEMO_USERS.items():
                for provider, ids in platforms.items():
                    for account in ids:
                        if get_account(conn, provider, account) is None:  # keep earlier sessions' preferences
                            upsert_account(conn, provider, account, credentials_env="", owner=user,
                                           display_name=f"{user} {provider} {account}", cadence="hourly",
                                           lookback_days=3)
                        with conn.transaction():  # the sandbox issued new tokens this session
                            credentials.store(conn, cipher, provider, account, tokens[(provider, account)])
    google.start_drift(args.drift_seconds)
    meta.start_drift(args.drift_seconds)
    return {"Google Ads API": google_url, "Meta Marketing API": meta_url}
