"""Layers only point down: warehouse < quality < pipelines < models < risk_insight < dags, and
only the CLI, the DAGs, tests and bench import the simulator. Every import is checked, at
module level and inside functions (read from the source, nothing is imported)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("warehouse", "quality", "pipelines", "models", "risk_insight", "dags")
SIMULATOR = "pipelines.simulator"
# Modules allowed to import the simulator besides tests and bench (which are not packages).
SIMULATOR_USERS = ("risk_insight.cli", "dags.", "pipelines.simulator")


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, here: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``path`` (module ``here``), relative ones
    resolved; ``from a import b`` gives both ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return out


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    if module.startswith("risk_steps"):  # dags/ puts itself on sys.path
        return LAYERS.index("dags")
    return LAYERS.index(top) if top in LAYERS else None


def test_layers_only_point_down() -> None:
    upward, simulator = [], []
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            here = _module(path)
            mine = _layer(here)
            for line, name in _imports(path, here):
                theirs = _layer(name)
                where = f"{path.relative_to(REPO)}:{line} imports {name}"
                if theirs is not None and mine is not None and theirs > mine:
                    upward.append(where)
                if name.startswith(SIMULATOR) and not here.startswith(SIMULATOR_USERS):
                    simulator.append(where)
    assert not upward, "imports pointing up the layers:\n" + "\n".join(sorted(set(upward)))
    assert not simulator, "simulator imported by product code:\n" + "\n".join(
        sorted(set(simulator))
    )


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text(
        "import json\n\ndef f():\n    from models import registry\n"
        "    from ..risk_insight import lists\n",
        encoding="utf-8",
    )
    found = _imports(sample, "warehouse.sub.x")
    assert (4, "models.registry") in found and (5, "warehouse.risk_insight.lists") in found
    assert _layer("models.registry") > _layer("warehouse.sub")


def _import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (a package's own submodules left out)."""
    mods = {_module(p): p for layer in LAYERS for p in sorted((REPO / layer).rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for here, path in mods.items():
        for _, name in _imports(path, here):
            while name and name not in mods:  # `from a.b import f` names module a.b
                name = name.rpartition(".")[0]
            if name and name != here and not here.startswith(name + "."):
                graph[here].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_two_modules_import_each_other_in_a_circle() -> None:
    assert not _cycles(_import_graph())


def test_the_cycle_check_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


# Delta writes outside the catalog (warehouse/tables.py), each with the reason it stays:
WRITE_EXCEPTIONS: dict[str, int] = {}


def test_only_the_catalog_writes_delta() -> None:
    """Every append, partition replace and MERGE goes through ``warehouse.tables`` (``append``,
    ``replace``, ``upsert``), which builds the predicates from the table declarations."""
    found: dict[str, int] = {}
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            if rel == "warehouse/tables.py" or rel.startswith("pipelines/simulator/"):
                continue
            text = path.read_text(encoding="utf-8")
            n = text.count('.write.format("delta")') + text.count(".whenNotMatchedInsert")
            n += text.count(".whenMatchedUpdate(") and 1  # one MERGE, however many clauses
            n += len(re.findall(r"\.(update|delete)\(\s*(condition|F\.|col)", text))
            n += text.count("DeltaTable.forPath(")  # a handle is for writing: the catalog's
            if n:
                found[rel] = n
    assert found == WRITE_EXCEPTIONS
