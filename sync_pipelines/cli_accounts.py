"""`sync-pipelines accounts …` and `credentials rotate`: the registry and OAuth tokens from a shell.

OAuth accounts (the ad platforms) are connected with their tokens as JSON on stdin or in an
environment variable — never as a command-line argument, which the shell history and `ps` would
keep — and stored encrypted (`core/credentials.py`, keys in `SYNC_CREDENTIALS_KEYS`). Every error
is one line that names what is wrong, never a token's value. Accounts that take an API key keep
`accounts add --credentials-env VAR` (the registry stores the variable's name only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

import sync_pipelines.defs
from sync_pipelines.cli_days import account_days, render_days
from sync_pipelines.core import credentials
from sync_pipelines.core.database import connect_app_database, ensure_tables
from sync_pipelines.core.providers import ProviderDeclaration, discover_providers, unknown_provider_message
from sync_pipelines.core.registry import (
    CADENCES,
    INTEGRATIONS,
    Account,
    get_account,
    list_accounts,
    normalise_account,
    set_active,
    set_preferences,
    set_timezone,
    upsert_account,
)

TOKENS_HELP = ('JSON {"access_token": …, "refresh_token": …, "expires_in": seconds | "expires_at": ISO time};'
               " other keys of a token response (token_type, scope…) are ignored")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class InputError(Exception):
    """Bad input for a command: one line for stderr, exit 2; the message never holds a secret."""


# ------------------------------------------------------------------------------ parsing
def add_parsers(sub: argparse._SubParsersAction) -> None:
    accounts = sub.add_parser("accounts", help="connected accounts (the registry)")
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = _with_account(actions.add_parser("add", help="register an account whose secret is in an env var"))
    add.add_argument("--credentials-env", required=True, help="env var that holds this account's secret")
    add.add_argument("--name", help="display name")
    add.add_argument("--cadence", help=f"which schedule syncs it ({', '.join(CADENCES)}; default 30min); only for"
                                       " providers without fixed schedules")
    add.add_argument("--lookback-days", type=int, default=1)
    add.add_argument("--disabled", action="store_true", help="no automatic syncs")

    connect = _with_account(actions.add_parser(
        "connect", help="connect (or reconnect) an OAuth account: tokens from stdin or an env var, stored encrypted"))
    connect.add_argument("--owner", help="the user who connects it (the seeds' userId)")
    connect.add_argument("--name", help="display name")
    connect.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                         help="non-secret provider setting, e.g. login_customer_id=1234567890 (repeatable)")
    source = connect.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokens-stdin", action="store_true", help=f"read the tokens from stdin: {TOKENS_HELP}")
    source.add_argument("--tokens-env", metavar="VAR", help="read the same JSON from this environment variable")

    prefs = _with_account(actions.add_parser("set", help="automation preferences: enabled, cadence, lookback"))
    switch = prefs.add_mutually_exclusive_group()
    switch.add_argument("--enable", dest="sync_enabled", action="store_const", const=True, default=None,
                        help="automatic syncs on")
    switch.add_argument("--disable", dest="sync_enabled", action="store_const", const=False,
                        help="manual syncs only")
    prefs.add_argument("--cadence", help=f"how often it is synced: {', '.join(CADENCES)}")
    prefs.add_argument("--lookback-days", type=int, help="days each sync re-reads before today")
    prefs.add_argument("--timezone", help="the account's IANA time zone (e.g. Africa/Algiers): local-time"
                                          " schedules and local days follow it")

    listing = actions.add_parser("list", help="accounts with owner, automation and auth status")
    listing.add_argument("provider", nargs="?")
    listing.add_argument("--json", action="store_true", help="every field, as JSON")

    for name in ("activate", "deactivate"):
        _with_account(actions.add_parser(name, help=f"{name} an account (the sensor updates its partition)"))

    days = _with_account(actions.add_parser("days", help="which days of a report account were synced, and when"))
    days.add_argument("--days", type=int, default=30, help="how many days back, today included (default 30)")
    days.add_argument("--json", action="store_true")
    accounts.set_defaults(func=cmd_accounts)

    secrets = sub.add_parser("credentials", help="stored OAuth tokens")
    secrets.add_argument("action", choices=["rotate"],
                         help="re-encrypt every stored token with the first key of SYNC_CREDENTIALS_KEYS")
    secrets.add_argument("--provider", help="only this provider's tokens")
    secrets.set_defaults(func=cmd_credentials)


def _with_account(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("provider", help="a folder of sync_pipelines/defs declaring provider.py")
    parser.add_argument("account")
    return parser


def prepare(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Checks argparse cannot make: a known provider, no cadence for fixed schedules, no stray
    arguments — and for `connect` stray arguments are never echoed (they may be a token)."""
    if extra:
        if args.command == "accounts" and args.action == "connect":  # one line, without the usage
            print(f"sync-pipelines: accounts connect takes no further arguments ({len(extra)} given, not shown):"
                  " tokens are read from stdin (--tokens-stdin) or an environment variable (--tokens-env VAR),"
                  " never from the command line", file=sys.stderr)
            raise SystemExit(2)
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    known = discover_providers(sync_pipelines.defs)
    provider = args.provider
    if provider and provider not in known:
        parser.error(unknown_provider_message(provider, known))
    args.known = known
    args.declaration = known.get(provider) if provider else None
    cadence = getattr(args, "cadence", None)
    if cadence and args.declaration and not args.declaration.takes_cadence:
        parser.error(f"{provider} accounts follow fixed schedules, not --cadence ({args.declaration.drives(cadence)})")


