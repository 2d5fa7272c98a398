"""Core's Dagster half: the factories every provider's definitions are built from (assets,
partitions, schedules, sensors, resources, alerts, status). The machinery they drive lives one
level up, in `sync_pipelines.core`, which imports no Dagster so the webhook receiver can use it."""
