"""Shopify as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "shopify"


def normalise_account(shop: str) -> str:
    """Shops are myshopify hostnames, sent in any case: stored and matched lowercase."""
    return shop.lower()


DECLARATION = ProviderDeclaration(
    name=NAME,
    normalise_account=normalise_account,
    description="Shopify Admin API; the account is the shop's myshopify domain",
    # The seed's per-entity crons (schedules.py); a shop's registry cadence plays no part.
    schedules={"orders+customers": "*/15 * * * *", "products": "*/30 * * * *", "analytics": "0 * * * *",
               "cleanup": "0 2 * * *"},
)
