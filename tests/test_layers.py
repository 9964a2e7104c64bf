"""The package's layers, read from the source (no import runs): the engine (core) imports neither
IPython nor ipywidgets, and no two modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast  # no cluster, kernel or browser: `make test-fast`

PACKAGE = Path(__file__).parent.parent / "ipydistribute"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path, top_level_only: bool = False) -> set[str]:
    """Every module ``path`` imports, at any depth (in functions too, unless ``top_level_only``),
    except for type checking."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import x`
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


#: Engine modules that use IPython inside a function, when it is there: an item's display() and
#: rich values on a worker (item_output), and the kernel's %debug after a failure (replay).
USES_IPYTHON_WHEN_PRESENT = {"item_output.py", "replay.py"}


def test_the_engine_imports_neither_ipython_nor_widgets():
    for path in (PACKAGE / "core").rglob("*.py"):
        anywhere = imports_of(path)
        loaded = imports_of(path, top_level_only=True)
        front_end = {m for m in anywhere if m.split(".")[0] in ("ipywidgets", "ipykernel")
                     or m.startswith(("ipydistribute.widgets", "ipydistribute.kernel_magics"))}
        ipython = {m for m in (anywhere if path.name not in USES_IPYTHON_WHEN_PRESENT else loaded)
                   if m.split(".")[0] == "IPython"}
        assert not front_end | ipython, f"{path.relative_to(PACKAGE)} imports {sorted(front_end | ipython)}"


def test_no_two_modules_import_each_other():
    graph = _graph()
    pairs = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                    if a in graph.get(b, ()) and not (a == "ipydistribute" or b == "ipydistribute")})
    assert not pairs, f"modules that import each other: {pairs}"


def test_no_two_classes_share_a_name():
    where: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    assert not {name: paths for name, paths in where.items() if len(paths) > 1}


#: Modules pickled by value to the scheduler (monitor.register_by_value), and what of ours each may
#: import: the scheduler need not have ipydistribute installed.
TRAVELS_BY_VALUE = {"scheduler_plugin.py": {"ipydistribute.core.keys"}, "keys.py": set()}


def test_what_travels_to_the_scheduler_imports_only_what_travels_with_it():
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    for name, allowed in TRAVELS_BY_VALUE.items():
        ours = {m for m in imports_of(PACKAGE / "core" / name) if m in modules}
        assert ours <= allowed, f"core/{name} imports {sorted(ours - allowed)}"
