"""Small helpers shared by the provider tests."""


def metadata_by_asset(result) -> dict[str, dict]:
    """asset name → {metadata key: plain value} for each materialization in the run."""
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found[materialization.asset_key.path[-1]] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    return found
