"""TikTok Ads as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "tiktok_ads"


def advertiser_id(account: str) -> str:
    """An advertiser is stored as its numeric id, as the API's ``advertiser_id`` takes it."""
    number = str(account).strip()
    if not number.isdigit():
        raise ValueError(f"a TikTok advertiser id is digits, not {account!r}")
    return number


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=advertiser_id,
    # Like every ad platform: the nightly sync plus the automation honouring each account's cadence.
    schedules={"nightly": "0 2 * * *"}, automation=True,
    description="TikTok Business API (synchronous reports); the account is an advertiser id (digits)")
