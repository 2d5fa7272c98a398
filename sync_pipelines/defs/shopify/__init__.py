"""Shopify: Admin API sync, webhook rules and webhook-driven assets (this `__init__` stays Dagster-free)."""
