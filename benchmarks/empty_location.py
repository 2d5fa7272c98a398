"""The floor of `benchmarks.run_overhead`: the smallest code location Dagster can run — one job whose
one op does nothing, in process. What a run of it costs is what any Dagster run costs."""

import dagster as dg


@dg.op
def nothing() -> None:
    """Does nothing, so the run's cost is Dagster's alone."""


@dg.job(executor_def=dg.in_process_executor)
def empty():
    nothing()


defs = dg.Definitions(jobs=[empty])
