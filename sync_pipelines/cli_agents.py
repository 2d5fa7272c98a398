"""`sync-pipelines agents …`: the EcoManager confirmation agents and the orders waiting for one.

    agents add AGENT_ID --name N [--capacity 20] [--stores S1,S2] [--hours 08:00-17:00] [--timezone TZ]
    agents set AGENT_ID [--name N] [--capacity N] [--stores S1,S2 | --all-stores] [--hours H | --no-hours]
                        [--timezone TZ] [--available | --unavailable] [--active | --inactive]
    agents list [--json]                 load (open orders) / capacity, on duty, stores, hours
    agents deactivate AGENT_ID           their open orders go to others at the next assignment
    agents unassign STORE ORDER_ID --reason TEXT   back to the queue, never to that agent again
    agents queue [--store S] [--limit N] [--json]  orders waiting for an agent, longest first
    agents assign [--store S]            assign now (the sensor does it within a minute anyway)
    agents assign-from STORE TIME        assign the store's orders created from TIME on (ISO 8601)

Changes to agents take effect at the next assignment: after each sync or webhook of the store,
or the `ecomanager_waiting_orders` sensor's next tick. Rules: `defs/ecomanager/assignment.py`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict
from datetime import UTC, datetime, time

import psycopg

from sync_pipelines.core.database import connect_app_database
from sync_pipelines.defs.ecomanager.agents import Agent, add_agent, list_agents, update_agent
from sync_pipelines.defs.ecomanager.assignment import assign_pending, unassign
from sync_pipelines.defs.ecomanager.assignment_queue import set_assign_from, waiting_orders
from sync_pipelines.defs.ecomanager.provider import normalise_store

_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class InputError(Exception):
    """Bad input: one line on stderr, exit 2."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    agents = sub.add_parser("agents", help="EcoManager confirmation agents and the orders waiting for one")
    actions = agents.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="add an agent (or overwrite the given fields)")
    add.add_argument("agent_id")
    add.add_argument("--name", required=True)
    add.add_argument("--capacity", type=int, default=20, help="most open orders at once (default 20)")
    _agent_options(add)

    change = actions.add_parser("set", help="change an agent")
    change.add_argument("agent_id")
    change.add_argument("--name")
    change.add_argument("--capacity", type=int)
    _agent_options(change)
    change.add_argument("--all-stores", action="store_true", help="serve every store")
    change.add_argument("--no-hours", action="store_true", help="no working hours: on duty whenever available")
    duty = change.add_mutually_exclusive_group()
    duty.add_argument("--available", dest="available", action="store_true", default=None)
    duty.add_argument("--unavailable", dest="available", action="store_false")
    state = change.add_mutually_exclusive_group()
    state.add_argument("--active", dest="active", action="store_true", default=None)
    state.add_argument("--inactive", dest="active", action="store_false")

    listing = actions.add_parser("list", help="agents with their load")
    listing.add_argument("--json", action="store_true")

    actions.add_parser("deactivate", help="an agent leaves: their open orders go to others").add_argument("agent_id")

    take = actions.add_parser("unassign", help="take an order from its agent: back to the queue")
    take.add_argument("store")
    take.add_argument("order_id", type=int)
    take.add_argument("--reason", required=True)

    queue = actions.add_parser("queue", help="orders waiting for an agent, longest first")
    queue.add_argument("--store")
    queue.add_argument("--limit", type=int, default=100)
    queue.add_argument("--json", action="store_true")

    now = actions.add_parser("assign", help="assign waiting orders now")
    now.add_argument("--store")

    start = actions.add_parser("assign-from", help="assign a store's orders created from TIME on")
    start.add_argument("store")
    start.add_argument("time", help="ISO 8601 with an offset, e.g. 2026-12-01T00:00:00+01:00")

    agents.set_defaults(func=cmd_agents)


def _agent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stores", help="comma-separated stores (subdomains) served; default: every store")
    parser.add_argument("--hours", help="working hours HH:MM-HH:MM in --timezone (end before start: overnight)")
    parser.add_argument("--timezone", help="IANA zone of the hours (default Africa/Algiers)")


def cmd_agents(args: argparse.Namespace) -> int:
    try:
        with connect_app_database(autocommit=True) as conn:
            return ACTIONS[args.action](conn, args)
    except InputError as error:
        print(f"sync-pipelines: {error}", file=sys.stderr)
        return 2


def _store(text: str) -> str:
    try:
        return normalise_store(text)
    except ValueError as error:
        raise InputError(str(error)) from None


