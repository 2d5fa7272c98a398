"""kill -9 the syncing process while its COPY streams into the destination: the destination keeps
its last committed state (rows, row versions, cursor), and the next run completes the work."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import psycopg

from .conftest import count

ROWS = 300_000
RUNNER = textwrap.dedent(
    """
    import sys
    import psycopg
    from sync_pipelines.defs.replication.config import TableSpec
    from sync_pipelines.defs.replication.replicate import replicate

    source_url, dest_url, schema = sys.argv[1:4]
    spec = TableSpec(name="big", source_schema="public", source_table="big", destination_schema=schema,
                     destination_table="big", mode="full", propagate_deletes=True)
    with psycopg.connect(dest_url, autocommit=True) as conn:
        replicate(spec, source_url, conn)
    """
)


def fingerprint(conn: psycopg.Connection, table: str) -> tuple:
    schema, name = table.split(".")
    return conn.execute(
        psycopg.sql.SQL("SELECT count(*), md5(string_agg(t::text || ':' || xmin::text, ',' ORDER BY id))"
                        " FROM {}.{} AS t").format(psycopg.sql.Identifier(schema), psycopg.sql.Identifier(name))
    ).fetchone()


def sync_in_subprocess(source_url: str, dest_url: str, schema: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUNNER, source_url, dest_url, schema])


def test_kill_minus_9_mid_copy_then_rerun(src, dest, source_url, database_url, schema, table_spec, run):
    src.execute("CREATE TABLE public.big (id bigint PRIMARY KEY, payload text NOT NULL, n numeric(12,2))")
    src.execute("INSERT INTO public.big SELECT i, repeat('x', 40) || i, i / 100.0 FROM generate_series(1, %s) i",
                (ROWS,))
    spec = table_spec("public.big", mode="full", propagate_deletes=True)
    run(spec)  # the committed state the kill must not disturb
    src.execute("UPDATE public.big SET payload = 'changed' WHERE id % 3 = 0")
    src.execute("DELETE FROM public.big WHERE id % 1000 = 1")
    before = fingerprint(dest, spec.destination)

    child = sync_in_subprocess(source_url, database_url, schema)
    try:
        deadline = time.monotonic() + 60
        copied = 0
        while time.monotonic() < deadline and child.poll() is None:
            found = dest.execute(
                "SELECT tuples_processed FROM pg_stat_progress_copy"
                " WHERE datname = current_database() AND command = 'COPY FROM' AND tuples_processed > 0"
            ).fetchone()
            if found:
                copied = found[0]
                break
            time.sleep(0.002)
        assert child.poll() is None and 0 < copied < ROWS, f"the kill did not land mid-copy ({copied} rows)"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()

    assert fingerprint(dest, spec.destination) == before
    report = run(spec)  # waits for the orphaned backend's rollback (advisory lock), then completes
    assert (report.fetched, report.deleted, report.updated) == (ROWS - 300, 300, ROWS // 3 - 100)
    assert count(dest, spec.destination) == ROWS - 300
    assert fingerprint(dest, spec.destination)[1] != before[1]
    assert dest.execute(
        f"SELECT count(*) FROM {spec.destination} WHERE payload = 'changed'"
    ).fetchone()[0] == ROWS // 3 - 100
