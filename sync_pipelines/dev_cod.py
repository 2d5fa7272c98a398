"""`make dev`'s cash-on-delivery pair (seed 003): the EcoManager and Maystro sandboxes, two demo
stores on each, two confirmation agents, and — once the receiver is up — each store's webhooks
pointed at it (EcoManager's created through its API, which probes the URL; Maystro's per-store
token URL). The sandboxes drift: new orders arrive, agents confirm, parcels move.

Dev only (imports the sandboxes). The webhook secrets are fixed dev values unless set.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from contextlib import ExitStack

STORES = {"natureldz": 2_000, "lekidi": 500}  # store → historical orders (EcoManager and Maystro)
AGENTS = {"agent-amina": "Amina", "agent-karim": "Karim"}
ECOMANAGER_SECRET = "sandbox-ecomanager-webhook-secret"
MAYSTRO_SECRET = "sandbox-maystro-webhook-secret"


def start(env: dict[str, str], stack: ExitStack, args: argparse.Namespace, register: Callable[[str, dict], None],
          secret_for: Callable[[str, str], str], env_for: Callable[[str, str], str]) -> dict[str, str]:
    """Serve both sandboxes, point the clients at them, register the stores (when `register`)."""
    from sync_pipelines.sandbox.ecomanager import EcoManagerSandbox
    from sync_pipelines.sandbox.maystro import MaystroSandbox
    from sync_pipelines.sandbox.server import serve_in_thread

    ecomanager = EcoManagerSandbox(seed=7)
    maystro = MaystroSandbox(seed=7)
    stack.callback(ecomanager.close)
    stack.callback(maystro.close)
    for store, orders in STORES.items():
        ecomanager.add_store(store, orders=orders, token=secret_for("ecomanager", store))
        maystro.add_store(secret_for("maystro", store), orders=orders, name=store)
        env[env_for("ecomanager", store)] = secret_for("ecomanager", store)
        env[env_for("maystro", store)] = secret_for("maystro", store)
    ecomanager_url = stack.enter_context(serve_in_thread(ecomanager.app, port=args.ecomanager_sandbox_port)).url
    maystro_url = stack.enter_context(serve_in_thread(maystro.app, port=args.maystro_sandbox_port)).url
    env["ECOMANAGER_BASE_URL"] = ecomanager.base_url_template(ecomanager_url)
    env["MAYSTRO_BASE_URL"] = maystro_url
    env.setdefault("ECOMANAGER_WEBHOOK_SECRET", ECOMANAGER_SECRET)
    env.setdefault("MAYSTRO_WEBHOOK_SECRET", MAYSTRO_SECRET)
    register("ecomanager", STORES)
    register("maystro", STORES)
    for box in (ecomanager, maystro):
        box.start_drift(args.drift_seconds)
    return {"EcoManager shop API v2": ecomanager_url, "Maystro delivery API": maystro_url}


def subscribe(env: dict[str, str], receiver: str, connect: Callable, env_for: Callable[[str, str], str]) -> None:
    """The demo agents, and every demo store's webhooks pointed at the receiver."""
    import os
    from sync_pipelines.core.registry import get_account
    from sync_pipelines.defs.ecomanager.agents import add_agent, get_agent
    from sync_pipelines.defs.ecomanager.client import EcoManagerClient
    from sync_pipelines.defs.ecomanager.webhooks import EVENTS
    from sync_pipelines.defs.maystro.client import MaystroClient
    from sync_pipelines.defs.maystro.webhooks import webhook_path

    with connect(env) as conn:
        for agent_id, name in AGENTS.items():
            if get_agent(conn, agent_id) is None:
                add_agent(conn, agent_id, name, capacity=25, stores=list(STORES))
        eco_client = EcoManagerClient(base_url_template=env["ECOMANAGER_BASE_URL"])
        maystro_client = MaystroClient(base_url=env["MAYSTRO_BASE_URL"])
        for store in STORES:  # the sessions read each store's token from the environment
            os.environ.update({name: env[name] for name in (env_for("ecomanager", store), env_for("maystro", store))})
            eco_account, maystro_account = get_account(conn, "ecomanager", store), get_account(conn, "maystro", store)
            with eco_client.session(eco_account) as session:
                existing = {hook.get("event") for hook in session.webhooks()}
                for event in EVENTS:
                    if event not in existing:  # activation probes GET <receiver>/webhooks/ecomanager
                        session.create_webhook(name=f"sync-pipelines {event}", event=event,
                                               delivery_url=f"{receiver}/webhooks/ecomanager",
                                               secret=env["ECOMANAGER_WEBHOOK_SECRET"])
            with maystro_client.session(maystro_account) as session:
                session.ensure_hook(receiver + webhook_path(env["MAYSTRO_WEBHOOK_SECRET"], store))

