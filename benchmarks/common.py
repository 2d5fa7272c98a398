"""Machinery the benchmark scripts share, so each script holds only its own scenarios.

- ``ThrowawayPostgres``: the temp-dir, free-port, ``fast=False`` embedded cluster every benchmark
  measures against, stopped and deleted at the end, also on error, Ctrl-C or SIGTERM.
- ``ChildServer`` / ``SandboxProcess`` / ``ShopifySandboxProcess``: servers in *separate
  processes*, so the peak RSS a benchmark measures is its own side only.
- ``Interrupts`` / ``in_worker_thread``: signal handling that keeps figures honest (see
  ``Interrupts``).
- ``peak_rss_mb``, ``current_rss_mb``, ``machine_facts``: what every results file records.
- ``results_header`` / ``write_results``: the common head and tail of a results JSON file.

Nothing here imports dagster at module level: replication's child processes import this too.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Quiet Dagster's console logger: the per-event DEBUG lines would bury the results table.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

# Shopify's standard plan, which the Shopify sandbox emulates by default.
SHOPIFY_BUCKET_SIZE = 40  # 40 calls ...
SHOPIFY_LEAK_PER_SECOND = 2.0  # ... leaking 2 per second
SHOPIFY_APP_SECRET = "benchmark-shopify-app-secret"


# ----------------------------------------------------------------------------- results
def now_iso() -> str:
    """UTC now, to the second: the ``started_at`` / ``finished_at`` stamps of a results file."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def results_header(benchmark: str, argv: list[str] | None) -> dict[str, Any]:
    """The keys every results file starts with, so a file says what produced it and when."""
    return {
        "benchmark": benchmark,
        "started_at": now_iso(),
        "command": " ".join([f".venv/bin/python -m benchmarks.{benchmark}",
                             *(argv if argv is not None else sys.argv[1:])]),
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write the results JSON (values JSON cannot hold as strings) and say where it went."""
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {path.relative_to(PROJECT_ROOT)}")


# ----------------------------------------------------------------------------- memory, machine
def wal_position(database_url: str) -> str:
    """The cluster's current WAL position (benchmarks run alone on their throwaway cluster)."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]


def wal_mb_since(database_url: str, position: str) -> float:
    """WAL written by the whole cluster since `position`, in MB."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        written = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (position,)).fetchone()[0]
    return round(float(written) / 1e6, 1)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KB on Linux)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes there
        kb /= 1024
    return round(kb / 1024, 1)


def current_rss_mb(pid: int | None = None) -> float | None:
    """Resident set size now of `pid` (default: this process), or None where psutil can't tell."""
    try:
        import psutil

        return round(psutil.Process(pid or os.getpid()).memory_info().rss / 2**20, 1)
    except Exception:  # psutil missing or the process is gone: not worth failing over
        return None


def filesystem_of(path: Path) -> str:
    """The filesystem type holding `path` (from /proc/mounts), e.g. ext4 or tmpfs."""
    try:
        best, fstype = "", "unknown"
        resolved = str(path.resolve())
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (resolved == parts[1] or resolved.startswith(parts[1].rstrip("/") + "/")):
                if len(parts[1]) > len(best):
                    best, fstype = parts[1], parts[2]
        return fstype
    except OSError:
        return "unknown"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts(database_url: str, data_dir: Path) -> dict[str, Any]:
    """What the figures depend on: CPU, memory, versions, and the durability settings in force."""
    import dagster
    import psycopg

    with psycopg.connect(database_url) as conn:
        pg_version = conn.execute("SELECT version()").fetchone()[0]
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")}
    try:
        import psutil

        memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:
        memory_gb = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dagster": dagster.__version__,
        "psycopg": psycopg.__version__,
        "postgresql": pg_version,
        "postgresql_settings": settings,
        "postgresql_data_filesystem": filesystem_of(data_dir),
    }


def metadata_by_asset(result: Any) -> dict[str, dict[str, Any]]:
    """asset name → {metadata key: plain value} for each materialization in the run."""
    found: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found[materialization.asset_key.path[-1]] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    return found


