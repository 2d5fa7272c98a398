"""The suite's isolation from Dagster's process-wide state (root `conftest.py`): what one test
leaves behind must not fail the next."""

from __future__ import annotations

import gc
import threading

import dagster as dg

def test_a_test_that_drops_an_entered_instance():
    context = dg.instance_for_test()
    instance = context.__enter__()  # as a Dagster context object does when it is dropped unclosed
    assert instance.defs_state_storage is not None  # (what the next test would trip over)
    held = [context]
    del instance, context

    def collect_elsewhere() -> None:  # the collector runs on whichever thread allocates
        held.clear()
        gc.collect()

    worker = threading.Thread(target=collect_elsewhere)
    worker.start()
    worker.join()


def test_the_next_test_still_loads_definitions():
    """Runs after the test above (file order): without the per-test reset this fails with
    "Attempted to resolve undefined DagsterInstance weakref"."""

    @dg.asset
    def thing() -> None:
        return None

    dg.Definitions.validate_loadable(dg.Definitions(assets=[thing]))
