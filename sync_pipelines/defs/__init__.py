"""One package per provider; each package's `__init__` stays import-light (no Dagster) so the
webhook receiver can use its pure `webhooks.py`."""
