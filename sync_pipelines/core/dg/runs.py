"""Which provider, account and kind (sync or webhooks) a Dagster run belongs to, for status and alerts."""

import dagster as dg

PROVIDER_TAG = "sync/provider"
ACCOUNT_TAG = "sync/account"
TRIGGER_TAG = "sync/trigger"
# Webhook apply runs name their provider here, not in `sync/provider`: they never call the
# provider's API, so they stay out of its run concurrency limit (dagster.yaml), and the Runs list
# filters them apart.
WEBHOOKS_TAG = "sync/webhooks"

SYNC, WEBHOOKS = "sync", "webhooks"


def provider_of(run: dg.DagsterRun) -> str | None:
    """The run's `sync/provider` (or `sync/webhooks`) tag; for a run without it (e.g. "Materialize
    all" from the UI, which carries no job tags) the provider its selected assets share (keys are
    provider/name)."""
    tagged = run.tags.get(PROVIDER_TAG) or run.tags.get(WEBHOOKS_TAG)
    if tagged:
        return tagged
    providers = {key.path[0] for key in run.asset_selection or () if len(key.path) > 1}
    return providers.pop() if len(providers) == 1 else None


def kind_of(run: dg.DagsterRun) -> str:
    """`webhooks` for a run applying webhook deliveries (of many accounts), else `sync`."""
    return WEBHOOKS if run.tags.get(WEBHOOKS_TAG) else SYNC


def account_of(run: dg.DagsterRun) -> str:
    return run.tags.get(ACCOUNT_TAG) or run.tags.get("dagster/partition") or ""
