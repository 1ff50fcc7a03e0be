"""The code layout rules of the project (issue 12), checked on the source itself.

No import cycle among lumbarkit modules (module-level imports), no private name imported from
another module, every source file under 400 lines and every function under 80 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "lumbarkit").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imported(node: ast.ImportFrom | ast.Import) -> list[tuple[str, str | None]]:
    """(module, imported name) pairs of an import statement (absolute imports only)."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names]
    if node.level or not node.module:
        return []
    return [(node.module, a.name) for a in node.names]


def _target(module: str, name: str | None) -> str | None:
    """The lumbarkit module an import pulls in: ``from pkg import sub`` names the submodule."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _module_level_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:  # module level only: imports inside functions are lazy
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= {t for m, n in _imported(node) if (t := _target(m, n)) and t != mod}
        graph[mod] = deps
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_sees_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle():
    assert _find_cycle(_module_level_graph()) is None


def test_the_package_root_is_imported_by_nobody():
    users = [str(p.relative_to(SRC)) for m, p in MODULES.items() if m != "lumbarkit"
             for node in ast.walk(ast.parse(p.read_text()))
             if isinstance(node, ast.ImportFrom) and node.module == "lumbarkit" and not node.level]
    assert users == []


def test_no_private_name_is_imported_across_modules():
    found = []
    for mod, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                found += [f"{path.relative_to(SRC)}: {m}.{n}" for m, n in _imported(node)
                          if n and n.startswith("_") and not n.startswith("__") and m in MODULES]
    assert found == []


@pytest.mark.parametrize("path", list(MODULES.values()), ids=[str(p.relative_to(SRC)) for p in MODULES.values()])
def test_file_and_function_size(path: Path):
    text = path.read_text()
    assert text.count("\n") <= MAX_FILE_LINES, f"{path.name}: {text.count(chr(10))} lines"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(text))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


@pytest.mark.parametrize("path", sorted(SRC.parent.joinpath("tests").rglob("*.py")), ids=lambda p: p.name)
def test_test_files_stay_under_the_size_limit(path: Path):
    assert path.read_text().count("\n") <= MAX_FILE_LINES
