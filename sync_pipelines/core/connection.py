"""Opening a database connection, and saying in one line why it failed.

A wrong `DATABASE_URL` used to surface as a psycopg traceback (CLI) or, in a run, as Dagster's
"Exceeded max_retries" after a minute of retries. A retry cannot fix a wrong password, an unknown
database, role or host name, or a malformed URL, so those are `retryable=False`; a refused or
timed-out connection is an outage that may end, so it stays retryable. libpq reports connection
failures as text (psycopg has no SQLSTATE for them), so the classification reads the SQLSTATE when
there is one and libpq's English messages otherwise. The message names host, port, database and
user — never the password — and says what to check.
"""

from __future__ import annotations

import getpass
import os
import re
from dataclasses import dataclass

import psycopg
from psycopg.conninfo import conninfo_to_dict

# libpq's own default (psycopg's is 130 s): an unreachable host should not hold a run or the CLI
# for minutes. A `connect_timeout` in the URL wins.
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class _Cause:
    sqlstates: tuple[str, ...]
    pattern: re.Pattern[str]
    reason: str
    check: str
    retryable: bool


def _cause(sqlstates: tuple[str, ...], pattern: str, reason: str, check: str, *, retryable: bool) -> _Cause:
    return _Cause(sqlstates, re.compile(pattern, re.IGNORECASE), reason, check, retryable)


# First match wins; sqlstates: 28P01 invalid_password, 28000 invalid_authorization_specification,
# 3D000 invalid_catalog_name, 57P03 cannot_connect_now, 53300 too_many_connections.
_CAUSES = (
    _cause(("28P01",), r"password authentication failed", "password authentication failed",
           "the user and password", retryable=False),
    _cause((), r"no password supplied|password is required", "the server asks for a password and none was given",
           "the password", retryable=False),
    _cause((), r"role \".*\" does not exist", "no such user", "the user name", retryable=False),
    _cause(("3D000",), r"database \".*\" does not exist", "no such database", "the database name",
           retryable=False),
    _cause(("28000",), r"pg_hba\.conf|authentication failed", "the server refuses this user from this host",
           "the user, and the server's pg_hba.conf", retryable=False),
    _cause((), r"temporary failure in name resolution|EAI_AGAIN", "host name lookup failed for now",
           "DNS on this machine", retryable=True),
    _cause((), r"failed to resolve host|could not translate host name|name or service not known"
               r"|nodename nor servname|servname not supported|no address associated",
           "unknown host name (or invalid port)", "the host name and port", retryable=False),
    _cause((), r"server does not support SSL|SSL (is )?off|certificate verify failed|root certificate",
           "the SSL settings do not match the server's", "sslmode and the certificates",
           retryable=False),
    _cause((), r"connection refused", "connection refused", "that PostgreSQL is running there and accepts"
           " TCP connections from this machine", retryable=True),
    _cause((), r"timeout expired|timed out", "no answer (connection timed out)", "that the host is reachable"
           " (firewall, VPN) and the port is right", retryable=True),
    _cause(("57P03",), r"starting up|shutting down|in recovery mode", "the server is starting or stopping",
           "again in a moment", retryable=True),
    _cause(("53300",), r"too many (connections|clients)", "the server has no free connection slot",
           "max_connections and who holds the connections", retryable=True),
)


class DatabaseConnectionError(Exception):
    """A database could not be opened. `str()` is one line without the password; `retryable`
    says whether waiting can help (an outage) or not (the URL or the credentials are wrong)."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def target(url: str) -> str:
    """`user@host:port/database` as libpq would resolve it, without the password."""
    params = conninfo_to_dict(url)
    user = params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    database = params.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"{user}@{host}:{port}/{database}"


def explain(error: Exception, url: str, *, source: str, what: str = "the app database") -> DatabaseConnectionError:
    """The one-line, password-free account of `error` raised while connecting to `url`."""
    if isinstance(error, psycopg.ProgrammingError):  # libpq could not parse the URL
        # libpq quotes the offending part, which may be the password: say only what the shape is.
        return DatabaseConnectionError(
            f"cannot connect to {what}: {source} is not a valid PostgreSQL URL"
            " (expected postgresql://user:password@host:5432/database) — check its spelling", retryable=False)
    where = target(url)
    text = str(error)
    sqlstate = getattr(error, "sqlstate", None)
    for cause in _CAUSES:
        if (sqlstate and sqlstate in cause.sqlstates) or cause.pattern.search(text):
            retry = "runs retry this" if cause.retryable else "not retried: a retry cannot fix it"
            return DatabaseConnectionError(
                f"cannot connect to {what} {where} (from {source}): {cause.reason} — check {cause.check}"
                f" ({retry})", retryable=cause.retryable)
    first_line = _without_password(text.strip().splitlines()[0] if text.strip() else type(error).__name__, url)
    return DatabaseConnectionError(f"cannot connect to {what} {where} (from {source}): {first_line}",
                                   retryable=True)


def _without_password(text: str, url: str) -> str:
    password = conninfo_to_dict(url).get("password")
    return text.replace(password, "***") if password else text


def connect(url: str, *, source: str, what: str = "the app database", **kwargs) -> psycopg.Connection:
    """`psycopg.connect(url, **kwargs)` with a connect timeout, raising `DatabaseConnectionError`."""
    try:
        if "connect_timeout" not in kwargs and "connect_timeout" not in conninfo_to_dict(url):
            kwargs["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_SECONDS
        return psycopg.connect(url, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as error:
        raise explain(error, url, source=source, what=what) from None
