"""One package per provider, found by scanning this package (nothing lists them): its
`definitions.py` (`defs`) joins the code location, its pure `provider.py` and `webhooks.py`
declarations are read by the CLI and the webhook receiver. Each package's `__init__` stays
docstring-only (no Dagster), so the receiver can import the declarations without Dagster."""
