"""Source-database → app-database replication, one asset per configured table (this `__init__` stays Dagster-free)."""
