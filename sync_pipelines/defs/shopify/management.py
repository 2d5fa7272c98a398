"""Webhook subscriptions: register / update / unregister / list them through the Admin API, and
check that every shop has exactly the subscriptions it should, pointing at our receiver.

Launched from the Dagster UI with config (`shopify_manage_webhooks`); the `shopify/webhooks` asset
reports the inbox statistics and, through its checks, missing/extra/misaddressed subscriptions.
"""

import os
from typing import Literal

import dagster as dg

from sync_pipelines.core import inbox
from sync_pipelines.core.database import ensure_tables
from sync_pipelines.core.registry import Account, list_accounts
from sync_pipelines.core.dg.resources import AppDatabase, for_each_account
from sync_pipelines.defs.shopify.client import PROVIDER, ShopifyClient
from sync_pipelines.defs.shopify.webhooks import TOPICS


_CURRENT = {"pending", "oldest_pending_age_seconds"}  # the backlog now, not a 24-hour count


def default_address() -> str:
    """Where Shopify should deliver: the receiver's public URL (`SYNC_RECEIVER_PUBLIC_URL`)."""
    base = os.environ.get("SYNC_RECEIVER_PUBLIC_URL", "http://127.0.0.1:8766").rstrip("/")
    return f"{base}/webhooks/{PROVIDER}"


def plan(existing: list[dict], address: str) -> dict[str, list]:
    """What differs from the wanted state: one subscription per topic at `address`."""
    by_topic: dict[str, list[dict]] = {}
    for hook in existing:
        by_topic.setdefault(hook["topic"], []).append(hook)
    for hooks in by_topic.values():  # keep the one already at our address, if any
        hooks.sort(key=lambda hook: hook["address"] != address)
    missing = [t for t in TOPICS if t not in by_topic]
    wrong_address = [h for t in TOPICS for h in by_topic.get(t, [])[:1] if h["address"] != address]
    extra = [h for t, hooks in by_topic.items() for h in (hooks if t not in TOPICS else hooks[1:])]
    return {"missing": missing, "wrong_address": wrong_address, "extra": extra}


class ManageWebhooksConfig(dg.Config):
    action: Literal["register", "update", "unregister", "list"] = "list"
    """register: create missing; update: also fix addresses and drop extras; unregister: delete ours."""
    shop: str | None = None
    """One shop (myshopify domain); empty = every active shop."""
    address: str | None = None
    """Delivery address; empty = SYNC_RECEIVER_PUBLIC_URL + /webhooks/shopify."""


def _shops(app_db: AppDatabase, only: str | None) -> list[Account]:
    with app_db.connect() as conn:
        accounts = list_accounts(conn, PROVIDER, active_only=True)
    return [a for a in accounts if only in (None, a.account)]


def manage(client: ShopifyClient, account: Account, action: str, address: str) -> dict[str, int]:
    """Bring one shop's subscriptions to the wanted state for `action`; returns what changed."""
    done = {"created": 0, "updated": 0, "deleted": 0, "listed": 0}
    with client.session(account) as session:
        existing = session.webhooks()
        done["listed"] = len(existing)
        diff = plan(existing, address)
        if action == "unregister":
            for hook in existing:
                if hook["address"] == address or hook["topic"] in TOPICS:
                    session.delete_webhook(hook["id"])
                    done["deleted"] += 1
            return done
        if action in ("register", "update"):
            for topic in diff["missing"]:
                session.create_webhook(topic, address)
                done["created"] += 1
        if action == "update":
            for hook in diff["wrong_address"]:
                session.update_webhook(hook["id"], address)
                done["updated"] += 1
            for hook in diff["extra"]:
                session.delete_webhook(hook["id"])
                done["deleted"] += 1
    return done


@dg.op(required_resource_keys={"app_db", "shopify"}, tags={"sync/provider": PROVIDER})
def manage_webhooks(context: dg.OpExecutionContext, config: ManageWebhooksConfig) -> None:
    address = config.address or default_address()
    for_each_account(
        context,
        _shops(context.resources.app_db, config.shop),
        lambda account: manage(context.resources.shopify, account, config.action, address),
    )


@dg.job(name="shopify_manage_webhooks", executor_def=dg.in_process_executor, tags={"sync/provider": PROVIDER},
        description="Register, update, unregister or list webhook subscriptions (set the action in config).")
def manage_webhooks_job():
    manage_webhooks()


@dg.asset(
    key=["shopify", "webhooks"],
    group_name=PROVIDER,
    kinds={"shopify"},
    owners=["team:data-eng"],
    description="Webhook health: inbox statistics and each shop's subscriptions vs the wanted set.",
    check_specs=[
        dg.AssetCheckSpec("subscriptions_match", asset=["shopify", "webhooks"],
                          description="Every active shop subscribes to every topic at our address, nothing else."),
        dg.AssetCheckSpec("deliveries_flowing", asset=["shopify", "webhooks"],
                          description="No delivery waits in the inbox for more than 10 minutes."),
    ],
)
def webhooks_health(context: dg.AssetExecutionContext, app_db: AppDatabase, shopify: ShopifyClient):
    from datetime import UTC, datetime, timedelta

    address = default_address()
    with app_db.connect() as conn:
        ensure_tables(conn, inbox.TABLES)
        stats = inbox.stats(conn, PROVIDER, since=datetime.now(UTC) - timedelta(days=1))
    problems: dict[str, dict] = {}
    for account in _shops(app_db, None):
        try:
            with shopify.session(account) as session:
                diff = plan(session.webhooks(), address)
        except Exception as error:
            problems[account.account] = {"error": str(error)}
            continue
        summary = {k: len(v) for k, v in diff.items() if v}
        if summary:
            problems[account.account] = summary
    oldest = stats.get("oldest_pending_age_seconds") or 0
    yield dg.MaterializeResult(
        metadata={
            **{(k if k in _CURRENT else f"last_24h_{k}"): v for k, v in stats.items() if not isinstance(v, dict)},
            "rejected_by_reason": dg.MetadataValue.json(stats.get("rejected_by_reason", {})),
            "subscription_problems": dg.MetadataValue.json(problems),
            "address": address,
        }
    )
    yield dg.AssetCheckResult(check_name="subscriptions_match", passed=not problems,
                              metadata={"problems": dg.MetadataValue.json(problems)})
    yield dg.AssetCheckResult(check_name="deliveries_flowing", passed=oldest <= 600,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"oldest_pending_age_seconds": float(oldest)})


webhooks_health_job = dg.define_asset_job(
    "shopify_webhooks_health", selection=[webhooks_health], executor_def=dg.in_process_executor,
    tags={"sync/provider": PROVIDER},
)
