"""Maystro as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "maystro"


def normalise_store(account: str) -> str:
    """A Maystro store name as we register it: trimmed, lowercase (it appears in webhook URLs)."""
    text = str(account).strip().lower()
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise ValueError(f"a Maystro account is a store name of letters, digits, '-', '_' or '.', not {account!r}")
    return text


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=normalise_store,
    schedules={"shipping status": "0 0,6,12,18 * * *"},
    description="Maystro delivery API; the account is a store name of ours, its API key (Authorization: Token)"
                " in the env var named by --credentials-env",
)
