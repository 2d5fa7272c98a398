"""The daily cleanup: declared history trimmed at its boundary, changed tables analysed."""

from __future__ import annotations

import sqlalchemy as sa

from sync_pipelines.core.providers import RetentionDeclaration
from sync_pipelines.defs.operations.cleanup import analyze_changed, purge


def history_table(suffix: str) -> sa.Table:
    return sa.Table("log", sa.MetaData(), sa.Column("id", sa.BigInteger, primary_key=True),
                    sa.Column("at", sa.DateTime(timezone=True), nullable=False), schema=f"c_{suffix}")


def test_rows_older_than_the_retention_go_and_younger_ones_stay(conn, unique, monkeypatch):
    table = history_table(unique)
    declaration = RetentionDeclaration(name="log", table=table, timestamp_column="at", days=30)
    purge(conn, declaration, 30)  # creates the table
    conn.execute(f"INSERT INTO c_{unique}.log (id, at) VALUES (1, now() - interval '30 days 1 minute'),"
                 " (2, now() - interval '29 days 23 hours'), (3, now() - interval '400 days'), (4, now())")
    monkeypatch.setattr("sync_pipelines.defs.operations.cleanup.CHUNK", 1)  # several chunks
    assert purge(conn, declaration, 30) == 2
    assert [r[0] for r in conn.execute(f"SELECT id FROM c_{unique}.log ORDER BY id")] == [2, 4]
    assert purge(conn, declaration, 1) == 1  # a shorter retention from the run config


def test_tables_changed_since_their_last_analysis_are_analysed_once(conn, unique):
    table = history_table(unique)
    purge(conn, RetentionDeclaration(name="log", table=table, timestamp_column="at"), 30)
    conn.execute(f"INSERT INTO c_{unique}.log (id, at) SELECT g, now() FROM generate_series(1, 50) g")
    conn.execute("SELECT pg_stat_force_next_flush()")  # statistics reach the views after a flush
    conn.execute("SELECT pg_stat_clear_snapshot()")
    assert f"c_{unique}.log" in analyze_changed(conn)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    assert conn.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE schemaname = %s",
                        (f"c_{unique}",)).fetchone()[0] == 0
    assert f"c_{unique}.log" not in analyze_changed(conn)


def test_a_retention_below_one_day_is_refused():
    import pytest
    with pytest.raises(ValueError, match="at least one day"):
        RetentionDeclaration(name="x", table=None, timestamp_column="at", days=0)


def test_the_daily_cleanup_job_trims_the_declared_activity_log_and_analyses(conn, unique):
    import dagster as dg

    from sync_pipelines.core.dg.resources import AppDatabase
    from sync_pipelines.defs.ecomanager.assignment_queue import ensure_assignment_schema
    from sync_pipelines.defs.operations.cleanup import cleanup_job

    ensure_assignment_schema(conn)
    store = f"cleanup-{unique}"
    conn.execute("INSERT INTO ecomanager.activity_log (at, account, order_id, action) VALUES"
                 " (now() - interval '31 days', %s, 1, 'assigned'), (now() - interval '29 days', %s, 2, 'assigned'),"
                 " (now() - interval '8 days', %s, 3, 'assigned')", (store, store, store))
    with dg.instance_for_test() as instance:
        result = cleanup_job.execute_in_process(instance=instance, resources={"app_db": AppDatabase()})
        assert result.success
        left = [r[0] for r in conn.execute("SELECT order_id FROM ecomanager.activity_log WHERE account = %s"
                                           " ORDER BY 1", (store,))]
        assert left == [2, 3]  # 30 days by default
        result = cleanup_job.execute_in_process(
            instance=instance, resources={"app_db": AppDatabase()},
            run_config={"ops": {"purge_history": {"config": {"retention_days": {"ecomanager_activity_log": 7}}}}})
        assert result.success
        assert [r[0] for r in conn.execute("SELECT order_id FROM ecomanager.activity_log WHERE account = %s",
                                           (store,))] == []
        bad = cleanup_job.execute_in_process(
            instance=instance, resources={"app_db": AppDatabase()}, raise_on_error=False,
            run_config={"ops": {"purge_history": {"config": {"retention_days": {"no_such_log": 7}}}}})
        assert not bad.success
