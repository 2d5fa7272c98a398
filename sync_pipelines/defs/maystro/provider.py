"""Maystro as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "maystro"
DEFAULT_TIMEZONE = "Africa/Algiers"
"""The stores' default time zone (polls at 00:00, 06:00, 12:00, 18:00 in it; `accounts set --timezone`)."""

STATUS_RUN_AT = "00:00 06:00 12:00 18:00 store time"
"""When the status schedule (schedules.py) polls a store, on the store's own clock."""


def normalise_store(account: str) -> str:
    """A Maystro store name as we register it: trimmed, lowercase (it appears in webhook URLs)."""
    text = str(account).strip().lower()
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError(f"a Maystro account is a store name of letters, digits, '-', '_' or '.', not {account!r}")
    return text


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=normalise_store,
    # schedules.py: every 6 hours on each store's own clock.
    schedules={"shipping status": STATUS_RUN_AT},
    description="Maystro delivery API; the account is a store name of ours, its API key (Authorization: Token)"
                " in the env var named by --credentials-env",
)
