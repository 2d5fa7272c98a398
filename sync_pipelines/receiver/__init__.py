"""The webhook receiver (Starlette, no Dagster): `create_app` in `app.py`, run with `python -m sync_pipelines.receiver`."""