# ----------------------------------------------------------------------------- interrupts
class Interrupts:
    """Ctrl-C / SIGTERM handling that keeps figures honest and always cleans up.

    Inside `dg.materialize` on the main thread, Dagster takes over SIGINT/SIGTERM and the
    interrupted step is retried by the sync assets' RetryPolicy (observed with Dagster 1.13): the
    run then "succeeds" with skewed figures. So each sync runs on a worker thread
    (`in_worker_thread`), where Dagster leaves signal handlers alone, and signals reach this
    handler on the main thread: the first one during a sync asks to stop once it ends, a second
    one stops at once. Either way no results are written, and everything started is stopped.
    Outside a sync a signal raises KeyboardInterrupt at once.
    """

    requested = False
    in_sync = False

    @classmethod
    def handle(cls, signum: int, frame: Any) -> None:
        if cls.in_sync and not cls.requested:
            cls.requested = True
            print(f"\n{signal.Signals(signum).name}: stopping after the current sync "
                  "(send it again to stop now); no results will be written", file=sys.stderr, flush=True)
            return
        cls.requested = True
        raise KeyboardInterrupt

    @classmethod
    def install(cls) -> None:
        """Route SIGINT and SIGTERM to `handle`."""
        signal.signal(signal.SIGINT, cls.handle)
        signal.signal(signal.SIGTERM, cls.handle)


def evaluate_schedule(provider: str, schedule_name: str, tick: Any, app_url: str) -> Any:
    """What the provider's schedule `schedule_name` returns at `tick` (its own function, against the
    app database at `app_url`): run requests or a skip reason."""
    import dagster as dg

    from sync_pipelines.core.dg.resources import AppDatabase

    module = __import__(f"sync_pipelines.defs.{provider}.schedules", fromlist=["schedules"])
    schedule = next(s for s in module.schedules if s.name == schedule_name)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = app_url
    try:
        with dg.build_schedule_context(scheduled_execution_time=tick, resources={"app_db": AppDatabase()}) as context:
            return schedule(context)
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous


def report_interrupted(stopping: str) -> int:
    """Say that an interrupted benchmark writes nothing (half-run figures would mislead); the
    exit code to return (130, as for Ctrl-C)."""
    print(f"\ninterrupted: stopping {stopping}; no results written", file=sys.stderr, flush=True)
    return 130


