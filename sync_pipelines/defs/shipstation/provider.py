"""ShipStation as the registry knows it (pure: no Dagster, the CLI and the receiver read it)."""

from sync_pipelines.core.providers import ProviderDeclaration

NAME = "shipstation"

# Store ids may be case-sensitive: kept as typed.
DECLARATION = ProviderDeclaration(name=NAME, description="ShipStation API v2; the account is a store id")
