"""Ad platforms at scale through the real Dagster daemon: 1,000 accounts × 90 days of history.

    .venv/bin/python -m benchmarks.ads_sync [--accounts 1000] [--days 90] [--campaigns 5]
        [--platforms google_ads,meta_ads,linkedin_ads,tiktok_ads] [--only unthrottled|throttled] [--merge] [--no-write]

A measurement, not a test: nothing here asserts on timings. It prints a summary and writes the
figures to ``benchmarks/results/ads_sync.json``; method and figures are in ``docs/benchmarks-ads.md``.

Measured where users meet it. Per scenario, a fresh app database and Dagster database on a
throwaway embedded PostgreSQL (``fast=False``), the platform's sandbox in its own process
(``python -m sync_pipelines.sandbox.google_ads --customer-count N``) and ``dagster-daemon run -w
workspace.yaml`` with the project's ``dagster.yaml`` (run queue, the ``sync/provider`` tag limit of
4, DefaultRunLauncher: every run a new process of the code server). ``--accounts`` accounts are
connected as ``accounts connect`` leaves them — registry row and encrypted OAuth tokens (an access
token already expired, so each account refreshes once, as it would an hour after connecting).

1. **Backfill on connect**: nobody launches anything; the automation sensor's first tick finds every
   account never backfilled and asks for batch runs (`SYNC_REPORT_BATCH_SIZE`, at most
   `SYNC_REPORT_MAX_RUNS_PER_TICK` a tick). Wall time is from the daemon's start until every
   account has ``sync.report_accounts.backfilled_at`` (polled every 0.5 s), so code-location load,
   the sensor tick, queueing and every run's process start are inside it. ``--days`` other than
   the policy's 90 is passed through `SYNC_REPORT_BACKFILL_DAYS`.
2. **Nightly**: the ``<platform>_nightly`` schedule is evaluated as the scheduler would at 02:00
   (its function, against the app database) and each run request is submitted to the daemon's run
   queue with ``dagster job launch`` (concurrently, one CLI process each; the scheduler daemon would
   submit them from its already-loaded code location, so the CLI's own load time is reported apart).
   Timed from the first submission until its last run ends.
3. The same with the sandbox's quota errors on (``--throttle-*``: ``RESOURCE_EXHAUSTED`` with a
   ``retryDelay``, counted per developer token, i.e. every customer together): how much the
   throttling stretches each pass, and that nothing fails.

Counted from the systems themselves: runs by job, trigger, kind and status (Dagster's run storage),
requests per account by kind (the sandbox's ``/_sandbox/stats``), rows and synced days (the app
database), failures (failed runs, ``sync.account_outcomes``, accounts needing re-authorisation),
peak RSS (``VmHWM``) of each run process, the code server, the daemon and the sandbox, sampled
every 0.25 s, and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import (
    evaluate_schedule,
    PROJECT_ROOT,
    RESULTS_DIR,
    SandboxProcess,
    ThrowawayPostgres,
    machine_facts,
    results_header,
    write_results,
)
from benchmarks.realtime_daemon import DaemonProcess, percentiles

SAMPLE_SECONDS = 0.25
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
# Google: quota per developer token (every customer together); Meta: Business Use Case calls per ad account.
DEFAULT_THROTTLES = {"google_ads": (100, 10.0, "DEVELOPER"), "meta_ads": (4, 30.0, "ACCOUNT")}
ENV_PREFIXES_DROPPED = ("DAGSTER_", "GOOGLE_ADS_", "META_", "LINKEDIN_ADS_", "TIKTOK_", "SHOPIFY_", "SHIPSTATION_",
                        "SYNC_REPORT_", "SYNC_CREDENTIALS_KEYS")


# ----------------------------------------------------------------------------- platforms
@dataclass(frozen=True)
class Throttle:
    """The sandbox's quota: `requests` per `window_seconds` per `scope` key."""

    requests: int
    window_seconds: float
    scope: str = "DEVELOPER"


@dataclass
class Platform:
    """What the benchmark needs to know of one ad platform: its sandbox, how an account is
    connected, and the names its rows and runs go under."""

    name: str
    table: str  # schema.table of its raw rows
    start_sandbox: Callable[..., SandboxProcess]  # (ids, campaigns, throttle, log_path) -> running sandbox
    account_ids: Callable[[int], list[str]]
    connect: Callable[[Any, Any, str], None]  # (conn, cipher, account): registry row + stored tokens
    env: Callable[[SandboxProcess], dict[str, str]]  # what the daemon and its runs need to reach it
    api_requests: Callable[[dict], dict[str, int]]  # sandbox stats -> requests per account
    token_requests: Callable[[dict], int]

    @property
    def job(self) -> str:
        return f"{self.name}_sync"

    @property
    def stream(self) -> str:
        return f"{self.name}/{self.table.split('.')[1]}"


GOOGLE_REFRESH_TOKEN = "1//sandbox-benchmark-refresh-token"
GOOGLE_FIRST_ID = 1_000_000_000