def _fields(args: argparse.Namespace) -> dict:
    fields = {}
    for name in ("name", "capacity", "timezone", "available", "active"):
        if getattr(args, name, None) is not None:
            fields[name] = getattr(args, name)
    if args.stores is not None:
        stores = [_store(s) for s in args.stores.split(",") if s.strip()]
        if not stores:
            raise InputError("--stores needs at least one store (or --all-stores)")
        fields["stores"] = sorted(set(stores))
    if getattr(args, "all_stores", False):
        if args.stores is not None:
            raise InputError("give --stores or --all-stores, not both")
        fields["stores"] = None
    if args.hours is not None:
        match = _HOURS.match(args.hours.strip())
        try:
            start, end = (time(int(match[1]), int(match[2])), time(int(match[3]), int(match[4]))) if match else (None, None)
        except ValueError:
            start = None
        if start is None or start == end:
            raise InputError("--hours takes HH:MM-HH:MM with a different start and end, e.g. 08:00-17:00")
        fields.update(work_start=start, work_end=end)
    if getattr(args, "no_hours", False):
        if args.hours is not None:
            raise InputError("give --hours or --no-hours, not both")
        fields.update(work_start=None, work_end=None)
    return fields


def add(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    fields = _fields(args)
    name = fields.pop("name")
    try:
        agent = add_agent(conn, args.agent_id, name, **fields)
    except ValueError as error:
        raise InputError(str(error)) from None
    print(f"agent {agent.agent_id}: {describe(agent)}")
    return 0


def change(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    fields = _fields(args)
    if not fields:
        raise InputError("nothing to change: give --name, --capacity, --stores/--all-stores, --hours/--no-hours,"
                         " --timezone, --available/--unavailable or --active/--inactive")
    try:
        agent = update_agent(conn, args.agent_id, **fields)
    except ValueError as error:
        raise InputError(str(error)) from None
    if agent is None:
        print(f"no such agent: {args.agent_id}")
        return 1
    print(f"agent {agent.agent_id}: {describe(agent)}")
    if fields.get("active") is False or fields.get("available") is False:
        print(f"their {agent.open_orders} open orders go to other agents at the next assignment")
    return 0


def deactivate(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    agent = update_agent(conn, args.agent_id, active=False)
    if agent is None:
        print(f"no such agent: {args.agent_id}")
        return 1
    print(f"deactivated {agent.agent_id}; their {agent.open_orders} open orders go to other agents at the next"
          " assignment")
    return 0


def describe(agent: Agent) -> str:
    state = "active" if agent.active else "inactive"
    duty = "available" if agent.available else "unavailable"
    hours = (f"{agent.work_start:%H:%M}-{agent.work_end:%H:%M} {agent.timezone}" if agent.work_start else "any time")
    stores = ",".join(agent.stores) if agent.stores is not None else "every store"
    return f"{state}, {duty}, load {agent.open_orders}/{agent.capacity}, hours {hours}, stores {stores}"


def list_them(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    agents = list_agents(conn)
    if args.json:
        print(json.dumps([asdict(a) for a in agents], indent=2, default=_json_value))
        return 0
    if not agents:
        print("no agents: add one with `sync-pipelines agents add AGENT_ID --name NAME`")
        return 0
    rows = [("agent", "name", "state", "load", "hours", "stores")]
    rows += [(a.agent_id, a.name, ("active" if a.active else "inactive") + ("" if a.available else ", unavailable"),
              f"{a.open_orders}/{a.capacity}",
              f"{a.work_start:%H:%M}-{a.work_end:%H:%M} {a.timezone}" if a.work_start else "any time",
              ",".join(a.stores) if a.stores is not None else "every store") for a in agents]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def take(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    store = _store(args.store)
    agent = unassign(conn, store, args.order_id, args.reason)
    if agent is None:
        print(f"{store} order {args.order_id} has no open assignment")
        return 1
    print(f"took {store} order {args.order_id} from {agent}; it waits for another agent")
    return 0


def queue(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InputError("--limit must be at least 1")
    stores = [_store(args.store)] if args.store else None
    waiting = waiting_orders(conn, stores, limit=args.limit)
    if args.json:
        print(json.dumps([asdict(w) for w in waiting], indent=2, default=_json_value))
        return 0
    if not waiting:
        print("no orders waiting for an agent")
        return 0
    now = datetime.now(UTC)
    for w in waiting:
        why = f" (was {w.previous_agent_id}: {w.reason})" if w.previous_agent_id else ""
        print(f"{w.account}  {w.order_id}  waiting since {w.waiting_since:%Y-%m-%d %H:%M UTC}"
              f" ({_age(now - w.waiting_since)}){why}")
    return 0


def assign_now(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    result = assign_pending(conn, [_store(args.store)] if args.store else None)
    print(f"assigned {result.assigned}, reassigned {result.reassigned}, closed {result.closed},"
          f" unassigned {result.unassigned}; {result.waiting} waiting")
    return 0


def assign_from(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    store = _store(args.store)
    try:
        moment = datetime.fromisoformat(args.time.replace("Z", "+00:00"))
        set_assign_from(conn, store, moment)
    except ValueError:
        raise InputError(f"TIME is ISO 8601 with an offset, e.g. 2026-12-01T00:00:00+01:00, not {args.time!r}") from None
    print(f"{store}: orders created from {moment.isoformat()} on are assigned; earlier ones are history")
    return 0


def _age(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 0)} min"


def _json_value(value):
    return value.isoformat() if isinstance(value, (datetime, time)) else str(value)


ACTIONS = {"add": add, "set": change, "list": list_them, "deactivate": deactivate, "unassign": take,
           "queue": queue, "assign": assign_now, "assign-from": assign_from}
