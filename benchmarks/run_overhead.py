"""Per-run fixed cost: what a run pays before and after its own work, next to an empty Dagster run.

    .venv/bin/python -m benchmarks.run_overhead [--repeats 7] [--import-repeats 9]
        [--jobs inbox_retention,sync_status_report]

A measurement, not a test: nothing here asserts on timings. It prints a table and writes
``benchmarks/results/run_overhead.json``; method and figures are in ``docs/benchmarks-runs.md``.

**The path measured is the daemon's.** With the `DefaultRunLauncher` the daemon (or the UI) asks
the code server over gRPC to start the run, and the code server starts a *spawn* child process
(``multiprocessing.get_context("spawn")``, ``dagster._grpc.impl.start_run_in_subprocess``): a
fresh interpreter that imports Dagster's run machinery, opens the instance from its ref, loads the
code location (``ReconstructableJob.get_definition()``), executes the run and exits. This script
starts the same kind of child from the same kind of parent and runs the same steps in the same
order as ``dagster._grpc.impl._run_in_subprocess`` (instance from ref, "Started process" event,
``core_execute_run``, "Process exited" event, instance closed) with timestamps between them; the
gRPC hop and the run queue are left out (they are the daemon's, not the run's), and the child
gets the run's id and instance ref as `dagster api execute_run` would (``ExecuteRunArgs``) rather
than through the code server's remote origin.

Phases of one run (wall time, and the child's CPU time beside it — the machine is shared):

- ``interpreter_start``: parent's ``Process.start()`` → first line of the child (fork/exec,
  interpreter and ``site`` start-up, multiprocessing's bootstrap).
- ``dagster_import``: ``import dagster._grpc.impl`` (what the child unpickles first).
- ``instance``: ``DagsterInstance.from_ref`` (dagster-postgres: SQLAlchemy, psycopg2, connect),
  reading the run, the "Started process" event.
- ``code_location``: importing the code location's module and building the job.
- ``run``: ``core_execute_run`` to the end, the "Process exited" event, instance closed; the op's
  own time (STEP_START → STEP_SUCCESS in the event log) is also given, ``op``.
- ``exit``: the child's last line → the parent's ``join()`` returns (interpreter teardown).

Resident memory (VmRSS) after each phase and the peak (VmHWM). Targets, run alternately, after
one unrecorded warm-up run each:

- ``floor``: ``benchmarks.empty_location`` (one op that does nothing);
- ``ours:<job>``: ``sync_pipelines.definitions``, one of our jobs that does almost nothing:
  ``inbox_retention`` (an empty inbox: the app database is opened, tables checked, three deletes)
  and ``sync_status_report`` (the status asset over an almost empty run storage).

Also, ``imports``: fresh ``python -c "import …"`` processes for nothing, ``dagster``, the floor's
location and ours, timing the import inside the process (wall and CPU) — the figure issue 10 asks
for ("the code location imports in ≤ 1.5 s") — and the whole process (start and exit included);
and ``bytecode``: whether our modules have cached bytecode, and the CPU time compiling them costs
each run when they do not. Everything runs against a throwaway embedded PostgreSQL holding both
Dagster's storage (the project's ``dagster.yaml``) and the app database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Nothing but the standard library above this line: the spawned run child imports this module
# (as __mp_main__) before it does anything, and that must cost what the code server's costs.

FLOOR = ("floor", "benchmarks.empty_location", "empty")
OURS_MODULE = "sync_pipelines.definitions"
DEFAULT_JOBS = "inbox_retention,sync_status_report"
PHASES = ("interpreter_start", "dagster_import", "instance", "code_location", "run", "exit")
IMPORT_SNIPPETS = {
    "python": "pass",
    "dagster": "import dagster",
    "floor_location": "import benchmarks.empty_location",
    "our_location": "import sync_pipelines.definitions",
}


# ----------------------------------------------------------------------------- the run child
def _memory() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


def run_child(launched_at: float, serialized_args: str, module: str, job: str, out_path: str,
              log_path: str, termination_event: Any) -> None:
    """The spawned run worker: the steps of `_run_in_subprocess`, timed. Runs in the child."""
    entered, entered_cpu = time.time(), time.process_time()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)  # the run's console log goes to a file, as a code server's children's would
    marks: dict[str, Any] = {"launched_at": launched_at, "entered": entered, "entered_cpu": entered_cpu}

    def mark(name: str) -> None:
        marks[name] = time.time()
        marks[name + "_cpu"] = time.process_time()
        marks[name + "_mb"] = _memory()["VmRSS"]

    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.events import EngineEventData
    from dagster._grpc.impl import core_execute_run  # the module the real child unpickles its target from
    from dagster._core.instance import DagsterInstance
    from dagster._grpc.types import ExecuteRunArgs
    from dagster_shared.serdes import deserialize_value

    mark("dagster_import")
    execute_args = deserialize_value(serialized_args, ExecuteRunArgs)
    recon_job = ReconstructableRepository.for_module(module, "defs", working_directory=os.getcwd()) \
        .get_reconstructable_job(job)
    with DagsterInstance.from_ref(execute_args.instance_ref) as instance:
        run = instance.get_run_by_id(execute_args.run_id)
        pid = os.getpid()
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
        mark("instance")
        recon_job.get_definition()  # cached: core_execute_run's own call finds it built
        mark("code_location")
        for _event in core_execute_run(recon_job, run, instance, inject_env_vars=False):
            pass
        instance.report_engine_event(f"Process for run exited (pid: {pid}).", run)
    mark("run")
    marks["peak_mb"] = _memory()["VmHWM"]
    marks["termination_requested"] = termination_event.is_set()
    Path(out_path).write_text(json.dumps(marks))
    marks["done"] = time.time()
    Path(out_path).write_text(json.dumps(marks))


# ----------------------------------------------------------------------------- the parent
def _event_times(instance: Any, run_id: str) -> dict[str, float]:
    """First timestamp of each event type of the run (RUN_START, STEP_START, …)."""
    times: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        if record.dagster_event is not None:
            times.setdefault(record.dagster_event.event_type_value, record.timestamp)
    return times


def one_run(instance: Any, target: dict[str, Any], work: Path) -> dict[str, Any]:
    """Create the run, start the spawn child on it, return its phases."""
    import multiprocessing

    from dagster import DagsterRunStatus
    from dagster._grpc.types import ExecuteRunArgs
    from dagster_shared.serdes import serialize_value

    recon_job = target["recon_job"]
    run = instance.create_run_for_job(job_def=target["job_def"], job_code_origin=recon_job.get_python_origin())
    args = serialize_value(ExecuteRunArgs(job_origin=recon_job.get_python_origin(), run_id=run.run_id,
                                                  instance_ref=instance.get_ref()))
    out = work / f"{run.run_id}.json"
    context = multiprocessing.get_context("spawn")
    termination_event = context.Event()
    launched_at = time.time()
    child = context.Process(target=run_child, args=(launched_at, args, target["module"], target["job"], str(out),
                                                   str(work / "runs.log"), termination_event))
    child.start()
    child.join()
    reaped = time.time()
    status = instance.get_run_by_id(run.run_id).status
    if child.exitcode != 0 or status != DagsterRunStatus.SUCCESS:
        raise RuntimeError(f"{target['name']}: run {run.run_id} ended {status} (exit code {child.exitcode}); "
                           f"its log ends:\n{(work / 'runs.log').read_text()[-3000:]}")
    m = json.loads(out.read_text())
    events = _event_times(instance, run.run_id)
    wall = {
        "interpreter_start": m["entered"] - launched_at,
        "dagster_import": m["dagster_import"] - m["entered"],
        "instance": m["instance"] - m["dagster_import"],
        "code_location": m["code_location"] - m["instance"],
        "run": m["run"] - m["code_location"],
        "exit": reaped - m["done"],
    }
    cpu = {
        "dagster_import": m["dagster_import_cpu"] - m["entered_cpu"],
        "instance": m["instance_cpu"] - m["dagster_import_cpu"],
        "code_location": m["code_location_cpu"] - m["instance_cpu"],
        "run": m["run_cpu"] - m["code_location_cpu"],
    }
    return {
        "wall_s": {k: round(v, 4) for k, v in wall.items()},
        "total_wall_s": round(reaped - launched_at, 4),
        "cpu_s": {k: round(v, 4) for k, v in cpu.items()},
        "op_s": round(events["STEP_SUCCESS"] - events["STEP_START"], 4),
        "rss_mb": {"after_dagster_import": m["dagster_import_mb"], "after_instance": m["instance_mb"],
                   "after_code_location": m["code_location_mb"], "after_run": m["run_mb"]},
        "peak_rss_mb": m["peak_mb"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of every figure over the samples."""
    return {
        "wall_s": {phase: _spread([s["wall_s"][phase] for s in samples]) for phase in PHASES},
        "total_wall_s": _spread([s["total_wall_s"] for s in samples]),
        "cpu_s": {phase: _spread([s["cpu_s"][phase] for s in samples]) for phase in samples[0]["cpu_s"]},
        "op_s": _spread([s["op_s"] for s in samples]),
        "rss_mb": {point: _spread([s["rss_mb"][point] for s in samples]) for point in samples[0]["rss_mb"]},
        "peak_rss_mb": _spread([s["peak_rss_mb"] for s in samples]),
    }


