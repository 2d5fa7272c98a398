"""The embedded server is shared safely by the several processes Dagster starts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from sync_pipelines.core.embedded import EmbeddedPostgres, _free_port

STARTER = (
    "import sys; from pathlib import Path;"
    "from sync_pipelines.core.embedded import EmbeddedPostgres;"
    "print(EmbeddedPostgres(Path(sys.argv[1]), port=int(sys.argv[2]), fast=True).ensure_running())"
)


@pytest.fixture
def cluster_root():
    """A throwaway cluster directory, removed after the test (a cluster is ~40 MB)."""
    parent = Path(tempfile.mkdtemp(prefix="sync-embedded-"))
    parent.chmod(0o755)  # under root the cluster runs as a system user that must reach it
    yield parent / "postgres"
    shutil.rmtree(parent, ignore_errors=True)


def test_concurrent_starts_share_one_server_which_survives_its_starters(cluster_root):
    root = cluster_root
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


def test_only_the_starter_is_told_it_started_the_server(cluster_root):
    """`dev` stops the server only if it started it, not one kept by `db start` or another `dev`."""
    root = cluster_root
    first = EmbeddedPostgres(root, port=_free_port(), fast=True)
    try:
        first.ensure_running()
        assert first.started
        second = EmbeddedPostgres(root)
        second.ensure_running()
        assert not second.started
    finally:
        first.stop()


def test_data_directory_of_another_user_gets_a_clear_error(tmp_path):
    server = EmbeddedPostgres(tmp_path / "postgres")
    server.data.mkdir(parents=True)
    # Under root the server runs as the system user, so a root-owned data directory is foreign;
    # other users cannot create a directory owned by someone else.
    if not server._run_as:
        pytest.skip("needs root to create a directory owned by another user")
    with pytest.raises(RuntimeError, match=r"belongs to root.*SYNC_LOCAL_DIR") as raised:
        server.ensure_running()
    assert str(server.data) in str(raised.value)
    assert not server.is_running()