class GoogleAdsSandboxProcess(SandboxProcess):
    def __init__(self, ids: list[str], campaigns: int, throttle: Throttle | None, log_path: Path):
        first = int(ids[0])
        assert ids == [f"{first + i:010d}" for i in range(len(ids))], "consecutive ids"
        command = [sys.executable, "-m", "sync_pipelines.sandbox.google_ads", "--host", "127.0.0.1", "--port", "0",
                   "--customer-count", str(len(ids)), "--first-customer-id", ids[0], "--campaigns", str(campaigns),
                   "--refresh-token", GOOGLE_REFRESH_TOKEN]
        if throttle is not None:
            command += ["--throttle-requests", str(throttle.requests), "--throttle-window-seconds",
                        f"{throttle.window_seconds:g}", "--throttle-scope", throttle.scope]
        super().__init__(command, ready_pattern=r"Google Ads sandbox on (http://\S+)", log_path=log_path,
                         thread_name="google-ads-sandbox-stdout")


def _google_connect(conn: Any, cipher: Any, account: str) -> None:
    from sync_pipelines.core import credentials
    from sync_pipelines.core.registry import upsert_account
    from sync_pipelines.defs.google_ads.provider import DECLARATION, NAME

    upsert_account(conn, DECLARATION, account, credentials_env="", owner=f"user-{int(account) % 97}")
    credentials.store(conn, cipher, NAME, account, credentials.Tokens(
        "expired-access-token", GOOGLE_REFRESH_TOKEN, datetime.now(UTC) - timedelta(minutes=5)))


def _google_env(sandbox: SandboxProcess) -> dict[str, str]:
    from sync_pipelines.sandbox.google_ads import CLIENT_ID, CLIENT_SECRET, DEVELOPER_TOKEN

    return {"GOOGLE_ADS_BASE_URL": sandbox.url, "GOOGLE_ADS_TOKEN_URL": f"{sandbox.url}/token",
            "GOOGLE_ADS_DEVELOPER_TOKEN": DEVELOPER_TOKEN, "GOOGLE_ADS_CLIENT_ID": CLIENT_ID,
            "GOOGLE_ADS_CLIENT_SECRET": CLIENT_SECRET}


GOOGLE_ADS = Platform(
    name="google_ads", table="google_ads.campaign_metrics_daily", start_sandbox=GoogleAdsSandboxProcess,
    account_ids=lambda n: [f"{GOOGLE_FIRST_ID + i:010d}" for i in range(n)],
    connect=_google_connect, env=_google_env,
    api_requests=lambda stats: dict(stats.get("requests_by_customer", {})),
    token_requests=lambda stats: sum(stats.get("oauth", {}).values()),
)

META_FIRST_ID = 200_000_000_000


class MetaAdsSandboxProcess(SandboxProcess):
    def __init__(self, ids: list[str], campaigns: int, throttle: Throttle | None, log_path: Path):
        command = [sys.executable, "-m", "sync_pipelines.sandbox.meta_ads", "--host", "127.0.0.1", "--port", "0",
                   "--account-count", str(len(ids)), "--first-account-id", ids[0], "--campaigns", str(campaigns)]
        if throttle is not None:  # Meta counts per ad account (Business Use Case limits)
            command += ["--throttle-calls", str(throttle.requests), "--throttle-window-seconds",
                        f"{throttle.window_seconds:g}", "--throttle-block-seconds", f"{throttle.window_seconds:g}"]
        super().__init__(command, ready_pattern=r"Meta Marketing API sandbox on (http://[^/\s]+)/", log_path=log_path,
                         thread_name="meta-ads-sandbox-stdout")


def _meta_connect(conn: Any, cipher: Any, account: str) -> None:
    from sync_pipelines.core import credentials
    from sync_pipelines.core.registry import upsert_account
    from sync_pipelines.defs.meta_ads.provider import DECLARATION, NAME
    from sync_pipelines.sandbox.meta_ads.app import DEFAULT_TOKEN

    upsert_account(conn, DECLARATION, account, credentials_env="", owner=f"user-{int(account) % 97}")
    # A long-lived token as connecting leaves it (~60 days): no exchange due for weeks.
    credentials.store(conn, cipher, NAME, account, credentials.Tokens(
        DEFAULT_TOKEN, None, datetime.now(UTC) + timedelta(days=50)))


def _meta_env(sandbox: SandboxProcess) -> dict[str, str]:
    return {"META_ADS_BASE_URL": sandbox.url, "META_APP_ID": "sandbox-meta-app",
            "META_APP_SECRET": "sandbox-meta-app-secret"}


META_ADS = Platform(
    name="meta_ads", table="meta_ads.campaign_insights_daily", start_sandbox=MetaAdsSandboxProcess,
    account_ids=lambda n: [str(META_FIRST_ID + i) for i in range(n)],
    connect=_meta_connect, env=_meta_env,
    api_requests=lambda stats: dict(stats.get("requests_by_account", {})),
    token_requests=lambda stats: int(stats.get("token_exchanges", 0)),
)

