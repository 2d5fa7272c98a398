"""`POST /triggers/replication_sync` (bearer or QStash) launches a replication run; the body is not used."""

from sync_pipelines.core.providers import TriggerDeclaration

TRIGGER = TriggerDeclaration("replication_sync", description="copy the configured source tables now")
