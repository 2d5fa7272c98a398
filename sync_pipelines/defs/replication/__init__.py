"""Replication from a source PostgreSQL into the app database (this `__init__` stays Dagster-free)."""