# ------------------------------------------------------------------------------ tokens
def parse_tokens(text: str, now: datetime) -> credentials.Tokens:
    """Tokens from the JSON a user pastes (e.g. the provider's token response); errors say which
    field is wrong and never quote a value."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"the tokens are not valid JSON (line {error.lineno}, column {error.colno})") from None
    if not isinstance(data, dict):
        raise InputError('the tokens must be a JSON object: {"access_token": …, "refresh_token": …, …}')
    access, refresh = data.get("access_token"), data.get("refresh_token")
    if not isinstance(access, str) or not access.strip():
        raise InputError("the tokens have no access_token (a non-empty string is required)")
    if refresh is not None and (not isinstance(refresh, str) or not refresh.strip()):
        raise InputError("refresh_token must be a non-empty string when given")
    if "expires_in" in data and "expires_at" in data:
        raise InputError("give expires_in or expires_at, not both")
    expires_at = None
    if data.get("expires_in") is not None:
        seconds = data["expires_in"]
        if isinstance(seconds, str) and seconds.strip().isdigit():
            seconds = int(seconds)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise InputError("expires_in must be a positive number of seconds")
        expires_at = now + timedelta(seconds=seconds)
    elif data.get("expires_at") is not None:
        try:
            expires_at = datetime.fromisoformat(str(data["expires_at"]).strip())
        except ValueError:
            raise InputError("expires_at must be an ISO 8601 time, e.g. 2026-12-01T10:00:00Z") from None
        if expires_at.tzinfo is None:
            raise InputError("expires_at must name its time zone, e.g. 2026-12-01T10:00:00Z")
    refresh_expires_at = None
    lapse = data.get("refresh_token_expires_in")  # e.g. LinkedIn's token response: refresh tokens lapse
    if lapse is not None:
        if isinstance(lapse, bool) or not isinstance(lapse, int | float) or lapse <= 0:
            raise InputError("refresh_token_expires_in must be a positive number of seconds")
        refresh_expires_at = now + timedelta(seconds=lapse)
    return credentials.Tokens(access.strip(), refresh.strip() if refresh else None, expires_at, refresh_expires_at)


def read_tokens(args: argparse.Namespace, stdin, environ) -> str:
    if args.tokens_stdin:
        if stdin.isatty():
            print("paste the tokens JSON, then Ctrl-D:", file=sys.stderr)
        return stdin.read()
    # The value may be a token typed where the variable's name belongs: never repeat it.
    if not ENV_NAME.match(args.tokens_env):
        raise InputError("--tokens-env takes the NAME of an environment variable holding the tokens JSON")
    text = environ.get(args.tokens_env)
    if not text:
        raise InputError("the environment variable given to --tokens-env is not set or empty")
    return text


def parse_settings(items: list[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError("--setting takes KEY=VALUE (a non-secret setting, e.g. login_customer_id=1234567890)")
        settings[key.strip()] = value.strip()
    return settings


def cipher_from_env(environ) -> credentials.Cipher:
    try:
        return credentials.Cipher.from_env(environ)
    except credentials.CredentialsError as error:
        raise InputError(str(error)) from None


# ------------------------------------------------------------------------------ commands
def cmd_accounts(args: argparse.Namespace) -> int:
    try:
        if args.action == "connect":
            return connect(args, sys.stdin, os.environ)
        with connect_app_database(autocommit=True) as conn:
            return ACTIONS[args.action](conn, args)
    except InputError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 2


def connect(args: argparse.Namespace, stdin, environ) -> int:
    """Register (or reconnect) an OAuth account and store its tokens, in one transaction.
    Reconnecting keeps its automation preferences and clears "needs re-authorisation"."""
    declaration: ProviderDeclaration = args.declaration
    try:
        provider, account = normalise_account(declaration, args.account)
    except ValueError:  # the provider's message may quote the id, which may be a misplaced token
        raise InputError(f"ACCOUNT is not a valid {declaration.name} account id"
                         + (f" ({declaration.description})" if declaration.description else "")) from None
    settings = parse_settings(args.setting)
    cipher = cipher_from_env(environ)  # before the tokens: nobody pastes them for nothing
    tokens = parse_tokens(read_tokens(args, stdin, environ), datetime.now(UTC))
    with connect_app_database(autocommit=True) as conn:
        ensure_tables(conn, [INTEGRATIONS, credentials.OAUTH_TOKENS])  # DDL outside the transaction below
        with conn.transaction():
            before = get_account(conn, provider, account)
            kept = before or Account(provider, account, args.name or args.account, True, "", True, "30min", 1)
            found = upsert_account(conn, declaration, account, credentials_env="", owner=args.owner,
                                   display_name=args.name or kept.display_name, sync_enabled=kept.sync_enabled,
                                   cadence=kept.cadence, lookback_days=kept.lookback_days, settings=settings)
            credentials.store(conn, cipher, provider, account, tokens)
    verb = "reconnected" if before else "connected"
    print(f"{verb} {provider}/{account}" + (f" (owner {found.owner})" if found.owner else "")
          + ": tokens stored encrypted (refresh token: " + ("yes" if tokens.refresh_token else "no")
          + (f"; access token expires {_when(tokens.expires_at)}" if tokens.expires_at else "") + ")")
    if before is not None and before.needs_reauth:
        print("needs re-authorisation: cleared")
    print(f"automation: {automation(found, args.known.get(provider))}")
    return 0


def set_automation(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    if args.sync_enabled is None and args.cadence is None and args.lookback_days is None and args.timezone is None:
        raise InputError("nothing to change: give --enable or --disable, --cadence, --lookback-days or --timezone")
    if args.timezone is not None:
        try:
            ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {args.timezone!r} (an IANA name, e.g. Africa/Algiers)") from None
    try:
        with conn.transaction():
            found = set_preferences(conn, args.declaration, args.account, sync_enabled=args.sync_enabled,
                                    cadence=args.cadence, lookback_days=args.lookback_days)
            if found is not None and args.timezone is not None:
                set_timezone(conn, found.provider, found.account, args.timezone)
    except ValueError as error:
        raise InputError(str(error)) from None
    if found is None:
        print(f"no such account: {args.provider}/{args.account}")
        return 1
    if args.timezone is not None:
        print(f"{found.provider}/{found.account} time zone: {args.timezone}")
    print(f"{found.provider}/{found.account} automation: {automation(found, args.declaration)}")
    return 0


def add(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    try:
        account = upsert_account(
            conn, args.declaration, args.account, credentials_env=args.credentials_env, display_name=args.name,
            cadence=args.cadence or "30min", lookback_days=args.lookback_days, sync_enabled=not args.disabled)
    except ValueError as error:
        raise InputError(str(error)) from None
    print(f"registered {account.provider}/{account.account} ({args.declaration.drives(account.cadence)});"
          " the accounts sensor adds its partition within a minute")
    return 0


def activate(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    try:
        changed = set_active(conn, args.declaration, args.account, args.action == "activate")
    except ValueError as error:
        raise InputError(str(error)) from None
    if not changed:
        print(f"no such account: {args.provider}/{args.account}")
        return 1
    print(f"{args.action}d {args.provider}/{args.account}")
    return 0


def automation(account: Account, declared: ProviderDeclaration | None) -> str:
    """What launches its syncs: its cadence and lookback, its provider's fixed schedules, or nobody."""
    if not account.sync_enabled:
        return "manual only"
    if declared is not None and not declared.takes_cadence:
        return declared.drives(account.cadence)
    drives = declared.drives(account.cadence) if declared is not None else account.cadence
    return f"{drives}, lookback {account.lookback_days} d"


