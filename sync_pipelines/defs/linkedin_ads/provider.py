"""LinkedIn Ads as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "linkedin_ads"
ACCOUNT_URN = "urn:li:sponsoredAccount:"


def ad_account_id(account: str) -> str:
    """An ad account is stored as its number: "508915158" and "urn:li:sponsoredAccount:508915158"
    are both "508915158" (Campaign Manager shows the number; the API's facets take the URN)."""
    raw = str(account).strip()
    number = raw[len(ACCOUNT_URN):] if raw.startswith(ACCOUNT_URN) else raw
    if not number.isdigit():
        raise ValueError(f"a LinkedIn ad account id is digits, or its urn:li:sponsoredAccount URN: {account!r}")
    return number


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=ad_account_id,
    # Like every ad platform: the nightly sync plus the automation honouring each account's cadence.
    schedules={"nightly": "0 2 * * *"}, automation=True,
    description="LinkedIn Marketing API (adAnalytics); the account is an ad account id (digits, or its"
                " urn:li:sponsoredAccount URN, stored as the digits); days are UTC days")
