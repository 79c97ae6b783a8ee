"""The shape of the house: no import cycle inside the package, and no module importing another's
underscored names. Both are read from the source (module-level and function-level imports alike:
an import inside a function is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import sketchrnn

PACKAGE = Path(sketchrnn.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str], bool]]:
    """(module imported, names taken from it, whether it is only for type checking) of every import in `path`."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            found.append((target, [a.name for a in node.names], id(node) in typing_only))
        elif isinstance(node, ast.Import):
            found.extend((a.name, [], id(node) in typing_only) for a in node.names)
    return found


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a name imported from a package that is itself a
    module of it counts as that module)."""
    modules = package_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for m, path in modules.items():
        for target, names, typing_only in imports(path):
            if typing_only or not target or not target.startswith("sketchrnn"):
                continue
            submodules = {f"{target}.{n}" for n in names if f"{target}.{n}" in modules}
            if submodules:
                edges[m] |= submodules
            elif target in modules:
                edges[m].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_the_package() -> None:
    found = cycles(graph())
    assert found == [], "modules that import each other, directly or round a loop: " + "; ".join(
        " ↔ ".join(group) for group in found)


def test_no_module_imports_another_modules_underscored_name() -> None:
    modules = package_modules()
    reach_ins = []
    for m, path in modules.items():
        for target, names, _ in imports(path):
            if target and target.startswith("sketchrnn") and target != m:
                private = [n for n in names if n.startswith("_") and n != "__version__"]
                reach_ins += [f"{m} imports {target}.{n}" for n in private]
    assert reach_ins == []


def test_the_walker_sees_cycles_and_reach_ins(tmp_path) -> None:
    """The checks above can fail: a two-module loop is a cycle, a chain is not; typing-only imports are told apart."""
    edges = {"sketchrnn.a": {"sketchrnn.b"}, "sketchrnn.b": {"sketchrnn.a"}, "sketchrnn.c": {"sketchrnn.a"}}
    assert cycles(edges) == [["sketchrnn.a", "sketchrnn.b"]]
    assert cycles({"sketchrnn.a": {"sketchrnn.b"}, "sketchrnn.b": set()}) == []
    source = tmp_path / "m.py"
    source.write_text("from .x import _hidden, shown\nif TYPE_CHECKING:\n    from .y import Z\n")
    found = {(t.rpartition(".")[2], tuple(n), tc) for t, n, tc in imports_of(source)}
    assert found == {("x", ("_hidden", "shown"), False), ("y", ("Z",), True)}


def imports_of(path: Path):
    """`imports` for a file outside the package (as if it were sketchrnn/m.py)."""
    fake = PACKAGE / path.name
    tree_text = path.read_text()
    original = Path.read_text
    try:
        Path.read_text = lambda self, *a, **k: tree_text if self == fake else original(self, *a, **k)  # type: ignore[method-assign]
        return imports(fake)
    finally:
        Path.read_text = original  # type: ignore[method-assign]