LINKEDIN_FIRST_ID = 600_000_000
LINKEDIN_REFRESH_TOKEN = "AQR-sandbox-benchmark-refresh-token"
LINKEDIN_ACCESS_TOKEN = "AQV-sandbox-benchmark-access-token"


class LinkedInAdsSandboxProcess(SandboxProcess):
    def __init__(self, ids: list[str], campaigns: int, throttle: Throttle | None, log_path: Path):
        assert throttle is None, "the LinkedIn sandbox has no quota to turn on (only injected 429s)"
        command = [sys.executable, "-m", "sync_pipelines.sandbox.linkedin_ads", "--host", "127.0.0.1", "--port", "0",
                   "--account-count", str(len(ids)), "--first-account-id", ids[0], "--campaigns", str(campaigns),
                   "--big-account", "", "--refresh-token", LINKEDIN_REFRESH_TOKEN,
                   "--access-token", LINKEDIN_ACCESS_TOKEN]
        super().__init__(command, ready_pattern=r"LinkedIn Marketing API sandbox on (http://[^/\s]+)/rest",
                         log_path=log_path, thread_name="linkedin-ads-sandbox-stdout")


def _linkedin_connect(conn: Any, cipher: Any, account: str) -> None:
    from sync_pipelines.core import credentials
    from sync_pipelines.core.registry import upsert_account
    from sync_pipelines.defs.linkedin_ads.provider import DECLARATION, NAME

    upsert_account(conn, DECLARATION, account, credentials_env="", owner=f"user-{int(account) % 97}")
    # The grant as connecting leaves it: a 60-day access token and a refresh token lapsing in a year.
    now = datetime.now(UTC)
    credentials.store(conn, cipher, NAME, account, credentials.Tokens(
        LINKEDIN_ACCESS_TOKEN, LINKEDIN_REFRESH_TOKEN, now + timedelta(days=59),
        refresh_expires_at=now + timedelta(days=364)))


def _linkedin_env(sandbox: SandboxProcess) -> dict[str, str]:
    from sync_pipelines.sandbox.linkedin_ads import CLIENT_ID, CLIENT_SECRET

    return {"LINKEDIN_ADS_BASE_URL": sandbox.url, "LINKEDIN_ADS_TOKEN_URL": f"{sandbox.url}/oauth/v2/accessToken",
            "LINKEDIN_ADS_CLIENT_ID": CLIENT_ID, "LINKEDIN_ADS_CLIENT_SECRET": CLIENT_SECRET}


def _linkedin_requests(stats: dict) -> dict[str, int]:
    """Per ad account, every kind of call (adAnalytics names its accounts in the query, so the
    sandbox's per-path count does not see them)."""
    found: dict[str, int] = {}
    for per in stats.get("calls", {}).values():
        for account, n in per.items():
            found[account] = found.get(account, 0) + n
    return found


LINKEDIN_ADS = Platform(
    name="linkedin_ads", table="linkedin_ads.campaign_analytics_daily", start_sandbox=LinkedInAdsSandboxProcess,
    account_ids=lambda n: [str(LINKEDIN_FIRST_ID + i) for i in range(n)],
    connect=_linkedin_connect, env=_linkedin_env, api_requests=_linkedin_requests,
    token_requests=lambda stats: int(stats.get("token_refreshes", 0)),
)

TIKTOK_FIRST_ID = 7_100_000_000
TIKTOK_TOKEN = "sandbox-tiktok-benchmark-token"
TIKTOK_APP_ID, TIKTOK_APP_SECRET = "sandbox-tiktok-app", "sandbox-tiktok-app-secret"


class TikTokAdsSandboxProcess(SandboxProcess):
    def __init__(self, ids: list[str], campaigns: int, throttle: Throttle | None, log_path: Path):
        assert throttle is None, "no throttled TikTok scenario yet"
        command = [sys.executable, "-m", "sync_pipelines.sandbox.tiktok_ads", "--host", "127.0.0.1", "--port", "0",
                   "--advertiser-count", str(len(ids)), "--first-advertiser-id", ids[0], "--campaigns", str(campaigns),
                   "--token", TIKTOK_TOKEN, "--app-id", TIKTOK_APP_ID, "--app-secret", TIKTOK_APP_SECRET]
        super().__init__(command, ready_pattern=r"TikTok Business API sandbox on (http://[^/\s]+)/open_api",
                         log_path=log_path, thread_name="tiktok-ads-sandbox-stdout")


def _tiktok_connect(conn: Any, cipher: Any, account: str) -> None:
    from sync_pipelines.core import credentials
    from sync_pipelines.core.registry import upsert_account
    from sync_pipelines.defs.tiktok_ads.provider import DECLARATION, NAME

    upsert_account(conn, DECLARATION, account, credentials_env="", owner=f"user-{int(account) % 97}")
    # TikTok's advertiser tokens are long-term: no expiry, no refresh token.
    credentials.store(conn, cipher, NAME, account, credentials.Tokens(TIKTOK_TOKEN))


