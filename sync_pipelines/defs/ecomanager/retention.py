"""The assignment activity log is kept 30 days (the daily cleanup; `retention_days` in its run config)."""

from sync_pipelines.core.providers import RetentionDeclaration
from sync_pipelines.defs.ecomanager import agents

ACTIVITY_LOG = RetentionDeclaration(name="ecomanager_activity_log", table=agents.ACTIVITY_LOG,
                                    timestamp_column="at", days=30,
                                    description="one row per assignment and reassignment")
