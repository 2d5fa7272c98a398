"""The CLI for OAuth accounts: connect with tokens from stdin or env (stored encrypted, never
printed), automation preferences, the list with auth status, synced days and gaps, key rotation,
and `status` naming the accounts that need someone. Real embedded PostgreSQL throughout."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from sync_pipelines.cli import main
from sync_pipelines.core import credentials, outcomes
from sync_pipelines.core.credentials import Cipher, CredentialsError
from sync_pipelines.core.registry import get_account, mark_needs_reauth, set_timezone
from sync_pipelines.core.reports import ReportStream, daily_metrics_table, sync_report

KEY = Fernet.generate_key().decode()
SECRET = "ya29.SECRET-access-0123456789"
REFRESH = "1//SECRET-refresh-9876543210"


def run(argv: list[str]) -> int:
    """main's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv(credentials.KEYS_ENV, KEY)
    return Cipher([KEY])


def tokens_on_stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def connect(monkeypatch, account: str, tokens: dict, *extra: str) -> int:
    tokens_on_stdin(monkeypatch, json.dumps(tokens))
    return run(["accounts", "connect", "shipstation", account, *extra, "--tokens-stdin"])


def stored_bytes(conn, account: str) -> bytes:
    row = conn.execute("SELECT access_token, refresh_token FROM sync.oauth_tokens WHERE provider = 'shipstation'"
                       " AND account = %s", (account,)).fetchone()
    return bytes(row[0]) + bytes(row[1] or b"")


def test_connect_from_stdin_stores_the_tokens_encrypted_and_never_prints_them(conn, unique, keys, monkeypatch,
                                                                              capsys):
    account = f"oauth-{unique}"
    before = datetime.now(UTC)
    assert connect(monkeypatch, account, {"access_token": SECRET, "refresh_token": REFRESH, "expires_in": 3600,
                                          "token_type": "Bearer"},
                   "--owner", "user123", "--name", "Ads A", "--setting", "login_customer_id=1112223333") == 0
    out, err = capsys.readouterr()
    assert f"connected shipstation/{account} (owner user123)" in out and "refresh token: yes" in out
    assert "SECRET" not in out + err

    found = get_account(conn, "shipstation", account)
    assert (found.owner, found.display_name, found.credentials_env) == ("user123", "Ads A", "")
    assert found.settings == {"login_customer_id": "1112223333"}
    stored = stored_bytes(conn, account)
    assert b"SECRET" not in stored and SECRET.encode() not in stored
    tokens = credentials.load(conn, keys, "shipstation", account)
    assert (tokens.access_token, tokens.refresh_token) == (SECRET, REFRESH)
    assert before + timedelta(seconds=3590) <= tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=3600)


