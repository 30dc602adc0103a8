"""The architecture's edges, checked: dependencies point down, and nothing imports in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

WIRE = ("qtasks.protocol", "qtasks.exc", "qtasks.enums")
CLIENT_AND_WORKER = ("qtasks.client", "qtasks.worker", "qtasks.executors", "qtasks.app", "qtasks.tasks",
                     "anyio", "multiprocess")


def modules() -> dict[str, Path]:
    found = {}
    for package in ("qtasks", "broker_daemon"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run: ``if TYPE_CHECKING:`` bodies left out, function bodies kept."""
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            pending.extend(node.orelse)
            continue
        found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module of ours that ``name`` imports, at module level or inside functions alike."""
    targets = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def test_nothing_imports_in_a_circle():
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    # Tarjan's strongly connected components: any of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_wire_is_a_leaf():
    known = modules()
    for name, path in known.items():
        if name.startswith(WIRE):
            outside = {t for t in imports_of(name, path, known)
                       if not t.startswith(WIRE) and t not in ("qtasks", "qtasks.version")}
            assert outside == set(), (name, outside)


def test_the_daemon_imports_nothing_of_the_client_or_worker_stack():
    probe = ("import sys, broker_daemon.cli, broker_daemon.server, broker_daemon.core; "
             f"print(sorted(m for m in sys.modules if m.startswith({CLIENT_AND_WORKER!r})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_package_root_loads_its_names_lazily():
    probe = ("import sys, qtasks; before = 'qtasks.app.sync' in sys.modules; "
             "qtasks.QueueTasks; print(before, 'qtasks.app.sync' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.stdout.split() == ["False", "True"], result.stderr