def auth(account: Account) -> str:
    if not account.needs_reauth:
        return "ok"
    since = f" since {_when(account.auth_error_at)}" if account.auth_error_at else ""
    return f"needs re-authorisation{since}" + (f": {account.auth_error[:80]}" if account.auth_error else "")


def list_them(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    found = list_accounts(conn, args.provider)
    if args.json:
        print(json.dumps([dict(asdict(a), needs_reauth=a.needs_reauth,
                               automation=automation(a, args.known.get(a.provider)), auth=auth(a))
                          for a in found], indent=2, default=_json_value))
        return 0
    rows = [("provider", "account", "state", "owner", "credentials", "automation", "auth")]
    rows += [(a.provider, a.account, "active" if a.active else "inactive", a.owner or "-",
              f"${a.credentials_env}" if a.credentials_env else "oauth tokens",
              automation(a, args.known.get(a.provider)), auth(a)) for a in found]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def days(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    if args.days < 1:
        raise InputError("--days must be at least 1")
    try:
        provider, account = normalise_account(args.declaration, args.account)
    except ValueError as error:
        raise InputError(str(error)) from None
    found = get_account(conn, provider, account)
    if found is None:
        print(f"no such account: {args.provider}/{args.account}")
        return 1
    report = account_days(conn, found, args.days, datetime.now(UTC))
    print(json.dumps(report, indent=2, default=_json_value) if args.json else render_days(report))
    return 0


ACTIONS = {"add": add, "set": set_automation, "list": list_them, "activate": activate, "deactivate": activate,
           "days": days}


def cmd_credentials(args: argparse.Namespace) -> int:
    try:
        cipher = cipher_from_env(os.environ)
    except InputError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 2
    with connect_app_database(autocommit=True) as conn:
        try:
            count = credentials.rotate(conn, cipher, args.provider)
        except credentials.CredentialsError as error:  # a row no key decrypts: nothing was rewritten
            print(f"sync-pipelines: {error}; nothing was re-encrypted", file=sys.stderr)
            return 1
    scope = f"{args.provider} " if args.provider else ""
    print(f"re-encrypted the {scope}tokens of {count} account(s) with the first key of {credentials.KEYS_ENV};"
          " keys after it can be removed once every process uses the new list")
    return 0


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _json_value(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