def test_connect_from_env_and_reconnect_clears_needs_reauth_keeping_preferences(conn, unique, keys, monkeypatch,
                                                                                capsys):
    account = f"oauth-{unique}"
    monkeypatch.setenv("ADS_TOKENS_JSON", json.dumps({"access_token": "first-token"}))
    assert run(["accounts", "connect", "shipstation", account, "--tokens-env", "ADS_TOKENS_JSON"]) == 0
    assert run(["accounts", "set", "shipstation", account, "--disable", "--cadence", "hourly",
                "--lookback-days", "5"]) == 0
    assert mark_needs_reauth(conn, "shipstation", account, "invalid_grant: Token has been revoked")
    assert get_account(conn, "shipstation", account).needs_reauth
    capsys.readouterr()

    monkeypatch.setenv("ADS_TOKENS_JSON", json.dumps({"access_token": SECRET, "refresh_token": REFRESH,
                                                      "expires_at": "2031-01-02T03:04:05Z"}))
    assert run(["accounts", "connect", "shipstation", account, "--tokens-env", "ADS_TOKENS_JSON"]) == 0
    out = capsys.readouterr().out
    assert f"reconnected shipstation/{account}" in out and "needs re-authorisation: cleared" in out
    assert "automation: manual only" in out and "SECRET" not in out
    found = get_account(conn, "shipstation", account)
    assert not found.needs_reauth and found.auth_error is None
    assert (found.sync_enabled, found.cadence, found.lookback_days) == (False, "hourly", 5)  # kept
    tokens = credentials.load(conn, keys, "shipstation", account)
    assert tokens.access_token == SECRET and tokens.expires_at == datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("case, argv_tail, stdin, environ, says", [
    ("bad JSON", ["--tokens-stdin"], '{"access_token": "' + SECRET + '",', {}, "not valid JSON"),
    ("not an object", ["--tokens-stdin"], json.dumps([SECRET]), {}, "must be a JSON object"),
    ("no access token", ["--tokens-stdin"], json.dumps({"refresh_token": REFRESH}), {}, "no access_token"),
    ("bad expiry", ["--tokens-stdin"], json.dumps({"access_token": SECRET, "expires_in": "soon"}), {},
     "expires_in must be"),
    ("two expiries", ["--tokens-stdin"], json.dumps({"access_token": SECRET, "expires_in": 60,
                                                     "expires_at": "2030-01-01T00:00Z"}), {}, "not both"),
    ("naive expiry", ["--tokens-stdin"], json.dumps({"access_token": SECRET, "expires_at": "2030-01-01T00:00"}),
     {}, "time zone"),
    ("token on the command line", [SECRET, "--tokens-stdin"], json.dumps({"access_token": "x"}), {},
     "never from the command line"),
    ("token as an option", ["--access-token", SECRET, "--tokens-stdin"], json.dumps({"access_token": "x"}), {},
     "never from the command line"),
    ("token given as the variable's name", ["--tokens-env", SECRET], "", {}, "NAME of an environment variable"),
    ("variable unset", ["--tokens-env", "NOT_SET_ANYWHERE_XYZ"], "", {}, "not set or empty"),
    ("no keys", ["--tokens-stdin"], json.dumps({"access_token": SECRET}), {credentials.KEYS_ENV: ""},
     "no encryption key"),
    ("bad keys", ["--tokens-stdin"], json.dumps({"access_token": SECRET}), {credentials.KEYS_ENV: SECRET},
     "not a Fernet key"),
])
def test_bad_connect_input_is_one_line_exit_2_without_the_token(conn, unique, keys, monkeypatch, capsys,
                                                                case, argv_tail, stdin, environ, says):
    account = f"bad-{unique}"
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    tokens_on_stdin(monkeypatch, stdin)
    assert run(["accounts", "connect", "shipstation", account, *argv_tail]) == 2, case
    out, err = capsys.readouterr()
    assert "SECRET" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err
    assert get_account(conn, "shipstation", account) is None  # nothing registered, nothing stored


def test_a_misplaced_token_in_the_account_position_is_not_echoed(database_url, keys, monkeypatch, capsys):
    """Google's ids are validated by its declaration; its message quotes the id, so connect does not."""
    tokens_on_stdin(monkeypatch, json.dumps({"access_token": "x"}))
    assert run(["accounts", "connect", "google_ads", SECRET, "--tokens-stdin"]) == 2
    out, err = capsys.readouterr()
    assert "SECRET" not in out + err and "not a valid google_ads account id" in err