def _tiktok_env(sandbox: SandboxProcess) -> dict[str, str]:
    return {"TIKTOK_ADS_BASE_URL": sandbox.url, "TIKTOK_APP_ID": TIKTOK_APP_ID, "TIKTOK_APP_SECRET": TIKTOK_APP_SECRET}


TIKTOK_ADS = Platform(
    name="tiktok_ads", table="tiktok_ads.campaign_metrics_daily", start_sandbox=TikTokAdsSandboxProcess,
    account_ids=lambda n: [str(TIKTOK_FIRST_ID + i) for i in range(n)],
    connect=_tiktok_connect, env=_tiktok_env,
    api_requests=lambda stats: dict(stats.get("requests_by_advertiser", {})),
    token_requests=lambda stats: int(stats.get("token_refreshes", 0)),
)

PLATFORMS = {"google_ads": GOOGLE_ADS, "meta_ads": META_ADS, "linkedin_ads": LINKEDIN_ADS, "tiktok_ads": TIKTOK_ADS}


def available_platforms() -> list[str]:
    """The platforms on this checkout (Meta joins once ``defs/meta_ads`` and its entry exist)."""
    return [name for name in PLATFORMS if (PROJECT_ROOT / "sync_pipelines" / "defs" / name / "definitions.py").exists()]