IMPORT_TIMER = ("import time; _wall, _cpu = time.perf_counter(), time.process_time(); {snippet}; "
                "print(time.perf_counter() - _wall, time.process_time() - _cpu, "
                "[line.split()[1] for line in open('/proc/self/status') if line.startswith('VmRSS')][0])")


def measure_imports(repeats: int) -> dict[str, Any]:
    """Fresh interpreters importing each snippet, alternating: the import's own wall and CPU time
    (timed inside the process), RSS right after it, and the whole process's wall time (start and
    exit included)."""
    figures: dict[str, dict[str, list[float]]] = {
        name: {"import_wall_s": [], "import_cpu_s": [], "process_wall_s": [], "rss_mb": []}
        for name in IMPORT_SNIPPETS}
    for _ in range(repeats):
        for name, snippet in IMPORT_SNIPPETS.items():
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-W", "ignore", "-c", IMPORT_TIMER.format(snippet=snippet)],
                                 check=True, capture_output=True, text=True).stdout.split()
            figures[name]["process_wall_s"].append(time.perf_counter() - started)
            figures[name]["import_wall_s"].append(float(out[0]))
            figures[name]["import_cpu_s"].append(float(out[1]))
            figures[name]["rss_mb"].append(int(out[2]) / 1024)
    return {name: {key: _spread(values) for key, values in found.items()} for name, found in figures.items()}