def test_set_changes_automation_preferences_and_rejects_bad_values(conn, unique, capsys):
    account = f"prefs-{unique}"
    assert run(["accounts", "add", "shipstation", account, "--credentials-env", "K"]) == 0
    assert run(["accounts", "set", "shipstation", account, "--disable", "--cadence", "daily",
                "--lookback-days", "7"]) == 0
    assert "manual only" in capsys.readouterr().out
    found = get_account(conn, "shipstation", account)
    assert (found.sync_enabled, found.cadence, found.lookback_days) == (False, "daily", 7)
    assert run(["accounts", "set", "shipstation", account, "--enable"]) == 0
    assert f"shipstation/{account} automation: daily, lookback 7 d" in capsys.readouterr().out
    assert get_account(conn, "shipstation", account).sync_enabled

    for bad, says in [(["--cadence", "weekly"], "cadence must be one of"),
                      (["--lookback-days", "-1"], "lookback days must be between"),
                      ([], "nothing to change")]:
        assert run(["accounts", "set", "shipstation", account, *bad]) == 2
        assert says in capsys.readouterr().err
    assert run(["accounts", "set", "shipstation", account, "--enable", "--disable"]) == 2
    assert run(["accounts", "set", "shopify", f"{unique}.myshopify.com", "--cadence", "hourly"]) == 2
    assert "follow fixed schedules" in capsys.readouterr().err
    found = get_account(conn, "shipstation", account)
    assert (found.sync_enabled, found.cadence, found.lookback_days) == (True, "daily", 7)  # unchanged
    assert run(["accounts", "set", "shipstation", f"missing-{unique}", "--disable"]) == 1
    assert "no such account" in capsys.readouterr().out
    # The same checks, one line and exit 2 rather than a traceback, for add and (de)activate.
    assert run(["accounts", "add", "shipstation", f"new-{unique}", "--credentials-env", "K", "--cadence", "weekly"]) == 2
    assert "cadence must be one of" in capsys.readouterr().err
    assert get_account(conn, "shipstation", f"new-{unique}") is None
    for argv in (["add", "google_ads", "123", "--credentials-env", "K"], ["activate", "google_ads", "123"],
                 ["set", "google_ads", "123", "--disable"], ["days", "google_ads", "123"]):
        assert run(["accounts", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "customer id is 10 digits" in err and "Traceback" not in err


def test_list_shows_owner_automation_and_needs_reauthorisation(conn, unique, keys, monkeypatch, capsys):
    revoked, fine = f"revoked-{unique}", f"fine-{unique}"
    assert connect(monkeypatch, revoked, {"access_token": SECRET}, "--owner", "user-r") == 0
    assert run(["accounts", "add", "shipstation", fine, "--credentials-env", "KEY_FINE", "--cadence", "hourly",
                "--lookback-days", "3"]) == 0
    assert mark_needs_reauth(conn, "shipstation", revoked, "invalid_grant: revoked by the user")
    capsys.readouterr()

    assert run(["accounts", "list", "shipstation"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["provider", "account", "state", "owner", "credentials", "automation", "auth"]
    listed = {line.split()[1]: line for line in rows}
    assert "user-r" in listed[revoked] and "oauth tokens" in listed[revoked]
    since = get_account(conn, "shipstation", revoked).auth_error_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert listed[revoked].endswith(f"needs re-authorisation since {since} UTC: invalid_grant: revoked by the user")
    assert "$KEY_FINE" in listed[fine] and "hourly, lookback 3 d" in listed[fine] and listed[fine].endswith(" ok")
    assert "SECRET" not in out

    assert run(["accounts", "list", "shipstation", "--json"]) == 0
    data = {a["account"]: a for a in json.loads(capsys.readouterr().out)}
    assert data[revoked]["needs_reauth"] is True and data[revoked]["auth_status"] == "needs_reauth"
    assert data[revoked]["auth_error_at"].startswith(since[:10]) and data[revoked]["owner"] == "user-r"
    assert data[fine] | {"credentials_env": "KEY_FINE", "cadence": "hourly", "lookback_days": 3,
                         "auth": "ok", "automation": "hourly, lookback 3 d"} == data[fine]


# ------------------------------------------------------------------------------ synced days
STREAM = ReportStream("shipstation", daily_metrics_table(
    sa.MetaData(), "cli_days_test", "metrics_daily", campaign_id="cid", campaign_name="name", date="day",
    impressions="imp", clicks="clk", spend="cost", conversions="conv", conversion_value="value", currency="cur"),
    max_window_days=3)


def _sync(conn, account: str, first: date, last: date, **kwargs) -> None:
    def pages(start, end):
        yield [{"cid": "1", "name": "C", "day": (start + timedelta(days=i)).isoformat(), "imp": 1, "clk": 1,
                "cost": "1.5", "conv": "0", "value": "0", "cur": "EUR"} for i in range((end - start).days + 1)]
    sync_report(conn, STREAM, account, first, last, pages, **kwargs)


def test_days_shows_when_each_day_was_synced_and_the_gaps(conn, unique, capsys):
    account = f"days-{unique}"
    assert run(["accounts", "add", "shipstation", account, "--credentials-env", "K"]) == 0
    assert run(["accounts", "days", "shipstation", account]) == 0
    assert "no report synced yet" in capsys.readouterr().out

    today = datetime.now(UTC).date()  # the account has no time zone yet: UTC
    _sync(conn, account, today - timedelta(days=9), today - timedelta(days=6), backfill=True)
    _sync(conn, account, today - timedelta(days=2), today)
    assert run(["accounts", "days", "shipstation", account, "--days", "12"]) == 0
    out = capsys.readouterr().out
    gaps = (f"{today - timedelta(days=11)}..{today - timedelta(days=10)},"
            f" {today - timedelta(days=5)}..{today - timedelta(days=3)}")
    assert f"{STREAM.name}: 7 of 12 days synced; gaps: {gaps}" in out
    assert f"  {today - timedelta(days=4)}  gap: never synced" in out
    assert f"  {today}  synced {datetime.now(UTC):%Y-%m-%d}" in out
    assert "backfilled 20" in out and "last restated 20" in out

    assert run(["accounts", "days", "shipstation", account, "--days", "12", "--json"]) == 0
    (stream,) = json.loads(capsys.readouterr().out)["streams"]
    assert stream["synced"] == 7 and len(stream["days"]) == 12
    missing = {d["day"] for d in stream["days"] if d["synced_at"] is None}
    assert missing == {str(today - timedelta(days=n)) for n in (11, 10, 5, 4, 3)}
    assert run(["accounts", "days", "shipstation", f"missing-{unique}"]) == 1


def test_days_are_the_accounts_own_calendar_days(conn, unique):
    """An account in UTC+14 is already on tomorrow: its last N days end there."""
    from sync_pipelines.cli_days import account_days

    account = f"tz-{unique}"
    assert run(["accounts", "add", "shipstation", account, "--credentials-env", "K"]) == 0
    set_timezone(conn, "shipstation", account, "Pacific/Kiritimati")
    _sync(conn, account, date(2026, 12, 2), date(2026, 12, 2))
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 2026-12-02 02:00 in Kiritimati
    report = account_days(conn, get_account(conn, "shipstation", account), 3, now)
    assert (report["first"], report["last"]) == (date(2026, 11, 30), date(2026, 12, 2))
    (stream,) = report["streams"]
    assert stream["synced"] == 1 and stream["gaps"] == [(date(2026, 11, 30), date(2026, 12, 1))]


# ------------------------------------------------------------------------------ rotation
@pytest.fixture
def own_database(postgres_server, unique, monkeypatch):
    """Rotation touches every stored token: a database of its own, not the session's shared rows."""
    url = postgres_server.ensure_database(f"rotate_{unique}")
    monkeypatch.setenv("DATABASE_URL", url)
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def test_connect_is_all_or_nothing(own_database, unique, keys, monkeypatch):
    """Registration and tokens land in one transaction: a failure storing the tokens leaves no
    account without tokens behind (in a fresh database, tables created by that attempt included)."""
    from sync_pipelines import cli_accounts

    real_store = cli_accounts.credentials.store

    def failing_store(*args, **kwargs):
        raise RuntimeError("the tokens could not be stored")

    monkeypatch.setattr(cli_accounts.credentials, "store", failing_store)
    with pytest.raises(RuntimeError):
        connect(monkeypatch, "atomic", {"access_token": SECRET})
    assert own_database.execute("SELECT to_regclass('sync.integrations') IS NULL"
                                " OR NOT EXISTS (SELECT FROM sync.integrations)").fetchone()[0]
    monkeypatch.setattr(cli_accounts.credentials, "store", real_store)
    assert connect(monkeypatch, "atomic", {"access_token": SECRET}) == 0
    assert credentials.load(own_database, keys, "shipstation", "atomic").access_token == SECRET


def test_rotate_reencrypts_with_the_first_key(own_database, unique, monkeypatch, capsys):
    old, new = KEY, Fernet.generate_key().decode()
    monkeypatch.setenv(credentials.KEYS_ENV, old)
    for account in ("a", "b"):
        assert connect(monkeypatch, account, {"access_token": f"{SECRET}-{account}", "refresh_token": REFRESH}) == 0
    credentials.store(own_database, Cipher([old]), "shopify", "s.myshopify.com", credentials.Tokens("shop-token"))
    before = stored_bytes(own_database, "a")
    with pytest.raises(CredentialsError):
        credentials.load(own_database, Cipher([new]), "shipstation", "a")
    capsys.readouterr()

    monkeypatch.setenv(credentials.KEYS_ENV, f"{new},{old}")
    assert run(["credentials", "rotate", "--provider", "shipstation"]) == 0
    out, err = capsys.readouterr()
    assert "re-encrypted the shipstation tokens of 2 account(s)" in out and "SECRET" not in out + err
    assert stored_bytes(own_database, "a") != before
    tokens = credentials.load(own_database, Cipher([new]), "shipstation", "a")  # the old key is not needed
    assert (tokens.access_token, tokens.refresh_token) == (f"{SECRET}-a", REFRESH)
    with pytest.raises(CredentialsError):  # another provider's rows were left alone
        credentials.load(own_database, Cipher([new]), "shopify", "s.myshopify.com")
    assert run(["credentials", "rotate"]) == 0
    assert "of 3 account(s)" in capsys.readouterr().out
    assert credentials.load(own_database, Cipher([new]), "shopify", "s.myshopify.com").access_token == "shop-token"


def test_rotate_refuses_without_keys_and_stops_at_a_row_no_key_opens(own_database, monkeypatch, capsys):
    monkeypatch.setenv(credentials.KEYS_ENV, "")
    assert run(["credentials", "rotate"]) == 2
    assert "no encryption key" in capsys.readouterr().err
    stranger = Fernet.generate_key().decode()
    credentials.store(own_database, Cipher([stranger]), "shipstation", "lost", credentials.Tokens(SECRET))
    monkeypatch.setenv(credentials.KEYS_ENV, KEY)
    before = stored_bytes(own_database, "lost")
    assert run(["credentials", "rotate"]) == 1
    out, err = capsys.readouterr()
    assert "shipstation [lost]" in err and "nothing was re-encrypted" in err and "SECRET" not in out + err
    assert stored_bytes(own_database, "lost") == before
    assert run(["credentials", "rotate", "--provider", "woocommerce"]) == 2


# ------------------------------------------------------------------------------ status
def test_status_lists_accounts_needing_reauthorisation_and_failed_batch_accounts(conn, unique, dagster_env,
                                                                                 monkeypatch, capsys):
    for key, value in dagster_env.items():
        if key.startswith("DAGSTER_"):
            monkeypatch.setenv(key, value)
    revoked, failing, fine, parked = (f"{name}-{unique}" for name in ("revoked", "failing", "fine", "parked"))
    for account in (revoked, failing, fine, parked):
        assert run(["accounts", "add", "shipstation", account, "--credentials-env", "K"]) == 0
    assert mark_needs_reauth(conn, "shipstation", revoked, "invalid_grant: Token has been revoked")
    assert mark_needs_reauth(conn, "shipstation", parked, "invalid_grant")
    assert run(["accounts", "deactivate", "shipstation", parked]) == 0  # nobody waits for a deactivated one
    day = date(2026, 11, 30)
    outcomes.record(conn, [
        outcomes.Outcome("ads_sync", "shipstation", failing, f"run-a-{unique}", ok=True),
        outcomes.Outcome("ads_sync", "shipstation", failing, f"run-b-{unique}", ok=False,
                         error="HTTP 500 from the API after 5 retries", first_day=day, last_day=day),
        outcomes.Outcome("ads_sync", "shipstation", fine, f"run-b-{unique}", ok=False, error="old failure"),
        outcomes.Outcome("ads_sync", "shipstation", fine, f"run-c-{unique}", ok=True),
        outcomes.Outcome("ads_sync", "shipstation", revoked, f"run-b-{unique}", ok=False, needs_reauth=True,
                         error="invalid_grant"),
    ])
    capsys.readouterr()

    assert run(["status", "--days", "1", "--provider", "shipstation", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["runs"], list)
    reauth = {a["account"]: a for a in data["needs_reauthorisation"]}
    assert revoked in reauth and parked not in reauth
    assert reauth[revoked]["reason"] == "invalid_grant: Token has been revoked" and reauth[revoked]["since"]
    failed = {a["account"]: a for a in data["failed_accounts"]}
    assert failing in failed and fine not in failed and revoked not in failed  # listed once, as re-authorisation
    assert failed[failing] | {"run_id": f"run-b-{unique}", "job": "ads_sync", "first_day": "2026-11-30",
                              "error": "HTTP 500 from the API after 5 retries"} == failed[failing]

    assert run(["status", "--days", "1", "--provider", "shipstation"]) == 0
    out = capsys.readouterr().out
    assert "Accounts that need re-authorisation" in out and f"| shipstation | {revoked} |" in out
    assert "Accounts whose latest batch run failed" in out and f"| shipstation | {failing} | ads_sync |" in out
    assert f"| {fine} |" not in out and f"| {parked} |" not in out


def test_status_without_an_app_database_says_so(dagster_env, monkeypatch, capsys):
    """Dagster's storage configured, DATABASE_URL not: the accounts part is not guessed."""
    for key, value in dagster_env.items():
        if key.startswith("DAGSTER_"):
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert run(["status", "--days", "1"]) == 0
    assert "accounts needing attention: not read (DATABASE_URL is not set)" in capsys.readouterr().out
    assert run(["status", "--days", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["needs_reauthorisation"] is None and data["failed_accounts"] is None


def test_a_provider_with_automation_and_fixed_schedules_takes_cadence_and_lookback(conn, unique, monkeypatch,
                                                                                  capsys):
    """Ad platforms have a nightly schedule *and* an automation honouring each account's cadence:
    `--cadence` is accepted, and the list shows both with the lookback."""
    import sync_pipelines.cli_accounts as cli_accounts
    from sync_pipelines.core.providers import ProviderDeclaration

    declared = dict(cli_accounts.discover_providers(cli_accounts.sync_pipelines.defs))
    declared["adsdemo"] = ProviderDeclaration("adsdemo", schedules={"nightly": "0 2 * * *"}, automation=True)
    monkeypatch.setattr(cli_accounts, "discover_providers", lambda package: declared)
    account = f"ads-{unique}"
    assert run(["accounts", "add", "adsdemo", account, "--credentials-env", "K", "--cadence", "hourly"]) == 0
    assert run(["accounts", "set", "adsdemo", account, "--cadence", "daily", "--lookback-days", "4"]) == 0
    assert "automation: automation daily + nightly daily 02:00 UTC, lookback 4 d" in capsys.readouterr().out
    assert run(["accounts", "list", "adsdemo"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if account in line]
    assert "automation daily + nightly daily 02:00 UTC, lookback 4 d" in line


def test_set_timezone_moves_a_stores_local_schedule_and_refuses_unknown_zones(conn, unique, capsys):
    store = f"tz{unique}"
    assert run(["accounts", "add", "ecomanager", f"https://{store}.ecomanager.dz", "--credentials-env", "K"]) == 0
    assert get_account(conn, "ecomanager", store).timezone is None  # the provider's default applies
    assert run(["accounts", "set", "ecomanager", store, "--timezone", "Europe/Paris"]) == 0
    assert f"ecomanager/{store} time zone: Europe/Paris" in capsys.readouterr().out
    assert get_account(conn, "ecomanager", store).timezone == "Europe/Paris"
    assert run(["accounts", "set", "ecomanager", store, "--timezone", "Mars/Olympus"]) == 2
    assert "unknown time zone" in capsys.readouterr().err
    assert get_account(conn, "ecomanager", store).timezone == "Europe/Paris"