# ----------------------------------------------------------------------------- sampling
def _hwm_mb(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a live process, MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


class Sampler(threading.Thread):
    """Every SAMPLE_SECONDS: the daemon's process tree (run processes are the code server's
    multiprocessing children), their peak RSS and CPU, the sandboxes', and the backfill count."""

    def __init__(self, daemon_pid: int, sandboxes: dict[str, SandboxProcess], app_url: str, streams: list[str]):
        super().__init__(name="ads-bench-sampler", daemon=True)
        self.daemon_pid, self.sandboxes, self.app_url, self.streams = daemon_pid, sandboxes, app_url, streams
        self.run_peaks: dict[int, float] = {}
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, user+system seconds at last sight)
        self.peaks: dict[str, float] = {}  # role -> peak MB (daemon, code_server, sandbox:<platform>)
        self.backfilled = 0
        self.timeline: list[tuple[float, int]] = []  # (unix time, backfilled) at each change
        self.load: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil
        import psycopg

        with psycopg.connect(self.app_url, autocommit=True) as conn:
            last_db = 0.0
            while not self.stop.is_set():
                self._sample_processes(psutil)
                now = time.time()
                if now - last_db >= 0.5:
                    last_db = now
                    self._sample_backfill(conn, now)
                    self.load.append((now, os.getloadavg()[0]))
                self.stop.wait(SAMPLE_SECONDS)

    def _sample_processes(self, psutil: Any) -> None:
        try:
            daemon = psutil.Process(self.daemon_pid)
            tree = [(daemon, "daemon")]
            for child in daemon.children(recursive=True):
                cmd = " ".join(child.cmdline())
                # "run" is a candidate: `run_pids` says which of them Dagster started as runs
                role = ("run" if "spawn_main" in cmd else "code_server" if "grpc" in cmd
                        else "resource_tracker" if "resource_tracker" in cmd else "other")
                tree.append((child, role))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            tree = []
        tree += [(psutil.Process(p.proc.pid), f"sandbox:{name}") for name, p in self.sandboxes.items()
                 if p.proc.poll() is None]
        for proc, role in tree:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                hwm = _hwm_mb(proc.pid)
                times = proc.cpu_times()
                self.cpu[proc.pid] = (role, times.user + times.system + times.children_user + times.children_system
                                      if role == "daemon" else times.user + times.system)
                if hwm is None:
                    continue
                if role == "run":
                    self.run_peaks[proc.pid] = max(hwm, self.run_peaks.get(proc.pid, 0.0))
                else:
                    self.peaks[role] = max(hwm, self.peaks.get(role, 0.0))

    def _sample_backfill(self, conn: Any, now: float) -> None:
        import psycopg

        try:
            n = conn.execute("SELECT count(*) FROM sync.report_accounts WHERE stream = ANY(%s)"
                             " AND backfilled_at IS NOT NULL", (self.streams,)).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            n = 0
        if n != self.backfilled:
            self.backfilled = n
            self.timeline.append((now, n))

    def cpu_seconds_by_role(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            totals[role] = round(totals.get(role, 0.0) + seconds, 1)
        return totals


# ----------------------------------------------------------------------------- Dagster's run storage
def runs_between(dagster_url: str, since: float, until: float) -> list[dict[str, Any]]:
    """Runs created in [since, until], with their tags, queue wait and duration."""
    import psycopg

    with psycopg.connect(dagster_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT r.run_id, r.pipeline_name, r.status, extract(epoch FROM r.create_timestamp), r.start_time,"
            " r.end_time, (SELECT coalesce(jsonb_object_agg(t.key, t.value), '{}') FROM run_tags t"
            " WHERE t.run_id = r.run_id) FROM runs r"
            " WHERE r.create_timestamp >= to_timestamp(%s) AT TIME ZONE 'UTC'"  # stored as UTC
            " AND r.create_timestamp <= to_timestamp(%s) AT TIME ZONE 'UTC'", (since, until)).fetchall()
    return [{"run_id": rid, "job": job, "status": status, "created": float(created), "started": start, "ended": end,
             "tags": tags} for rid, job, status, created, start, end, tags in rows]


def run_pids(dagster_url: str, run_ids: list[str]) -> dict[int, str]:
    """pid → run id, from the engine event Dagster writes when it starts a run's process ("Started
    process for run (pid: N)."): other multiprocessing children of the code server are not runs."""
    import psycopg

    with psycopg.connect(dagster_url, autocommit=True) as conn:
        rows = conn.execute("SELECT run_id, event FROM event_logs WHERE run_id = ANY(%s)"
                            " AND dagster_event_type = 'ENGINE_EVENT' AND event LIKE %s",
                            (run_ids, "%Started process for run (pid: %")).fetchall()
    found = {}
    for run_id, event in rows:
        match = re.search(r"Started process for run \(pid: (\d+)\)", event)
        if match:
            found[int(match.group(1))] = run_id
    return found


def in_flight(dagster_url: str, jobs: list[str]) -> int:
    import psycopg

    with psycopg.connect(dagster_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM runs WHERE pipeline_name = ANY(%s) AND status <> ALL(%s)",
                            (jobs, list(FINISHED))).fetchone()[0]


def measured_runs(runs: list[dict[str, Any]], jobs: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The runs of the measured jobs, and the names of any others the daemon started meanwhile
    (the code location's own schedules fire on the real clock, e.g. the hourly status report)."""
    return [r for r in runs if r["job"] in jobs], sorted(r["job"] for r in runs if r["job"] not in jobs)


def run_summary(runs: list[dict[str, Any]], run_peaks: list[float]) -> dict[str, Any]:
    by: dict[str, int] = {}
    for r in runs:
        key = " ".join(filter(None, [r["job"], r["tags"].get("sync/trigger"), r["tags"].get("sync/kind"), r["status"]]))
        by[key] = by.get(key, 0) + 1
    done = [r for r in runs if r["started"] and r["ended"]]
    return {
        "runs": len(runs), "runs_by_job_trigger_kind_status": dict(sorted(by.items())),
        "accounts_per_run": sorted(int(r["tags"].get("sync/accounts", 0)) for r in runs if "sync/accounts" in r["tags"]),
        "queue_wait_seconds": percentiles([r["started"] - r["created"] for r in done]),
        "run_duration_seconds": percentiles([r["ended"] - r["started"] for r in done]),
        "run_peak_rss_mb": percentiles(run_peaks),
    }


# ----------------------------------------------------------------------------- app database
def app_counts(app_url: str, platforms: list[Platform], since: datetime) -> dict[str, Any]:
    import psycopg

    found: dict[str, Any] = {}
    with psycopg.connect(app_url, autocommit=True) as conn:
        for p in platforms:
            rows, accounts_with_rows = conn.execute(f"SELECT count(*), count(DISTINCT account) FROM {p.table}").fetchone()
            days, synced_now = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE synced_at >= %s) FROM sync.report_days WHERE stream = %s",
                (since, p.stream)).fetchone()
            backfilled = conn.execute("SELECT count(*) FROM sync.report_accounts WHERE stream = %s"
                                      " AND backfilled_at IS NOT NULL", (p.stream,)).fetchone()[0]
            failed = conn.execute("SELECT count(*), count(DISTINCT account) FROM sync.account_outcomes"
                                  " WHERE provider = %s AND NOT ok AND recorded_at >= %s", (p.name, since)).fetchone()
            succeeded = conn.execute("SELECT count(*) FROM sync.account_outcomes WHERE provider = %s AND ok"
                                     " AND recorded_at >= %s", (p.name, since)).fetchone()[0]
            reauth = conn.execute("SELECT count(*) FROM sync.integrations WHERE provider = %s"
                                  " AND auth_status <> 'ok'", (p.name,)).fetchone()[0]
            found[p.name] = {"rows": rows, "accounts_with_rows": accounts_with_rows, "account_days_synced": days,
                             "account_days_synced_in_pass": synced_now, "accounts_backfilled": backfilled,
                             "account_syncs_ok_in_pass": succeeded, "account_failures_in_pass": failed[0],
                             "accounts_failed_in_pass": failed[1], "accounts_needing_reauth": reauth}
    return found


def connect_accounts(app_url: str, platforms: list[Platform], accounts: int, cipher: Any) -> float:
    """Every platform's accounts connected in one transaction; seconds it took."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(app_url, autocommit=True) as conn, conn.transaction():
        for p in platforms:
            for account in p.account_ids(accounts):
                p.connect(conn, cipher, account)
    return round(time.monotonic() - started, 2)


# ----------------------------------------------------------------------------- sandbox statistics
def request_stats(platforms: list[Platform], sandboxes: dict[str, SandboxProcess],
                  before: dict[str, dict], accounts: int) -> dict[str, Any]:
    """Requests each platform's sandbox saw since `before`, per account."""
    found = {}
    for p in platforms:
        now, then = sandboxes[p.name].stats(), before[p.name]
        api_now, api_then = p.api_requests(now), p.api_requests(then)
        per_account = [api_now.get(a, 0) - api_then.get(a, 0) for a in p.account_ids(accounts)]
        statuses = {k: v - then.get("status_counts", {}).get(k, 0) for k, v in now.get("status_counts", {}).items()}
        tokens = p.token_requests(now) - p.token_requests(then)
        found[p.name] = {
            "api_requests": sum(per_account),
            "api_requests_per_account": {"min": min(per_account, default=0), "max": max(per_account, default=0),
                                         "mean": round(statistics.fmean(per_account), 2) if per_account else 0},
            "token_requests": tokens, "token_requests_per_account": round(tokens / max(1, accounts), 2),
            "status_counts": {k: v for k, v in sorted(statuses.items()) if v},
            "quota_errors_429": now.get("rate_limited_429", 0) - then.get("rate_limited_429", 0),
        }
    return found


# ----------------------------------------------------------------------------- the passes
def dagster_env(server: Any, home: Path, dagster_db: str, app_url: str, extra: dict[str, str]) -> dict[str, str]:
    """The daemon's environment: the project's dagster.yaml on this run's databases, the
    platforms' sandboxes, an encryption key; nothing of the caller's Dagster or provider settings."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES_DROPPED)}
    env.update(DAGSTER_HOME=str(home), DAGSTER_PG_USERNAME="postgres", DAGSTER_PG_PASSWORD="trust",
               DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(server.port), DAGSTER_PG_DB=dagster_db,
               DATABASE_URL=app_url, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])), **extra)
    return env


def wait_for(what: str, done: Callable[[], bool], timeout: float, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


def nightly_requests(platform: Platform, app_url: str) -> list[Any]:
    """The run requests the platform's nightly schedule makes at 02:00 today (its own function,
    against the app database)."""
    tick = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    result = evaluate_schedule(platform.name, f"{platform.name}_nightly", tick, app_url)
    return result if isinstance(result, list) else []


def submit(request: Any, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`dagster job launch` of one run request: it goes to the instance's run queue, which the
    daemon dequeues under the same limits as the scheduler's runs."""
    tags = {**request.tags, "dagster/schedule_name": f"{request.tags['sync/provider']}_nightly"}
    command = [str(Path(sys.executable).parent / "dagster"), "job", "launch", "-w", str(PROJECT_ROOT / "workspace.yaml"),
               "-j", request.job_name, "--config-json", json.dumps(request.run_config), "--tags", json.dumps(tags)]
    log = open(log_path, "ab")  # noqa: SIM115 -- closed by the caller's wait
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_scenario(server: Any, work: Path, *, name: str, platforms: list[Platform], accounts: int, days: int,
                 campaigns: int, throttles: dict[str, Throttle] | None = None,
                 timeout: float = 3600.0) -> dict[str, Any]:
    """One scenario (fresh databases, sandboxes and daemon): the backfill on connect, then a
    nightly pass. `server` is an EmbeddedPostgres (``port``, ``ensure_database(name)``)."""
    from cryptography.fernet import Fernet

    from sync_pipelines.core.credentials import Cipher

    app_url, dagster_url = server.ensure_database(f"app_{name}"), server.ensure_database(f"dagster_{name}")
    key = Fernet.generate_key().decode()
    jobs, streams = [p.job for p in platforms], [p.stream for p in platforms]
    total = accounts * len(platforms)
    throttles = {p.name: throttles[p.name] for p in platforms if p.name in (throttles or {})}
    quotas = "; ".join(f"{n} quota {t.requests} per {t.window_seconds:g}s per {t.scope}" for n, t in throttles.items())
    print(f"\n[{name}] {accounts} accounts × {days} days on {', '.join(p.name for p in platforms)}"
          f"{f' ({quotas})' if quotas else ''}", flush=True)
    result: dict[str, Any] = {"name": name, "platforms": [p.name for p in platforms], "accounts_per_platform": accounts,
                              "days": days, "campaigns_per_account": campaigns,
                              "throttles": {n: t.__dict__ for n, t in throttles.items()} or None,
                              "uptime_before": _uptime()}
    with contextlib.ExitStack() as stack:
        sandboxes: dict[str, SandboxProcess] = {}
        for p in platforms:
            sandboxes[p.name] = stack.enter_context(
                p.start_sandbox(p.account_ids(accounts), campaigns, throttles.get(p.name), work / f"sandbox_{p.name}_{name}.log"))
        result["sandbox_startup_seconds"] = {n: s.startup_seconds for n, s in sandboxes.items()}
        result["connect_seconds"] = connect_accounts(app_url, platforms, accounts, Cipher([key]))
        extra = {"SYNC_CREDENTIALS_KEYS": key, **{k: v for p in platforms for k, v in p.env(sandboxes[p.name]).items()}}
        if days != 90:
            extra["SYNC_REPORT_BACKFILL_DAYS"] = str(days)
        env = dagster_env(server, work / f"home_{name}", f"dagster_{name}", app_url, extra)
        before = {n: s.stats() for n, s in sandboxes.items()}
        load_before = os.getloadavg()
        began, began_dt = time.time(), datetime.now(UTC)
        daemon = stack.enter_context(DaemonProcess(env, work / f"daemon_{name}.log"))
        sampler = Sampler(daemon.proc.pid, sandboxes, app_url, streams)
        sampler.start()
        stack.callback(sampler.stop.set)

        def alive() -> None:
            if daemon.proc.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited:\n{(work / f'daemon_{name}.log').read_text()[-3000:]}")

        # ---- pass 1: backfill on connect
        print(f"[{name}] daemon started; waiting for the automation sensor's backfills ...", flush=True)

        def backfilled() -> bool:
            alive()
            return sampler.backfilled >= total

        wait_for(f"{total} accounts backfilled", backfilled, timeout)
        all_backfilled = time.time()
        wait_for("the backfill runs to end", lambda: in_flight(dagster_url, jobs) == 0, timeout)
        ended = time.time()
        runs, others = measured_runs(runs_between(dagster_url, began, ended), jobs)
        first_created = min((r["created"] for r in runs), default=None)
        pids = run_pids(dagster_url, [r["run_id"] for r in runs])
        run_peaks = [mb for pid, mb in list(sampler.run_peaks.items()) if pid in pids]
        result["backfill"] = {
            "seconds_to_all_backfilled": round(all_backfilled - began, 1),
            "seconds_daemon_start_to_first_run": round(first_created - began, 1) if first_created else None,
            "seconds_first_run_to_all_backfilled": round(all_backfilled - first_created, 1) if first_created else None,
            "seconds_to_last_run_end": round(ended - began, 1),
            "backfilled_timeline": [(round(t - began, 1), n) for t, n in sampler.timeline],
            **run_summary(runs, run_peaks),
            "other_runs": others,
            "requests": request_stats(platforms, sandboxes, before, accounts),
            "app": app_counts(app_url, platforms, began_dt),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_1min_max": round(max((x for _, x in sampler.load), default=0.0), 2),
        }
        print(f"[{name}] backfilled {total} accounts in {result['backfill']['seconds_to_all_backfilled']}s"
              f" ({len(runs)} runs)", flush=True)

        # ---- pass 2: nightly
        before = {n: s.stats() for n, s in sandboxes.items()}
        nightly_began, nightly_dt = time.time(), datetime.now(UTC)
        requests = [r for p in platforms for r in nightly_requests(p, app_url)]
        launches = [submit(r, env, work / f"launch_{name}.log") for r in requests]
        for launch in launches:
            if launch.wait(timeout=600) != 0:
                raise RuntimeError(f"dagster job launch failed:\n{(work / f'launch_{name}.log').read_text()[-3000:]}")
        submitted = time.time()
        print(f"[{name}] nightly: {len(requests)} run requests submitted in {submitted - nightly_began:.1f}s ...",
              flush=True)

        def nightly_done() -> bool:
            alive()
            runs_now = [r for r in runs_between(dagster_url, nightly_began, time.time()) if r["job"] in jobs]
            return len(runs_now) >= len(requests) and all(r["status"] in FINISHED for r in runs_now)

        wait_for("the nightly runs to end", nightly_done, timeout)
        nightly_ended = time.time()
        runs, nightly_others = measured_runs(runs_between(dagster_url, nightly_began, nightly_ended), jobs)
        first_created = min((r["created"] for r in runs), default=nightly_began)
        pids = run_pids(dagster_url, [r["run_id"] for r in runs])
        result["nightly"] = {
            "run_requests": len(requests),
            "seconds_total": round(nightly_ended - nightly_began, 1),
            "seconds_submitting": round(submitted - nightly_began, 1),
            "seconds_first_run_created_to_last_end": round(nightly_ended - first_created, 1),
            **run_summary(runs, [mb for pid, mb in list(sampler.run_peaks.items()) if pid in pids]),
            "other_runs": nightly_others,
            "requests": request_stats(platforms, sandboxes, before, accounts),
            "app": app_counts(app_url, platforms, nightly_dt),
        }
        print(f"[{name}] nightly done in {result['nightly']['seconds_total']}s ({len(runs)} runs)", flush=True)
        sampler.stop.set()
        sampler.join(5)
        alive()
        result["peak_rss_mb"] = {role: mb for role, mb in sorted(sampler.peaks.items())}
        result["cpu_seconds_by_process_role"] = sampler.cpu_seconds_by_role()
        result["uptime_after"] = _uptime()
    return result


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def summary_line(s: dict[str, Any]) -> str:
    b, n = s["backfill"], s["nightly"]
    reqs = "; ".join(f"{p}: {r['api_requests_per_account']['mean']} API + {r['token_requests_per_account']} token"
                     f" requests/account, {r['quota_errors_429']} quota errors" for p, r in b["requests"].items())
    rows = sum(a["rows"] for a in b["app"].values())
    failed = sum(a["accounts_failed_in_pass"] for a in b["app"].values()) + sum(
        a["accounts_failed_in_pass"] for a in n["app"].values())
    return (f"{s['name']}: backfill {b['seconds_to_all_backfilled']}s ({b['runs']} runs, {rows} rows; {reqs});"
            f" nightly {n['seconds_total']}s ({n['runs']} runs); run peak RSS max {b['run_peak_rss_mb']['max']} MB;"
            f" accounts failed: {failed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ads_sync", description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=1000, help="accounts per platform")
    parser.add_argument("--days", type=int, default=90, help="days the initial backfill reads")
    parser.add_argument("--campaigns", type=int, default=5, help="campaigns per account")
    parser.add_argument("--platforms", default=",".join(available_platforms()),
                        help=f"comma-separated, of {', '.join(available_platforms())}; each alone, then together")
    parser.add_argument("--no-together", action="store_true", help="each platform alone only")
    parser.add_argument("--together-only", action="store_true", help="all the platforms together only")
    parser.add_argument("--throttle-requests", type=int, default=DEFAULT_THROTTLES["google_ads"][0],
                        help="Google Ads: searchStream requests per window per developer token")
    parser.add_argument("--throttle-window-seconds", type=float, default=DEFAULT_THROTTLES["google_ads"][1])
    parser.add_argument("--meta-throttle-calls", type=int, default=DEFAULT_THROTTLES["meta_ads"][0],
                        help="Meta: calls per window per ad account (blocked for a window beyond it)")
    parser.add_argument("--meta-throttle-window-seconds", type=float, default=DEFAULT_THROTTLES["meta_ads"][1])
    parser.add_argument("--only", choices=("unthrottled", "throttled"), default=None,
                        help="run only the scenarios with rate limits off, or only those with them on")
    parser.add_argument("--merge", action="store_true",
                        help="keep the stored scenarios this invocation does not re-run (by name)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a pass may take before giving up")
    parser.add_argument("--no-write", action="store_true", help="print only; keep the stored results")
    args = parser.parse_args(argv)
    chosen = [PLATFORMS[n.strip()] for n in args.platforms.split(",") if n.strip()]
    groups = ([] if args.together_only else [[p] for p in chosen]) + (
        [chosen] if len(chosen) > 1 and not args.no_together else [])
    throttles = {"google_ads": Throttle(args.throttle_requests, args.throttle_window_seconds, "DEVELOPER"),
                 "meta_ads": Throttle(args.meta_throttle_calls, args.meta_throttle_window_seconds, "ACCOUNT")}
    results = results_header("ads_sync", argv)
    scenarios = []
    with ThrowawayPostgres("sync-bench-ads-") as pg:
        pg.start()
        results["machine"] = machine_facts(pg.database("postgres"), pg.data)
        results["settings"] = {"SYNC_REPORT_BATCH_SIZE": os.environ.get("SYNC_REPORT_BATCH_SIZE", "250 (default)"),
                               "SYNC_REPORT_MAX_RUNS_PER_TICK": os.environ.get("SYNC_REPORT_MAX_RUNS_PER_TICK",
                                                                               "4 (default)"),
                               "run_tag_limit_sync_provider": 4, "max_concurrent_runs": 12,
                               "parallel_accounts_per_run": 4, "automation_sensor_interval_seconds": 300,
                               "sample_seconds": SAMPLE_SECONDS}
        for limited in (False, True):
            if args.only and args.only != ("throttled" if limited else "unthrottled"):
                continue
            for group in groups:
                name = "_".join(p.name for p in group) + ("_throttled" if limited else "")
                scenarios.append(run_scenario(
                    pg.server, pg.work, name=name, platforms=group, accounts=args.accounts, days=args.days,
                    campaigns=args.campaigns, throttles=throttles if limited else None, timeout=args.timeout))
                scenarios[-1]["command"] = results["command"]
                print(summary_line(scenarios[-1]), flush=True)
    path = RESULTS_DIR / "ads_sync.json"
    if args.merge and path.exists():
        new = {s["name"] for s in scenarios}
        scenarios = [s for s in json.loads(path.read_text()).get("scenarios", []) if s["name"] not in new] + scenarios
    results["scenarios"] = scenarios
    if not args.no_write:
        write_results(path, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