def in_worker_thread(fn: Any) -> Any:
    """`fn()` on a daemon thread, waited for on the main thread (see `Interrupts`)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as error:  # handed back to the main thread
            box["error"] = error

    worker = threading.Thread(target=target, name="benchmark-sync", daemon=True)
    Interrupts.in_sync = True
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.5)  # returns as soon as the thread ends; the timeout lets signals in
    finally:
        Interrupts.in_sync = False
    if Interrupts.requested:
        raise KeyboardInterrupt
    if "error" in box:
        raise box["error"]
    return box["result"]


# ----------------------------------------------------------------------------- throwaway cluster
class ThrowawayPostgres:
    """An embedded PostgreSQL in a fresh temp dir on a free port, ``fast=False`` (fsync and
    synchronous commit on, as in a durable database), so every benchmark measures against the
    same kind of cluster and none touches a real one.

    ``close()`` (or leaving the ``with`` block) stops the cluster, deletes the temp dir and puts
    ``DATABASE_URL`` back as it was; no signal can cut that short (``pg_ctl stop`` waits at most
    60 s), and afterwards SIGINT/SIGTERM have their default handlers again.
    """

    def __init__(self, prefix: str):
        from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port

        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.work, 0o755)  # under root the cluster runs as a system user that must reach it
        self.server = EmbeddedPostgres(self.work / "postgres", port=_free_port(), fast=False)
        self._previous_url = os.environ.get("DATABASE_URL")

    @property
    def data(self) -> Path:
        return self.server.data

    def start(self, settings: str = "fast=False: fsync + synchronous_commit on") -> None:
        print(f"starting throwaway PostgreSQL in {self.work} ({settings}) ...", flush=True)
        self.server.ensure_running()

    def database(self, name: str) -> str:
        """URL of database `name`, created if missing."""
        return self.server.ensure_database(name)

    def use_database(self, name: str = "bench") -> str:
        """Create database `name` and point ``DATABASE_URL`` at it (what the app code reads)."""
        os.environ["DATABASE_URL"] = self.database(name)
        return os.environ["DATABASE_URL"]

    def close(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(Exception):
            self.server.stop()
        shutil.rmtree(self.work, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self._previous_url is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = self._previous_url

    def __enter__(self) -> ThrowawayPostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- child processes
class ChildServer:
    """A server in a child process of its own session (a terminal's Ctrl-C reaches the benchmark
    only; `stop()` ends the server with SIGINT, which uvicorn shuts down on gracefully)."""

    command: list[str]
    log_path: Path
    proc: subprocess.Popen

    def _spawn(self, command: list[str], log_path: Path, env: dict[str, str], *, read_stdout: bool) -> None:
        """Start `command`; stderr goes to `log_path`, and stdout too unless `read_stdout` (a text pipe)."""
        self.command = command
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 -- closed in stop()
        streams: dict[str, Any] = (
            {"stdout": subprocess.PIPE, "stderr": self._log, "text": True} if read_stdout
            else {"stdout": self._log, "stderr": subprocess.STDOUT})
        self.proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True, **streams)

    def rss_mb(self) -> float | None:
        return current_rss_mb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SandboxProcess(ChildServer):
    """A sandbox server (``--port 0``) in a child process; ready once it prints a line matching
    `ready_pattern`, whose group 1 is its URL. stdout is drained for as long as it runs, so the
    pipe never fills up; stderr goes to `log_path`."""

    def __init__(self, command: list[str], *, ready_pattern: str, log_path: Path,
                 startup_timeout: float = 600.0, thread_name: str = "sandbox-stdout"):
        started = time.monotonic()
        self._spawn(command, log_path, {**os.environ, "PYTHONUNBUFFERED": "1"}, read_stdout=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, name=thread_name, daemon=True).start()
        try:
            self.url = self._wait_for_url(ready_pattern, startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - started, 2)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # keep reading so the pipe never fills up
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self, pattern: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"sandbox did not start within {timeout:.0f}s ({self.log_path})")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"sandbox exited during startup (rc={self.proc.wait()}):\n"
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            match = re.search(pattern, line)
            if match:
                return match.group(1)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        """Call a ``/_sandbox/<path>`` control endpoint; its JSON reply."""
        import requests

        response = requests.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")


class ShopifySandboxProcess(SandboxProcess):
    """`python -m sync_pipelines.sandbox.shopify` in a child process (shops `<name>.myshopify.com`,
    tokens ``sandbox-shopify-<name>``); used by the backfill and the receiver benchmarks."""

    def __init__(self, *, shops: list[str], orders: int, log_path: Path, customers: int = 5_000,
                 products: int = 300, bucket_size: int = SHOPIFY_BUCKET_SIZE,
                 leak_per_second: float = SHOPIFY_LEAK_PER_SECOND, app_secret: str = SHOPIFY_APP_SECRET,
                 startup_timeout: float = 600.0):
        self.shops = [f"{name}.myshopify.com" for name in shops]
        self.tokens = {f"{name}.myshopify.com": f"sandbox-shopify-{name}" for name in shops}
        command = [
            sys.executable, "-m", "sync_pipelines.sandbox.shopify",
            "--host", "127.0.0.1", "--port", "0",  # port 0: the server binds a free port and prints it
            "--shops", ",".join(shops), "--orders", str(orders), "--customers", str(customers),
            "--products", str(products), "--bucket-size", str(bucket_size),
            "--leak-per-second", f"{leak_per_second:g}", "--app-secret", app_secret,
        ]
        super().__init__(command, ready_pattern=r"Shopify sandbox on (http://\S+)", log_path=log_path,
                         startup_timeout=startup_timeout, thread_name="shopify-sandbox-stdout")

    def base_url_template(self) -> str:
        return f"{self.url}/shops/{{shop}}"


def register_shop(shop: str, token: str) -> None:
    """Registry row with the access token in an env var, as in production."""
    from sync_pipelines.core.registry import upsert_account
    from sync_pipelines.core.dg.resources import AppDatabase

    env_var = f"SHOPIFY_BENCH_TOKEN_{shop.split('.')[0].upper().replace('-', '_')}"
    os.environ[env_var] = token
    with AppDatabase().connect() as conn:
        upsert_account(conn, "shopify", shop, credentials_env=env_var)
