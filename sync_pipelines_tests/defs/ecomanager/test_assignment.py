"""Assigning new EcoManager orders to agents, on the real PostgreSQL: least-loaded with round-robin
ties, capacity, who is skipped, waiting and later assignment, exactly once (also under concurrent
assigners), reassignment rules with their log, closing, and history left alone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from sync_pipelines.core.registry import upsert_account
from sync_pipelines.defs.ecomanager.agents import update_agent
from sync_pipelines.defs.ecomanager.assignment import assign_pending, pending_work, unassign
from sync_pipelines.defs.ecomanager.assignment_queue import set_assign_from, waiting_orders
from sync_pipelines_tests.defs.ecomanager.assignment_helpers import T0, Store, store  # noqa: F401 (fixture)

NOW = T0 + timedelta(hours=3)  # 12:00 UTC, 13:00 in Algiers


def assign(store: Store, **kwargs):
    return assign_pending(store.conn, store.accounts, now=kwargs.pop("now", NOW), **kwargs)


def test_least_loaded_first_and_ties_go_to_the_agent_assigned_longest_ago(store):
    a, b, c = store.agent("a"), store.agent("b"), store.agent("c")
    orders = store.orders(6)
    result = assign(store)
    assert (result.assigned, result.waiting) == (6, 0)
    assert [store.holder(o)[0] for o in orders] == [a, b, c, a, b, c]  # ties: never assigned first, then by id
    d = store.agent("d")
    later = store.orders(3)
    assign(store)
    # d is the least loaded twice; then everyone holds 2 and a, assigned longest ago, is next
    assert [store.holder(o)[0] for o in later] == [d, d, a]
    assert result.by_agent == {a: 2, b: 2, c: 2}


def test_round_robin_across_calls_when_loads_are_equal(store):
    a, b, c = store.agent("a"), store.agent("b"), store.agent("c")
    holders = []
    for _ in range(4):
        [order] = store.orders(1)
        assign(store)
        holders.append(store.holder(order)[0])
        store.set_order(order, confirmation_state="Confirmé")  # closes it: every load is 0 again
        assert assign(store).closed == 1
    assert holders == [a, b, c, a]


def test_capacity_is_respected_and_the_rest_waits_until_room_frees_up(store):
    a, b = store.agent("a", capacity=2), store.agent("b", capacity=2)
    orders = store.orders(5)
    result = assign(store)
    assert (result.assigned, result.waiting) == (4, 1)
    assert store.loads() == {a: 2, b: 2}
    [waiting] = waiting_orders(store.conn, store.accounts)
    assert (waiting.order_id, waiting.waiting_since, waiting.previous_agent_id) == (orders[4], T0 + timedelta(seconds=4), None)
    assert not pending_work(store.conn, store.accounts, now=NOW)  # everyone is full
    store.set_order(orders[1], confirmation_state="Annulé")  # b's first order is cancelled
    assert pending_work(store.conn, store.accounts, now=NOW)
    result = assign(store)
    assert (result.closed, result.assigned, result.waiting) == (1, 1, 0)
    assert store.holder(orders[4]) == (b, "open")
    assert store.holder(orders[1]) == (b, "closed")
    assert waiting_orders(store.conn, store.accounts) == []


def test_agents_unavailable_inactive_off_duty_full_or_serving_other_stores_are_skipped(store):
    store.agent("away", available=False)
    store.agent("gone", active=False)
    store.agent("elsewhere", stores=["another-store"])
    store.agent("morning", work_start=time(8), work_end=time(9), timezone="Africa/Algiers")
    store.agent("full", capacity=0)
    night = store.agent("night", work_start=time(22), work_end=time(6), timezone="Africa/Algiers")
    everyone = store.agent("everyone", stores=None)  # NULL: every store
    store.accounts.append(f"{store.account}-other")  # cleaned up with the store
    update_agent(store.conn, everyone, stores=store.accounts)  # …but keep it off other tests' stores
    orders = store.orders(4)
    assign(store)
    assert {store.holder(o)[0] for o in orders} == {everyone}
    later = store.orders(2)
    assign(store, now=datetime(2026, 12, 1, 22, 30, tzinfo=UTC))  # 23:30 in Algiers: the night shift
    assert store.holder(later[0])[0] == night and store.holder(later[1])[0] == night  # least loaded


def test_an_agent_serving_every_store_takes_any_store(store, conn):
    other = f"{store.account}-b"
    store.accounts.append(other)
    set_assign_from(conn, other, T0 - timedelta(days=1))
    anywhere = store.agent("anywhere", stores=None)
    try:
        [order] = store.orders(1, account=other)
        assign(store)
        assert store.holder(order, other) == (anywhere, "open")
    finally:
        update_agent(conn, anywhere, active=False)  # other tests' stores are not its business


def test_without_agents_orders_wait_visibly_and_are_assigned_when_one_becomes_available(store, conn):
    orders = store.orders(3)
    result = assign(store)
    assert (result.assigned, result.waiting) == (0, 3)
    queue = conn.execute("SELECT order_id, waiting_since FROM ecomanager.assignment_queue WHERE account = %s"
                         " ORDER BY waiting_since", (store.account,)).fetchall()
    assert queue == [(o, T0 + timedelta(seconds=i)) for i, o in enumerate(orders)]
    assert not pending_work(conn, store.accounts, now=NOW)
    agent = store.agent("late", available=False)
    assert not pending_work(conn, store.accounts, now=NOW)
    update_agent(conn, agent, available=True)
    assert pending_work(conn, store.accounts, now=NOW)
    assert pending_work(conn, now=NOW)  # the sensor asks about every store
    assert assign(store).assigned == 3
    assert waiting_orders(conn, store.accounts) == []
    assert not pending_work(conn, store.accounts, now=NOW)


def test_assigning_the_same_orders_again_or_after_a_redelivery_assigns_them_once(store, conn):
    store.agent("a")
    store.agent("b")
    orders = store.orders(4)
    assert assign(store).assigned == 4
    before = {o: store.holder(o) for o in orders}
    for order in orders:  # the webhook delivers the same orders again: the row is rewritten
        store.set_order(order, confirmation_state="En attente", source_updated_at=NOW)
    again = assign(store)
    assert (again.assigned, again.reassigned, again.waiting) == (0, 0, 0)
    assert {o: store.holder(o) for o in orders} == before
    assert all([row[0] for row in store.log(o)] == ["assigned"] for o in orders)


def test_the_key_refuses_a_second_assignment_of_an_order(store, conn):
    a, b = store.agent("a"), store.agent("b")
    [order] = store.orders(1)
    assign(store)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO ecomanager.assignments (account, order_id, agent_id, state, assigned_at, updated_at)"
                     " VALUES (%s, %s, %s, 'open', now(), now())", (store.account, order, b if store.holder(order)[0] == a else a))


def concurrently(database_url: str, calls: list, rounds: int = 3) -> list:
    """Run `calls` (functions of a connection) in threads, each with its own connection, started
    together by a barrier, each `rounds` times; their results."""
    barrier = threading.Barrier(len(calls))
    results, errors = [], []

    def work(call):
        try:
            with psycopg.connect(database_url, autocommit=True) as own:
                barrier.wait(timeout=30)
                for _ in range(rounds):
                    results.append(call(own))
        except Exception as error:  # noqa: BLE001 (re-raised in the test's thread)
            errors.append(error)

    threads = [threading.Thread(target=work, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.parametrize("capacity", [1000, 40])
def test_concurrent_assigners_assign_each_order_exactly_once_balanced_and_within_capacity(
        store, conn, database_url, capacity):
    other = f"{store.account}-b"
    store.accounts.append(other)
    set_assign_from(conn, other, T0 - timedelta(days=1))
    agents = [store.agent(name, stores=store.accounts, capacity=capacity) for name in ("a", "b", "c")]
    first = store.orders(150)
    second = store.orders(150, account=other)
    calls = [lambda own: assign_pending(own, [store.account], now=NOW),
             lambda own: assign_pending(own, [other], now=NOW),
             lambda own: assign_pending(own, store.accounts, now=NOW),
             lambda own: assign_pending(own, [other, store.account], now=NOW)]
    results = concurrently(database_url, calls)
    expected = min(300, 3 * capacity)
    rows = conn.execute("SELECT account, order_id, count(*) FROM ecomanager.activity_log WHERE account = ANY(%s)"
                        " AND action = 'assigned' GROUP BY 1, 2", (store.accounts,)).fetchall()
    assert len(rows) == expected and all(count == 1 for _, _, count in rows)  # one log row per assigned order
    assert sum(r.assigned for r in results) == expected  # and each counted by exactly one caller
    loads = store.loads()
    assert sum(loads.values()) == expected
    assert max(loads.values()) - min(loads.values()) <= 1, loads  # balanced across the racing stores
    assert max(loads.values()) <= capacity
    assigned = conn.execute("SELECT count(*) FROM ecomanager.assignments WHERE account = ANY(%s)",
                            (store.accounts,)).fetchone()[0]
    assert assigned == expected and len(first) + len(second) - expected == len(waiting_orders(conn, store.accounts))
    assert set(loads) == set(agents)


@pytest.mark.parametrize("change, reason", [({"active": False}, "agent deactivated"),
                                            ({"available": False}, "agent unavailable")])
def test_an_agent_deactivated_or_unavailable_loses_open_orders_to_others_with_log_rows(store, conn, change, reason):
    a, b = store.agent("a"), store.agent("b")
    orders = store.orders(4)
    assign(store)
    theirs = [o for o in orders if store.holder(o)[0] == a]
    update_agent(conn, a, **change)
    assert pending_work(conn, store.accounts, now=NOW)
    result = assign(store)
    assert (result.unassigned, result.reassigned, result.assigned) == (2, 2, 0)
    assert store.loads() == {b: 4}
    for order in theirs:
        assert store.log(order) == [("assigned", a, None, "auto", None), ("unassigned", a, None, "auto", reason),
                                    ("reassigned", b, a, "auto", reason)]


def test_an_agents_orders_wait_when_nobody_else_can_take_them(store, conn):
    a = store.agent("a")
    [order] = store.orders(1)
    assign(store)
    update_agent(conn, a, active=False)
    assert pending_work(conn, store.accounts, now=NOW)  # freeing the order is work too
    result = assign(store)
    assert (result.unassigned, result.waiting) == (1, 1)
    [waiting] = waiting_orders(conn, store.accounts)
    assert (waiting.order_id, waiting.previous_agent_id, waiting.reason) == (order, a, "agent deactivated")
    assert not pending_work(conn, store.accounts, now=NOW)
    b = store.agent("b")
    assert assign(store).reassigned == 1 and store.holder(order) == (b, "open")


def test_an_order_unassigned_by_hand_goes_to_another_agent_and_never_back(store, conn):
    a, b = store.agent("a"), store.agent("b")
    first, second, third = store.orders(3)
    assign(store)  # a: first, third; b: second
    assert store.holder(first)[0] == a
    assert unassign(conn, store.account, first, "customer asked for someone else", now=NOW) == a
    assert unassign(conn, store.account, first, "twice", now=NOW) is None  # not open any more
    [waiting] = waiting_orders(conn, store.accounts)
    assert (waiting.order_id, waiting.previous_agent_id) == (first, a)
    result = assign(store)  # a is now the least loaded, but it was taken from a by hand
    assert result.reassigned == 1 and store.holder(first) == (b, "open")
    assert store.log(first)[1:] == [("unassigned", a, None, "manual", "customer asked for someone else"),
                                    ("reassigned", b, a, "auto", "customer asked for someone else")]
    assert unassign(conn, store.account, first, "not b either", now=NOW) == b
    assert assign(store).waiting == 1  # neither a nor b gets it back
    assert not pending_work(conn, store.accounts, now=NOW)


def test_confirmation_cancellation_and_deletion_close_assignments_and_free_capacity(store, conn):
    a = store.agent("a", capacity=4)
    orders = store.orders(4)
    assign(store)
    store.set_order(orders[0], confirmation_state="CONFIRMEE")  # case and accents do not matter
    store.set_order(orders[1], order_state="Annulé")
    store.set_order(orders[2], deleted_at=NOW)
    store.set_order(orders[3], confirmation_state="Injoignable")  # the agent calls again later: stays open
    later = store.orders(3)
    result = assign(store)
    assert (result.closed, result.assigned, result.waiting) == (3, 3, 0)
    assert [store.holder(o)[1] for o in orders] == ["closed", "closed", "closed", "open"]
    assert store.log(orders[0])[-1] == ("closed", a, None, "auto", "confirmation: CONFIRMEE, order: Nouvelle")
    assert store.log(orders[2])[-1] == ("closed", a, None, "auto", "order deleted")
    assert all(store.holder(o) == (a, "open") for o in later)
    store.set_order(later[0], confirmed_at=NOW)  # confirmed, whatever the state's name
    assert assign(store).closed == 1


def test_only_new_orders_enter_the_queue(store):
    store.agent("a")
    fresh = store.orders(1) + store.orders(1, confirmation_state="En attente")
    settled = store.orders(1, confirmation_state="Confirmé") + store.orders(1, confirmation_state="Injoignable")
    assign(store)
    assert all(store.holder(o) is not None for o in fresh)
    assert all(store.holder(o) is None for o in settled)


def test_historical_orders_are_not_assigned(conn, unique):
    account = f"history-{unique}"
    helper = Store(conn, account, f"agent-{unique}")
    try:
        upsert_account(conn, "ecomanager", account, credentials_env="X")
        connected_at = conn.execute("SELECT created_at FROM sync.integrations WHERE provider = 'ecomanager'"
                                    " AND account = %s", (account,)).fetchone()[0]
        helper.agent("a")
        history = helper.orders(5, created_at=connected_at - timedelta(days=30))
        new = helper.orders(2, created_at=connected_at + timedelta(seconds=1))
        result = assign_pending(conn, [account], now=connected_at + timedelta(minutes=5))
        assert (result.assigned, result.waiting) == (2, 0)
        assert all(helper.holder(o) is None for o in history) and all(helper.holder(o) for o in new)
        set_assign_from(conn, account, connected_at - timedelta(days=31))  # an admin takes the backlog too
        assert assign_pending(conn, [account], now=connected_at + timedelta(minutes=6)).assigned == 5
    finally:
        for table in ("activity_log", "assignments", "orders", "assignment_stores"):
            conn.execute(f"DELETE FROM ecomanager.{table} WHERE account = %s", (account,))
        conn.execute("DELETE FROM ecomanager.agents WHERE agent_id = ANY(%s)", (helper.agents,))
        conn.execute("DELETE FROM sync.integrations WHERE provider = 'ecomanager' AND account = %s", (account,))


def test_a_store_unknown_to_the_registry_starts_at_its_first_assignment(conn, unique):
    account = f"unknown-{unique}"
    helper = Store(conn, account, f"agent-{unique}")
    try:
        helper.agent("a")
        before = helper.orders(1, created_at=NOW - timedelta(minutes=1))
        assert assign_pending(conn, [account], now=NOW).assigned == 0  # first seen now: that order is history
        after = helper.orders(1, created_at=NOW + timedelta(minutes=1))
        assert assign_pending(conn, [account], now=NOW + timedelta(minutes=2)).assigned == 1
        assert helper.holder(before[0]) is None and helper.holder(after[0]) is not None
    finally:
        for table in ("activity_log", "assignments", "orders", "assignment_stores"):
            conn.execute(f"DELETE FROM ecomanager.{table} WHERE account = %s", (account,))
        conn.execute("DELETE FROM ecomanager.agents WHERE agent_id = ANY(%s)", (helper.agents,))


def test_assignment_refuses_a_snapshot_isolation_that_would_hide_the_previous_holders_rows(store, database_url):
    with psycopg.connect(database_url, autocommit=True) as own:
        own.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(RuntimeError, match="READ COMMITTED"):
            assign_pending(own, store.accounts, now=NOW)


def test_metadata_counts_what_the_call_did(store):
    a = store.agent("a", capacity=1)
    store.orders(2)
    metadata = assign(store).as_metadata()
    assert metadata == {"orders_assigned": 1, "orders_reassigned": 0, "orders_waiting_for_agent": 1,
                        "assignments_closed": 0, "assignments_unassigned": 0, "assigned_by_agent": {a: 1}}


def test_the_daily_cleanup_trims_the_activity_log_at_its_boundary(store, conn):
    from sync_pipelines.core.providers import RetentionDeclaration
    from sync_pipelines.defs.ecomanager.agents import ACTIVITY_LOG
    from sync_pipelines.defs.operations.cleanup import purge

    conn.execute("INSERT INTO ecomanager.activity_log (at, account, order_id, agent_id, action) VALUES"
                 " (now() - interval '30 days 1 minute', %(a)s, 1, 'x', 'assigned'),"
                 " (now() - interval '29 days 23 hours', %(a)s, 2, 'x', 'assigned')", {"a": store.account})
    purge(conn, RetentionDeclaration(name="ecomanager_activity_log", table=ACTIVITY_LOG, timestamp_column="at"), 30)
    assert [row[0] for row in conn.execute("SELECT order_id FROM ecomanager.activity_log WHERE account = %s",
                                           (store.account,))] == [2]
