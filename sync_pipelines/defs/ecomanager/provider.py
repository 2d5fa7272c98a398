"""EcoManager as the registry knows it (pure: no Dagster, the CLI and the receiver read it).

A store is reached at `https://{store}.ecomanager.dz`; its account id is that subdomain. Webhooks
name the store by the full URL in `X-Ecomanager-Source`, so both forms normalise to the subdomain.
"""

import re
from urllib.parse import urlsplit

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "ecomanager"
DEFAULT_TIMEZONE = "Africa/Algiers"
"""The stores' default time zone (schedules run 08:00–20:00 in it; `accounts set --timezone`)."""

ORDERS_RUN_AT = "hourly 08:00–20:00 store time, complete listing 21:00"
"""When the orders schedule (schedules.py) syncs a store, on the store's own clock."""

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def normalise_store(account: str) -> str:
    """`natureldz`, `NatureLDZ`, `natureldz.ecomanager.dz` or `https://natureldz.ecomanager.dz/` → `natureldz`."""
    text = str(account).strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.rstrip("/")
    if text.endswith(".ecomanager.dz"):
        text = text[: -len(".ecomanager.dz")]
    if not _SUBDOMAIN.match(text):
        raise ValueError(f"an EcoManager store is its subdomain (as in https://STORE.ecomanager.dz), not {account!r}")
    return text


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=normalise_store,
    # schedules.py: hourly 08:00–20:00 in each store's own time zone; the daily reconciliation.
    schedules={"orders": ORDERS_RUN_AT},
    description="EcoManager shop API v2; the account is the store's subdomain (STORE in https://STORE.ecomanager.dz),"
                " its API token in the env var named by --credentials-env",
)
