"""The package's face: ``import anynet`` loads what every user needs, the rest on first use."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import anynet

ROOT = Path(__file__).resolve().parents[1]


def test_import_anynet_loads_no_plotting_checkpoints_or_training_loop():
    code = (
        "import sys, anynet; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'scipy', 'sklearn', 'zipfile', 'torch', 'jax', 'dask', 'cupy') "
        "or m in ('anynet.plot', 'anynet.checkpoints', 'anynet.ensemble', 'anynet.train', 'anynet.cli')))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env = {k: v for k, v in env.items() if not k.startswith("ANYNET_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", anynet.__all__)
def test_every_public_name_resolves(name):
    assert getattr(anynet, name) is not None
    assert name in dir(anynet)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match=r"module 'anynet' has no attribute 'Netwrok'"):
        anynet.Netwrok  # noqa: B018


# --------------------------------------------------------------------------- the shape of the house

PACKAGE = ROOT / "anynet"
#: STYLE.md: each file one idea, under about 600 lines
MOST_LINES = 600


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Every module of anynet -> the anynet modules it imports, at the top or inside a function
    (a function-level import is a cycle put off, not a cycle gone)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                for alias in node.names:  # a submodule by that name, else a name of the module
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``, each as the path that closes it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    found = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                found.append([*path[path.index(other) :], other])
            elif other not in state:
                visit(other)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_anynet_imports_itself_back():
    graph = import_graph()
    assert "anynet.sklearn.search" in graph["anynet.sklearn"]  # the graph sees relative imports
    assert "anynet.core" in graph["anynet.engines.reference"]
    assert cycles(graph) == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles(graph))


def test_every_file_of_anynet_is_one_idea_under_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MOST_LINES
    }
    assert long == {}


#: where the library knows Dask by name: its executor, its cluster boundary, its adapter
DASK_AT = ("anynet/engines/", "anynet/cluster.py", "anynet/adapters/")


def test_only_the_executor_the_cluster_and_the_adapter_name_dask_in_code():
    """A new executor is one module and one registry line: the faces, the loop and the command line
    reach Dask through the engine registry (a site) and the adapters (``lazy``), never by name."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        where = path.relative_to(ROOT).as_posix()
        if where.startswith(DASK_AT):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                imported = [node.module or ""]
            named = isinstance(node, ast.Constant) and node.value == "dask"
            if named or any(m.split(".")[0] in ("dask", "distributed") for m in imported):
                found.append(f"{where}:{node.lineno}")
    assert found == []
