"""Google Ads as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "google_ads"


def normalise_customer_id(account: str) -> str:
    """A customer id as the API takes it: ``123-456-7890`` (as Google Ads shows it) → ``1234567890``.

    The REST path and ``login-customer-id`` want the 10 digits without dashes
    (https://developers.google.com/google-ads/api/rest/auth); anything else is refused here rather
    than by every sync."""
    digits = str(account).strip().replace("-", "")
    if len(digits) != 10 or not digits.isdigit():
        raise ValueError(f"a Google Ads customer id is 10 digits (dashes allowed), not {account!r}")
    return digits


DECLARATION = ProviderDeclaration(
    name=NAME, normalise_account=normalise_customer_id,
    # schedules.py: the nightly sync; sensors.py: the automation honouring each account's cadence.
    schedules={"nightly": "0 2 * * *"}, automation=True,
    description="Google Ads API (REST); the account is a customer id, e.g. 123-456-7890 (stored as 1234567890);"
                " a customer reached through a manager account needs the setting login_customer_id")
