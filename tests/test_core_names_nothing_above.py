"""Core names nothing above it: not by import, not through importlib, not in a module-name string.

import-linter (tests/test_architecture.py) sees import statements; it cannot see a
module named as data — ``importlib.import_module("dicomtui.plugins.x")``, a list of
built-in plugin paths handed to the host, a prefix stripped by name — which is how
"core does not import plugins" once held only on paper.  This test reads the source
text of every module under core/ and fails on any of those forms naming the command
line, the TUI, batch mode or the plugins.  Prose may say "the command line" or "a
plugin"; it may not name their modules, since a reader (or a grep) takes the name for
a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"
ABOVE = ("cli", "tui", "batch", "plugins")  # the packages above core (pyproject's layers)

# "dicomtui.plugins", "dicomtui.tui.app", "dicomtui/cli/..." anywhere in the text: strings,
# docstrings and comments alike.
NAMED = re.compile(r"\bdicomtui[./](?:" + "|".join(ABOVE) + r")\b")


def _problems(path: Path, core: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(core.parent)
    found = [f"{where}:{text.count(chr(10), 0, match.start()) + 1}: names {match.group(0)!r}"
             for match in NAMED.finditer(text)]
    depth = len(where.parts)  # the level of a relative import that reaches the dicomtui package
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            # A relative import that climbs out of core (e.g. "from ...tui import app" in core/views/x.py).
            if node.level >= depth and \
                    ((node.module or "").split(".")[0] in ABOVE or
                     any(alias.name in ABOVE for alias in node.names)):
                found.append(f"{where}:{node.lineno}: relative import of {node.module or node.names[0].name}")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__"):
            arguments = [arg for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if any(arg.value.split(".")[0] in ABOVE or arg.value.startswith(".") for arg in arguments):
                found.append(f"{where}:{node.lineno}: imports {arguments[0].value!r} by name")
    return found


def core_naming_problems(core: Path = CORE) -> list[str]:
    return [problem for path in sorted(core.rglob("*.py")) for problem in _problems(path, core)]


def test_core_names_no_module_above_it():
    problems = core_naming_problems()
    assert problems == [], "core names modules above it:\n" + "\n".join(problems)


def test_the_check_sees_every_form(tmp_path):
    # The forms the old tree had (core/cli.py's list of built-ins, its importlib call, the
    # host's prefix strip) and the ones a later change could bring.
    core = tmp_path / "core"
    (core / "views").mkdir(parents=True)
    (core / "views" / "a.py").write_text('BUILTINS = ("dicomtui.plugins.pdu",)\n')
    (core / "views" / "b.py").write_text('import importlib\nimportlib.import_module("plugins.anonymize.cli")\n')
    (core / "views" / "c.py").write_text("from ...tui import app\n")
    (core / "views" / "d.py").write_text("def run():\n    from dicomtui.batch import cli\n")
    (core / "views" / "e.py").write_text('PREFIX = "dicomtui.cli"  # the root\n')
    (core / "views" / "fine.py").write_text('"""Plugins and the command line may be spoken of."""\nfrom . import a\n')
    problems = core_naming_problems(core)
    named = {problem.split(":")[0] for problem in problems}
    assert named == {f"core/views/{name}.py" for name in "abcde"}, problems
