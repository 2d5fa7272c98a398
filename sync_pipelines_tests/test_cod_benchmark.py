"""`benchmarks/cod_sync.py` end to end at a small size: 3 EcoManager stores × 300 orders and one
Maystro store of 2,000 orders through the real daemon, launched as the schedules launch them.
Counts and the table-against-sandbox checks are asserted, never timings."""

from __future__ import annotations

import math
import uuid

import pytest

from benchmarks import cod_sync

SCHEDULED = "ecomanager_sync ecomanager_orders_hourly"


def test_the_calls_table_counts_one_request_per_hundred_new_orders_whatever_the_history(postgres_server):
    table = cod_sync.calls_table(postgres_server.ensure_database(f"app_calls_{uuid.uuid4().hex[:8]}"),
                                 (100, 2_000), (0, 1, 150))
    calls = {(row["history"], row["new"]): (row["api_calls"], row["fetched"]) for row in table["rows"]}
    # ⌈(new + 1) / 100⌉: the page holding the newest known order ends the walk; history costs nothing.
    assert calls == {(100, 0): (1, 0), (100, 1): (1, 1), (100, 150): (2, 150),
                     (2_000, 0): (1, 0), (2_000, 1): (1, 1), (2_000, 150): (2, 150)}
    assert [row["first_sync_calls"] for row in table["rows"]] == [1, 1, 1, 20, 20, 20]


@pytest.mark.slow
def test_the_benchmark_syncs_both_providers_through_the_daemon_and_the_tables_match(postgres_server, tmp_path):
    stores, orders, maystro_orders = 3, 300, 2_000
    result = cod_sync.run_benchmark(
        postgres_server, tmp_path, stores=stores, orders=orders, new_max=20, arrival_every=2, paced_reads=False,
        maystro_stores=1, maystro_orders=maystro_orders, changed_fraction=0.01, maystro_rpm=6_000,
        name=f"t{uuid.uuid4().hex[:8]}", timeout=300)
    eco = result["ecomanager"]

    # (a) One batch run for the three stores (the 08:00 tick's request), every order read once.
    first = eco["first_sync"]
    assert first["runs_by_job_trigger_kind_status"] == {f"{SCHEDULED} new SUCCESS": 1}
    assert first["accounts_per_run"] == [stores]
    assert first["api_calls_per_store"]["histogram"] == {str(orders // 100): stores}
    assert first["records"]["inserted"] == stores * orders
    assert first["check"]["stores_exact"] == stores and first["account_failures"] == 0
    assert first["run_peak_rss_mb"]["count"] == 1  # the sampler saw the run's process

    # (b) New orders before the hour, more arriving during it: one request per store; those that
    # arrived mid-sync are exactly what the table lacks, and exactly what the next hour inserts.
    hourly, next_hour = eco["hourly"], eco["next_hour"]
    assert hourly["runs_by_job_trigger_kind_status"] == {f"{SCHEDULED} new SUCCESS": 1}
    assert hourly["api_calls_per_store"]["histogram"] == {"1": stores}
    assert hourly["records"]["inserted"] == hourly["new_orders_before"] > 0
    assert hourly["stores_with_arrivals"] == 2 and hourly["new_orders_arriving_during_sync"] > 0
    assert hourly["check"]["stores_exact"] == stores
    assert hourly["check"]["orders_expected_next_sync"] == hourly["new_orders_arriving_during_sync"]
    assert hourly["check"]["rows"] == hourly["check"]["sandbox_orders"] - hourly["new_orders_arriving_during_sync"]
    assert next_hour["api_calls_per_store"]["histogram"] == {"1": stores}
    assert next_hour["records"]["inserted"] == hourly["new_orders_arriving_during_sync"]
    assert next_hour["check"]["stores_exact"] == stores and next_hour["check"]["rows"] == next_hour["check"][
        "sandbox_orders"]

    # (c) The evening's complete listing: every page read, nothing to change.
    full = eco["full_reconciliation"]
    assert full["runs_by_job_trigger_kind_status"] == {f"{SCHEDULED} full SUCCESS": 1}
    rows = full["check"]["rows"]
    assert full["api_calls"] >= math.ceil(rows / 100) and full["records"]["fetched"] == rows
    assert full["records"]["inserted"] == full["records"]["updated"] == full["records"]["deleted"] == 0
    assert full["check"]["stores_exact"] == stores and full["account_failures"] == 0

    # Maystro: every page once, at most 10 in flight, no 429; then exactly the changed statuses.
    may = result["maystro"]
    poll, again = may["first_poll"], may["second_poll"]
    assert poll["runs_by_job_trigger_kind_status"] == {"maystro_sync maystro_status_every_6h poll SUCCESS": 1}
    assert poll["api_requests"] == maystro_orders // 20 and poll["quota_errors_429"] == 0
    assert 1 <= poll["sandbox_peak_in_flight"] <= 10
    assert poll["statuses"]["read"] == poll["statuses"]["new"] == maystro_orders
    assert poll["history_rows_written"] == {"poll": maystro_orders} and poll["table"]["shipments"] == maystro_orders
    assert may["statuses_changed_in_sandbox"] == maystro_orders // 100
    assert again["statuses"]["changed"] == may["statuses_changed_in_sandbox"] and again["statuses"]["new"] == 0
    assert again["history_rows_written"] == {"poll": may["statuses_changed_in_sandbox"]}
    assert poll["account_failures"] == again["account_failures"] == 0
