"""Which provider and account a Dagster run belongs to, for status and alerts."""

import dagster as dg

PROVIDER_TAG = "sync/provider"
ACCOUNT_TAG = "sync/account"


def provider_of(run: dg.DagsterRun) -> str | None:
    """The run's `sync/provider` tag; for a run without it (e.g. "Materialize all" from the UI,
    which carries no job tags) the provider its selected assets share (keys are provider/name)."""
    tagged = run.tags.get(PROVIDER_TAG)
    if tagged:
        return tagged
    providers = {key.path[0] for key in run.asset_selection or () if len(key.path) > 1}
    return providers.pop() if len(providers) == 1 else None


def account_of(run: dg.DagsterRun) -> str:
    return run.tags.get(ACCOUNT_TAG) or run.tags.get("dagster/partition") or ""
