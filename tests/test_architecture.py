"""The layering contract (docs/architecture.md), checked with the suite.

- ``lint-imports`` checks the contracts in pyproject.toml ([tool.importlinter]):
  one-way layers with the command line (``dicomtui.cli``) on top, the TUI does not
  import plugins, the core imports nothing above it (TUI, batch, command line,
  plugins), with no exceptions; tests/test_core_names_nothing_above.py also catches
  modules named as strings.
- No import cycle among dicomtui's modules.  What counts as an import here:
  every ``import``/``from ... import`` statement anywhere in a module, at module
  level, inside functions and methods, and under ``if TYPE_CHECKING:``.  A
  deferred or type-only import hides a cycle from the interpreter but not from
  the reader: the two modules still cannot be understood, tested or replaced
  one without the other.  Importing ``a.b.c`` also counts as importing the
  packages ``a.b`` and ``a`` (Python runs their ``__init__`` first), except the
  packages the importer itself lives in.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")  # import-linter's graph library (the test extra installs it)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "dicomtui"


def _graph():
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=False, cache_dir=None)


def _edges(graph) -> dict[str, set[str]]:
    modules = set(graph.modules)
    edges: dict[str, set[str]] = {module: set() for module in modules}
    for importer in modules:
        own_packages = {importer.rsplit(".", n)[0] for n in range(1, importer.count(".") + 1)}
        for imported in graph.find_modules_directly_imported_by(importer):
            targets = {imported} | {imported.rsplit(".", n)[0] for n in range(1, imported.count(".") + 1)}
            edges[importer] |= {target for target in targets
                                if target in modules and target != importer and target not in own_packages}
    return edges


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_cycle_finder_sees_deferred_and_type_only_cycles():
    # The finder itself: a two-module and a three-module cycle, and an acyclic chain.
    edges = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"g"}, "g": set()}
    assert sorted(import_cycles(edges)) == [["a", "b"], ["c", "d", "e"]]


def test_graph_counts_imports_inside_functions_and_under_type_checking():
    graph = _graph()
    # The hook specifications name Analysis only under TYPE_CHECKING; the command line imports
    # the TUI and each built-in plugin inside a function.  All must be edges, or a cycle through
    # them would go unseen.
    assert "dicomtui.core.model.analysis" in graph.find_modules_directly_imported_by(
        "dicomtui.core.api.hookspecs")
    assert "dicomtui.tui.app" in graph.find_modules_directly_imported_by("dicomtui.cli.root")
    assert "dicomtui.plugins.export.pcap" in graph.find_modules_directly_imported_by("dicomtui.cli.builtins")


def test_no_import_cycles():
    cycles = import_cycles(_edges(_graph()))
    assert cycles == [], "import cycles among dicomtui modules: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_layer_contracts_hold():
    pytest.importorskip("importlinter")
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                               "sys.exit(lint_imports_command())",
         str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
