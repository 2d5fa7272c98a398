"""Database URLs that cannot work, on the session's real PostgreSQL: a wrong password (a role
that must authenticate with one, as production roles do; the test server trusts everyone else),
an unknown database, and a port nobody listens on."""

from __future__ import annotations

import time

import psycopg

from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port

PASSWORD_USER = "sync_password_user"
PASSWORD = "right-password-a1"
WRONG_PASSWORD = "wrong-s3cret-Zq9"


def password_user(server: EmbeddedPostgres) -> str:
    """Make `PASSWORD_USER` authenticate by password (scram) on `server`; returns its name."""
    hba = server.data / "pg_hba.conf"
    rule = f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
    with psycopg.connect(server.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PASSWORD_USER,)).fetchone():
            conn.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        if rule not in hba.read_text():
            hba.write_text(rule + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.3)  # the postmaster rereads pg_hba.conf asynchronously
    return PASSWORD_USER


def wrong_urls(server: EmbeddedPostgres) -> dict[str, str]:
    """What is wrong → a URL with that fault; every one carries `WRONG_PASSWORD`."""
    user = password_user(server)
    return {
        "wrong password": f"postgresql://{user}:{WRONG_PASSWORD}@127.0.0.1:{server.port}/postgres",
        "unknown database": f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:{server.port}/no_such_db",
        "closed port": f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:{_free_port()}/app",
    }