def compile_seconds(repeats: int = 5) -> float:
    """CPU time to compile every module of ours the location imports: what each run pays again
    when our package has no cached bytecode (PYTHONDONTWRITEBYTECODE on an editable checkout)."""
    import sync_pipelines.definitions  # noqa: F401  (the parent has loaded it already)

    sources = [(module.__file__, Path(module.__file__).read_text()) for name, module in list(sys.modules.items())
               if name.startswith("sync_pipelines") and getattr(module, "__file__", None)]
    timings = []
    for _ in range(repeats):
        started = time.process_time()
        for path, source in sources:
            compile(source, path, "exec")
        timings.append(time.process_time() - started)
    return round(statistics.median(timings), 3)


def bytecode_state() -> dict[str, Any]:
    """Whether our modules load from cached bytecode: without it every run compiles them again."""
    import importlib.util

    package = Path(importlib.util.find_spec("sync_pipelines").submodule_search_locations[0])
    sources = list(package.rglob("*.py"))
    cached = [s for s in sources
              if (s.parent / "__pycache__" / f"{s.stem}.{sys.implementation.cache_tag}.pyc").exists()]
    return {"PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""), "package": str(package),
            "our_modules": len(sources), "our_modules_with_bytecode": len(cached)}


def print_table(results: dict[str, Any]) -> None:
    targets = results["runs"]
    print(f"\n{'phase (median s, wall)':24s}" + "".join(f"{name:>30s}" for name in targets))
    for phase in (*PHASES, "op"):
        cells = []
        for summary in targets.values():
            spread = summary["op_s"] if phase == "op" else summary["wall_s"][phase]
            cells.append(f"{spread['median']:.3f} [{spread['min']:.3f}-{spread['max']:.3f}]")
        print(f"{phase:24s}" + "".join(f"{c:>30s}" for c in cells))
    print(f"{'total':24s}" + "".join(f"{s['total_wall_s']['median']:>30.3f}" for s in targets.values()))
    print(f"{'RSS after location, MB':24s}"
          + "".join(f"{s['rss_mb']['after_code_location']['median']:>30.1f}" for s in targets.values()))
    print(f"{'peak RSS, MB':24s}" + "".join(f"{s['peak_rss_mb']['median']:>30.1f}" for s in targets.values()))
    if "imports" in results:
        print("\nfresh-interpreter imports, median [min-max]: import wall s, import CPU s, whole process wall s, RSS MB")
        for name, figures in results["imports"].items():
            wall, cpu, process = figures["import_wall_s"], figures["import_cpu_s"], figures["process_wall_s"]
            print(f"  {name:16s} {wall['median']:.3f} [{wall['min']:.3f}-{wall['max']:.3f}]   {cpu['median']:.3f}"
                  f"   {process['median']:.3f} [{process['min']:.3f}-{process['max']:.3f}]"
                  f"   {figures['rss_mb']['median']:.1f}")
    print(f"\ncompiling our modules (no cached bytecode): {results['bytecode']['compile_cpu_s']:.3f} s CPU")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="recorded runs per target")
    parser.add_argument("--import-repeats", type=int, default=9, help="fresh interpreters per import snippet")
    parser.add_argument("--jobs", default=DEFAULT_JOBS, help="our jobs to measure, comma-separated")
    parser.add_argument("--output", type=Path, default=None, help="results file (default results/run_overhead.json)")
    options = parser.parse_args(argv)

    from benchmarks.common import (PROJECT_ROOT, RESULTS_DIR, ThrowawayPostgres, machine_facts, now_iso,
                                   results_header, write_results)

    os.chdir(PROJECT_ROOT)  # the code location's working directory, as the code server's
    results = results_header("run_overhead", argv)
    results["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    results["bytecode"] = bytecode_state()
    results["bytecode"]["compile_cpu_s"] = compile_seconds()
    with ThrowawayPostgres(prefix="sync-bench-run-overhead-") as postgres:
        postgres.start()
        app_url = postgres.use_database("app")
        postgres.database("dagster")
        home = postgres.work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").symlink_to(PROJECT_ROOT / "dagster.yaml")
        os.environ.update(DAGSTER_HOME=str(home), DAGSTER_PG_USERNAME="postgres", DAGSTER_PG_PASSWORD="unused",
                          DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT=str(postgres.server.port),
                          DAGSTER_PG_DB="dagster")
        results["machine"] = machine_facts(app_url, postgres.data)

        from dagster import DagsterInstance
        from dagster._core.definitions.reconstruct import ReconstructableRepository

        targets = [dict(zip(("name", "module", "job"), FLOOR))]
        targets += [{"name": f"ours:{job}", "module": OURS_MODULE, "job": job} for job in options.jobs.split(",")]
        for target in targets:
            target["recon_job"] = ReconstructableRepository.for_module(
                target["module"], "defs", working_directory=str(PROJECT_ROOT)).get_reconstructable_job(target["job"])
            target["job_def"] = target["recon_job"].get_definition()
        work = Path(tempfile.mkdtemp(prefix="run-overhead-", dir=postgres.work))
        samples: dict[str, list[dict[str, Any]]] = {t["name"]: [] for t in targets}
        with DagsterInstance.get() as instance:
            for target in targets:  # warm-up: page cache, first-run table creation; not recorded
                one_run(instance, target, work)
            for repeat in range(options.repeats):
                for target in targets:
                    samples[target["name"]].append(one_run(instance, target, work))
                print(f"repeat {repeat + 1}/{options.repeats} done (load {os.getloadavg()[0]:.2f})", flush=True)
        results["runs"] = {name: summarize(found) for name, found in samples.items()}
        results["samples"] = samples
    if options.import_repeats:
        results["imports"] = measure_imports(options.import_repeats)
    results["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["finished_at"] = now_iso()
    print_table(results)
    write_results((options.output or RESULTS_DIR / "run_overhead.json").resolve(), results)


if __name__ == "__main__":
    main()
