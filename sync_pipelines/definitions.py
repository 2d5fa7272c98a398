"""The code location: every provider folder's Definitions merged, plus the shared app database.

Each folder of `sync_pipelines/defs/` whose `definitions.py` exports `defs` (a `dg.Definitions`)
is found by scanning the package, the same way the receiver and the CLI find the folders'
`webhooks.py` and `provider.py`: adding a provider is adding its folder, nothing to list here.
(`dg.load_from_defs_folder` was not used: it imports every module of every folder and collects
their module-level assets and jobs besides the folder's `defs`, so each would be loaded twice.)
"""

from types import ModuleType

import dagster as dg

import sync_pipelines.defs
from sync_pipelines.core.dg.resources import AppDatabase
from sync_pipelines.core.providers import declared_modules


def folder_definitions(package: ModuleType = sync_pipelines.defs) -> list[dg.Definitions]:
    """`defs` of every `<package>.<folder>.definitions` module, in folder name order."""
    found = []
    for module in declared_modules(package, "definitions"):
        defs = getattr(module, "defs", None)
        if not isinstance(defs, dg.Definitions):
            raise TypeError(f"{module.__name__} must export `defs`, a dg.Definitions (found {defs!r})")
        found.append(defs)
    return found


defs = dg.Definitions.merge(
    *folder_definitions(),
    # Also for runs outside the named jobs ("Materialize all"): API-bound steps, where a
    # subprocess per step would cost seconds.
    dg.Definitions(resources={"app_db": AppDatabase()}, executor=dg.in_process_executor),
)
