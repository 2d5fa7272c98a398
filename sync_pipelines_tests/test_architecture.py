"""The architecture rules of DESIGN.md, read from the code's imports (static: every `import`, also
inside functions) and, for the receiver, checked once more by importing it in a fresh interpreter.

- core (`sync_pipelines/core`, not `core/dg`) imports no Dagster and nothing of core/dg, defs,
  receiver or sandbox; core/dg imports no defs, receiver or sandbox;
- providers (`defs/<p>`) never import each other;
- production code never imports the sandbox (only `dev.py`, the local launcher, starts it);
- the sandbox imports nothing of the project but itself;
- the receiver's whole import closure is Dagster-free.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sync_pipelines"
ROOT = "sync_pipelines"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, absolute (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from pkg import module` imports pkg.module when it is one.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
IMPORTS = {name: imports_of(path) for name, path in MODULES.items()}


def project_imports(name: str) -> set[str]:
    return {m for m in IMPORTS[name] if m in MODULES}


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def is_dagster(module: str) -> bool:
    return under(module, "dagster") or module.startswith("dagster_")


def violations(selection, forbidden) -> list[str]:
    return sorted(f"{name} imports {target}" for name in MODULES if selection(name)
                  for target in IMPORTS[name] if forbidden(name, target))


def test_the_rules_see_the_code():
    """Guards the guard: the scan finds modules and resolves their imports."""
    assert "sync_pipelines.core.writer" in MODULES and "sync_pipelines.receiver.app" in MODULES
    assert "sync_pipelines.core.database" in project_imports("sync_pipelines.core.writer")
    assert "dagster" in IMPORTS["sync_pipelines.core.dg.assets"]


def test_core_knows_no_provider_receiver_or_sandbox_and_its_engine_no_dagster():
    core_engine = lambda n: under(n, f"{ROOT}.core") and not under(n, f"{ROOT}.core.dg")
    outside = (f"{ROOT}.defs", f"{ROOT}.receiver", f"{ROOT}.sandbox", f"{ROOT}.dev", f"{ROOT}.cli")
    assert violations(lambda n: under(n, f"{ROOT}.core"),
                      lambda n, t: any(under(t, o) for o in outside)) == []
    assert violations(core_engine, lambda n, t: is_dagster(t) or under(t, f"{ROOT}.core.dg")) == []


def test_core_never_names_a_provider_in_code():
    """Comments and docstrings may give examples; code may not branch on a provider's name."""
    names = ("shopify", "shipstation", "replication", "google_ads", "meta_ads", "googleads", "graph.facebook")
    found = []
    for name, path in MODULES.items():
        if not under(name, f"{ROOT}.core"):
            continue
        tree = ast.parse(path.read_text())
        # A string standing alone as a statement is documentation (docstrings, attribute docs).
        docstrings = {id(node.value) for node in ast.walk(tree)
                      if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
        found += [f"{name}:{node.lineno}: {node.value[:60]!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and id(node) not in docstrings and any(p in node.value.lower() for p in names)]
    assert found == []


def test_providers_never_import_each_other():
    def provider(name: str) -> str | None:
        parts = name.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "defs" else None

    assert violations(lambda n: provider(n) is not None,
                      lambda n, t: provider(t) is not None and provider(t) != provider(n)) == []


def test_production_never_imports_the_sandbox_and_the_sandbox_nothing_of_the_project():
    launcher = {f"{ROOT}.dev", f"{ROOT}.dev_ads", f"{ROOT}.dev_cod"}  # `sync-pipelines dev` starts the sandboxes for local use
    assert violations(lambda n: not under(n, f"{ROOT}.sandbox") and n not in launcher,
                      lambda n, t: under(t, f"{ROOT}.sandbox")) == []
    assert violations(lambda n: under(n, f"{ROOT}.sandbox"),
                      lambda n, t: under(t, ROOT) and not under(t, f"{ROOT}.sandbox")) == []


def test_the_receivers_import_closure_is_dagster_free():
    seen, todo = set(), [n for n in MODULES if under(n, f"{ROOT}.receiver")]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [m for m in [*project_imports(name), *parents] if m in MODULES]
    assert sorted(f"{n} imports {t}" for n in seen for t in IMPORTS[n] if is_dagster(t)) == []


def test_importing_the_receiver_loads_no_dagster():
    code = ("import sys, sync_pipelines.receiver.app, sync_pipelines.receiver.__main__;"
            "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
