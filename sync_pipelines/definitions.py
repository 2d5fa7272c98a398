"""The code location: every provider folder's Definitions merged, plus the shared app database.

Each folder of `sync_pipelines/defs/` whose `definitions.py` exports `defs` (a `dg.Definitions`)
is found by scanning the package, the same way the receiver and the CLI find the folders'
`webhooks.py` and `provider.py`: adding a provider is adding its folder, nothing to list here.
(`dg.load_from_defs_folder` was not used: it imports every module of every folder and collects
their module-level assets and jobs besides the folder's `defs`, so each would be loaded twice.)

Every process that loads the location — above all each run, a fresh process that exits when its
work is done — freezes the collector's heap at exit: otherwise the interpreter's last collections
walk the whole import-time heap (Dagster's and ours, ~1,200 modules) only to free memory the
operating system takes back a moment later, 0.3–0.7 s per run on this machine (see
docs/benchmarks-runs.md). Objects that die with a count of zero are still freed as before; what
the exit no longer does is look for reference cycles.
"""

import atexit
import gc
from types import ModuleType

import dagster as dg

import sync_pipelines.defs
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.dg.triggers import build_trigger_sensor
from sync_pipelines.core.providers import declared_modules, discover_triggers


def folder_definitions(package: ModuleType = sync_pipelines.defs) -> list[dg.Definitions]:
    """`defs` of every `<package>.<folder>.definitions` module, in folder name order."""
    found = []
    for module in declared_modules(package, "definitions"):
        defs = getattr(module, "defs", None)
        if not isinstance(defs, dg.Definitions):
            raise TypeError(f"{module.__name__} must export `defs`, a dg.Definitions (found {defs!r})")
        found.append(defs)
    return found


def trigger_definitions(folders: list[dg.Definitions], package: ModuleType = sync_pipelines.defs) -> dg.Definitions:
    """One sensor launching every job a folder's `triggers.py` opens to `POST /triggers/<job>`
    (a declared job no folder defines, e.g. replication with no tables configured, is left out)."""
    declared = discover_triggers(package)
    jobs = [job for folder in folders for job in folder.jobs or () if job.name in declared]
    if not jobs:
        return dg.Definitions()
    bodies = {name: t.parse_body for name, t in declared.items() if t.parse_body is not None}
    return dg.Definitions(sensors=[build_trigger_sensor(jobs, bodies=bodies)])


atexit.register(gc.freeze)  # runs before the interpreter's final collections (atexit is first)

_folders = folder_definitions()
defs = dg.Definitions.merge(
    *_folders,
    trigger_definitions(_folders),
    # Also for runs outside the named jobs ("Materialize all"): API-bound steps, where a
    # subprocess per step would cost seconds.
    dg.Definitions(resources={"app_db": AppDatabase()}, executor=dg.in_process_executor),
)
