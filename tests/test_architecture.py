"""The import contract of ser_core, read from the source (no imports run): which subpackage may import
which, no import cycles, and where the heavy optional libraries may be imported.

Every import counts, at module level or inside a function, except those under `if TYPE_CHECKING:`
(annotations only: they never run, so they cannot form a cycle or pull a dependency in)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ser_core"

# What each part of ser_core must never import (a prefix matches the part and everything under it).
# serving is what `ser predict`, `ser serve` and the app run: it may not reach into training (TensorFlow),
# distributed (Ray), ui (Streamlit) or the CLI; frontend and io sit below serving.
FORBIDDEN = {
    "ser_core.labels": ("ser_core.",),
    "ser_core.errors": ("ser_core.",),
    "ser_core.io": ("ser_core.frontend", "ser_core.serving", "ser_core.training", "ser_core.distributed",
                    "ser_core.ui", "ser_core.cli"),
    "ser_core.frontend": ("ser_core.serving", "ser_core.training", "ser_core.distributed", "ser_core.ui",
                          "ser_core.cli"),
    "ser_core.serving": ("ser_core.training", "ser_core.distributed", "ser_core.ui", "ser_core.cli"),
    "ser_core.distributed": ("ser_core.training", "ser_core.ui", "ser_core.cli"),
    "ser_core.training": ("ser_core.ui", "ser_core.cli"),
    "ser_core.ui": ("ser_core.cli", "ser_core.distributed"),
}
# Third-party libraries confined to one part of ser_core (pages/ and app.py are outside the package).
CONFINED = {"streamlit": "ser_core.ui", "streamlit_webrtc": "ser_core.ui", "plotly": "ser_core.ui",
            "tensorflow": "ser_core.training", "keras": "ser_core.training"}
# The one exception: `load_model(..., backend="keras")` runs a model directory without model.tflite
# (and is the reference LiteRT is tested against); it imports Keras only when that backend is chosen.
ALLOWED = {("ser_core.serving.inference", "keras")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: Path) -> set[str]:
    """Every module `path` imports (absolute dotted names), TYPE_CHECKING blocks aside. For
    `from X import name`, `X.name` when that is a ser_core module, else `X`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in MODULES else source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


FILES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULES = set(FILES)
GRAPH = {name: imports(path) for name, path in FILES.items()}


def internal(name: str) -> set[str]:
    return {target for target in GRAPH[name] if target in MODULES}


def test_the_graph_sees_the_package():
    """The reading works: the modules are found and their imports resolved to modules."""
    assert {"ser_core.serving.inference", "ser_core.frontend.features", "ser_core.io.audio", "ser_core.ui.plots",
            "ser_core.training.train", "ser_core.distributed.engine", "ser_core.cli"} <= MODULES
    assert {"ser_core.io.audio", "ser_core.serving.results"} <= internal("ser_core.serving.inference")
    assert "ser_core.serving.inference" in internal("ser_core.cli")  # inside a function: counted


def find_cycle() -> list[str] | None:
    """One import cycle among ser_core modules (depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(internal(name)):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in sorted(MODULES):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_no_import_cycles():
    assert find_cycle() is None, " → ".join(find_cycle())


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_upward_imports(part):
    wrong = sorted(f"{name} imports {target}" for name in MODULES if name == part or name.startswith(part + ".")
                   for target in internal(name) if target.startswith(FORBIDDEN[part]))
    assert not wrong, wrong


@pytest.mark.parametrize("library", sorted(CONFINED))
def test_heavy_libraries_stay_in_their_part(library):
    home = CONFINED[library]
    wrong = sorted(name for name in MODULES if not (name == home or name.startswith(home + "."))
                   and (name, library) not in ALLOWED
                   and any(t == library or t.startswith(library + ".") for t in GRAPH[name]))
    assert not wrong, f"{library} imported outside {home}: {wrong}"


def test_subpackages_say_what_they_hold():
    """Each subpackage opens with a paragraph on what lives there and what it may import."""
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init.relative_to(PACKAGE.parent)} needs its docstring"


def test_the_cli_imports_training_and_ray_code_only_in_the_commands_that_need_them():
    """`ser predict` in an install without TensorFlow or Ray: building the parser loads serving only."""
    code = ("import sys; from ser_core.cli import parser; parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('ser_core.training', 'ser_core.distributed', "
            "'ser_core.ui', 'tensorflow', 'keras', 'ray', 'streamlit'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded
