"""The sensor factory that keeps a provider's dynamic partitions equal to its active accounts."""

import dagster as dg

from sync_pipelines.core.registry import list_accounts
from sync_pipelines.core.dg.resources import AppDatabase


def build_partitions_sensor(
    provider: str, partitions_def: dg.DynamicPartitionsDefinition, *, minimum_interval_seconds: int = 30
) -> dg.SensorDefinition:
    """A sensor adding a partition per active account and removing deactivated ones."""
    assert partitions_def.name is not None

    @dg.sensor(
        name=f"{provider}_accounts_sensor",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Adds a partition for each active {provider} account and removes deactivated ones.",
    )
    def accounts_sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
        with app_db.connect() as conn:
            wanted = {a.account for a in list_accounts(conn, provider, active_only=True)}
        current = set(context.instance.get_dynamic_partitions(partitions_def.name))
        added, removed = sorted(wanted - current), sorted(current - wanted)
        requests: list = []
        if added:
            requests.append(partitions_def.build_add_request(added))
        if removed:
            requests.append(partitions_def.build_delete_request(removed))
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason(f"{len(current)} accounts, no change"))
        context.log.info(f"{provider}: adding {added}, removing {removed}")
        return dg.SensorResult(dynamic_partitions_requests=requests)

    return accounts_sensor
