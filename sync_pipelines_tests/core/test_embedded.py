"""The embedded server is shared safely by the several processes Dagster starts."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port

STARTER = (
    "import sys; from pathlib import Path;"
    "from sync_pipelines.core.embedded import EmbeddedPostgres;"
    "print(EmbeddedPostgres(Path(sys.argv[1]), port=int(sys.argv[2]), fast=True).ensure_running())"
)


def test_concurrent_starts_share_one_server_which_survives_its_starters():
    root = Path(tempfile.mkdtemp(prefix="sync-embedded-")) / "postgres"
    root.parent.chmod(0o755)
    port = _free_port()
    starters = [
        subprocess.Popen([sys.executable, "-c", STARTER, str(root), str(port)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    urls = {p.communicate(timeout=120)[0].strip() for p in starters}
    assert all(p.returncode == 0 for p in starters)
    assert len(urls) == 1, urls
    server = EmbeddedPostgres(root)
    try:
        # Every starter has exited; the server keeps running for the next process.
        assert server.is_running()
        with psycopg.connect(urls.pop()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert server.ensure_running() == server.url()
    finally:
        server.stop()
    assert not server.is_running()
    # Restart keeps the data directory and the port.
    try:
        assert server.ensure_running().endswith(f":{port}/postgres")
    finally:
        server.stop()
