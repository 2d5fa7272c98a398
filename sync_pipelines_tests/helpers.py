"""Small helpers shared by the provider tests."""

import contextlib
import os
import signal
from pathlib import Path


def kill_leftovers(dagster_home: str) -> None:
    """A Dagster CLI (`dagster dev`, `dagster definitions validate`) can leave its code server
    (`dagster api grpc`) behind, re-parented to init; each names our DAGSTER_HOME in its arguments."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if dagster_home in arguments and "dagster" in arguments:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


def metadata_by_asset(result) -> dict[str, dict]:
    """asset name → {metadata key: plain value} for each materialization in the run."""
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        found[materialization.asset_key.path[-1]] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    return found
