"""`sync-pipelines agents …` on the real database: add/set/list, deactivate, unassign, the queue."""

from __future__ import annotations

import json
from datetime import time, timedelta

from sync_pipelines.cli import main
from sync_pipelines.defs.ecomanager.agents import get_agent
from sync_pipelines.defs.ecomanager.assignment import assign_pending
from sync_pipelines_tests.defs.ecomanager.assignment_helpers import T0, Store, store  # noqa: F401 (fixture)

NOW = T0 + timedelta(hours=3)


def run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


def test_add_set_and_list_agents(store, conn, capsys):
    agent_id = f"{store.prefix}-amina"
    store.agents.append(agent_id)
    assert run(["agents", "add", agent_id, "--name", "Amina", "--capacity", "5",
                "--stores", f"https://{store.account}.ecomanager.dz/", "--hours", "08:00-17:00"]) == 0
    agent = get_agent(conn, agent_id)
    assert (agent.name, agent.capacity, agent.stores, agent.work_start, agent.work_end, agent.timezone) == (
        "Amina", 5, [store.account], time(8), time(17), "Africa/Algiers")
    assert run(["agents", "set", agent_id, "--unavailable", "--all-stores", "--no-hours", "--capacity", "7"]) == 0
    agent = get_agent(conn, agent_id)
    assert (agent.available, agent.stores, agent.work_start, agent.capacity) == (False, None, None, 7)
    run(["agents", "set", agent_id, "--stores", store.account, "--available"])  # keep it off other tests' stores
    store.orders(2)
    assign_pending(conn, store.accounts, now=NOW)
    capsys.readouterr()
    assert run(["agents", "list", "--json"]) == 0
    [listed] = [a for a in json.loads(capsys.readouterr().out) if a["agent_id"] == agent_id]
    assert (listed["open_orders"], listed["capacity"], listed["stores"]) == (2, 7, [store.account])
    assert run(["agents", "list"]) == 0
    assert f"{agent_id}  Amina" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(store, capsys):
    agent_id = f"{store.prefix}-x"
    store.agents.append(agent_id)
    assert run(["agents", "add", agent_id, "--name", "X", "--hours", "8-17"]) == 2
    assert "HH:MM-HH:MM" in capsys.readouterr().err
    assert run(["agents", "add", agent_id, "--name", "X", "--timezone", "Mars/Olympus"]) == 2
    assert "unknown time zone" in capsys.readouterr().err
    assert run(["agents", "add", agent_id, "--name", "X", "--capacity", "-1"]) == 2
    assert run(["agents", "set", agent_id]) == 2
    assert "nothing to change" in capsys.readouterr().err
    assert run(["agents", "set", "nobody-at-all", "--capacity", "3"]) == 1


def test_deactivate_unassign_and_queue(store, conn, capsys):
    a, b = store.agent("a"), store.agent("b")
    first, second = store.orders(2)
    assign_pending(conn, store.accounts, now=NOW)
    holder = store.holder(first)[0]
    assert run(["agents", "unassign", store.account, str(first), "--reason", "wrong language"]) == 0
    assert f"from {holder}" in capsys.readouterr().out
    assert run(["agents", "unassign", store.account, str(first), "--reason", "again"]) == 1
    assert "has no open assignment" in capsys.readouterr().out
    assert run(["agents", "queue", "--store", store.account, "--json"]) == 0
    [waiting] = json.loads(capsys.readouterr().out)
    assert (waiting["order_id"], waiting["previous_agent_id"], waiting["reason"]) == (first, holder, "wrong language")
    assert run(["agents", "queue", "--store", store.account]) == 0
    assert f"{first}  waiting since" in capsys.readouterr().out
    assert run(["agents", "deactivate", b]) == 0
    assert "open orders go to other agents" in capsys.readouterr().out
    assert run(["agents", "assign", "--store", store.account]) == 0
    assert "reassigned" in capsys.readouterr().out
    # first was taken from its agent by hand and b left: a holds second (if it was b's), first waits or is a's
    assert get_agent(conn, b).active is False
    assert store.holder(second)[0] == a
    assert store.holder(first) == ((a, "open") if holder == b else (holder, "unassigned"))


def test_assign_from_moves_the_store_start(store, conn, capsys):
    store.agent("a")
    [old] = store.orders(1, created_at=T0 - timedelta(days=10))
    assign_pending(conn, store.accounts, now=NOW)
    assert store.holder(old) is None
    assert run(["agents", "assign-from", store.account, "yesterday"]) == 2
    assert run(["agents", "assign-from", store.account, (T0 - timedelta(days=11)).isoformat()]) == 0
    assign_pending(conn, store.accounts, now=NOW)
    assert store.holder(old) is not None
