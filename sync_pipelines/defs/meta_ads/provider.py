"""Meta ads as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "meta_ads"


def ad_account_number(account: str) -> str:
    """An ad account is stored as its number: "act_123", "123" and " act_123 " are all "123"
    (Graph paths spell it act_<number>; the number alone is what Meta's UI and exports show)."""
    raw = account.strip()
    number = raw[4:] if raw.lower().startswith("act_") else raw
    if not number.isdigit():
        raise ValueError(f"a Meta ad account id is digits, optionally after 'act_': {account!r}")
    return number


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=ad_account_number,
    # Like every ad platform: the nightly sync plus the automation honouring each account's cadence.
    schedules={"nightly": "0 2 * * *"}, automation=True,
    description="Meta Marketing API (Insights); the account is an ad account id, act_<number> or the number"
                " (stored as the number)")
