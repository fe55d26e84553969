"""Import hygiene: the core never imports Textual, the import contracts hold, no cycles.

* Each core module is imported in a fresh interpreter, and ``textual`` must not be in
  ``sys.modules`` afterwards.
* The import-linter contracts in pyproject.toml (core forbids textual; providers never
  import the engine or the UI; the simulator never imports the providers; no cycles
  among the modules and packages of tuiapp, the providers and the simulator) are run,
  when import-linter is installed.
* Without it too: an AST scan of every module finds no import cycle among module-level
  imports (``TYPE_CHECKING`` blocks excluded: they never run), and none in the core, the
  providers or the simulator even with ``TYPE_CHECKING`` imports counted.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tuiapp"
ROOT = PACKAGE.parent

# Every module directly in tuiapp/ (but __main__, which runs the CLI), plus the packages'
# modules that views and tests import on their own.
CORE_MODULES = [
    *sorted(f"tuiapp.{p.stem}" for p in PACKAGE.glob("*.py") if not p.stem.startswith("__")),
    "tuiapp.providers.base",
    "tuiapp.providers.registry",
    "tuiapp.providers.hypersender",
    "tuiapp.providers.wawp",
    "tuiapp.providers.ryzeapi",
    "tuiapp.providers.wasend",
    "tuiapp.providers.waha",
    "tuiapp.providers.evolution",
    "tuiapp.simulator.app",
    "tuiapp.simulator.fleet",
    "tuiapp.ui",
    "tuiapp.ui.present",
    "tuiapp.ui.gridmodel",
]


def test_the_core_list_covers_the_split_modules() -> None:
    for module in ("tracker", "scheduler", "row", "engine", "snapshot", "guards", "runtime"):
        assert f"tuiapp.{module}" in CORE_MODULES


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; sys.exit(1 if 'textual' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"{module} imports textual (or failed): {result.stderr[-500:]}"


def test_the_import_contracts_hold() -> None:
    pytest.importorskip("importlinter")
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is installed but lint-imports is not beside python"
    result = subprocess.run([lint], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


# ---- the cycle scan ------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str], *, type_checking: bool) -> set[str]:
    """The tuiapp modules ``path`` imports at module level (not inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    found.add(target if target in modules else base)
            elif isinstance(node, ast.If):
                if type_checking or "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {module for module in found if module in modules and module != name}


def _cycles(paths: list[Path], *, type_checking: bool) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = {_module_name(path) for path in paths}
    graph = {_module_name(p): _imports(p, modules, type_checking=type_checking) for p in paths}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_at_run_time() -> None:
    assert _cycles(sorted(PACKAGE.rglob("*.py")), type_checking=False) == []


def test_no_import_cycles_even_for_type_checking() -> None:
    assert _cycles(sorted(PACKAGE.rglob("*.py")), type_checking=True) == []


def test_the_cycle_scan_sees_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "tuiapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from tuiapp.b import x\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tuiapp import a\nx = 1\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        paths = sorted(package.glob("*.py"))
        assert _cycles(paths, type_checking=False) == []
        assert _cycles(paths, type_checking=True) == [["tuiapp.a", "tuiapp.b"]]
    finally:
        ROOT = saved
