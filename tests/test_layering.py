"""The package's import structure (DESIGN.md "Data flows one way"): no import
cycles, imports at the top of modules but for the few deliberate lazy ones,
leaf modules that stay leaves, and the version in one place."""

import ast
import functools
import importlib.util
import re
import sys
from pathlib import Path

import pytest

import chronoledger

PACKAGE = Path(chronoledger.__file__).resolve().parent
ROOT = Path(__file__).resolve().parent.parent       # the source tree the tests belong to

#: Every import inside a function, and why it is there.  A new
#: one either hides a cycle (move the shared piece down instead) or defers
#: something heavy or optional: then it belongs here, with a comment at the import.
LAZY_IMPORTS = {
    # the package root's subsystems load when first named (cl.Chronicle, cl.world...)
    ("__init__.py", "chronoledger.chronicle"),
    ("__init__.py", "chronoledger.runtime"),
    ("__init__.py", "chronoledger.tables"),
    # the arrow extra: optional and heavy
    ("chronicle/chronicle.py", "pandas"),
    ("chronicle/chronicle.py", "pyarrow"),
    ("_arrow.py", "pyarrow"),
    ("_arrow.py", "pyarrow.parquet"),
    # the plot extra: optional and heavy
    ("chronicle/plot.py", "matplotlib.collections"),
    ("chronicle/plot.py", "matplotlib.dates"),
    ("chronicle/plot.py", "matplotlib.figure"),
    ("chronicle/plot.py", "matplotlib.patches"),
    # the tensorboard extra: optional and heavy
    ("chronicle/tensorboard.py", "tensorboard.backend.event_processing.event_file_loader"),
    ("chronicle/tensorboard.py", "tensorboard.compat.proto"),
    ("chronicle/tensorboard.py", "tensorboard.summary.writer.record_writer"),
    ("chronicle/tensorboard.py", "tensorboard.util"),
    # PyYAML's C extension may be absent; libyaml is bound once, at import, inside a try
    ("sequence/yamlfile.py", "yaml._yaml"),
    ("sequence/yamlfile.py", "chronoledger._yamlread"),
    # the bulk-insert extension is bound on the first bulk insert (CHRONOLEDGER_NO_SQLBULK is read then)
    ("sqlite.py", "chronoledger._sqlbulk"),
    # the dataset extra: DuckDB where SQL is asked for, fsspec where a URL is read
    ("dataset/sql.py", "duckdb"),
    ("dataset/remote.py", "fsspec"),
    # the dask extra: distributed where a sweep is sent to a cluster
    ("world/sweep.py", "distributed"),
    # the server extra: Starlette (under chronoledger.server) and uvicorn, once `serve` found them installed
    ("cli/serve_cmds.py", "chronoledger.server"),
    ("cli/serve_cmds.py", "uvicorn"),
}


def library_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path


def module_name(rel: str) -> str:
    parts = ["chronoledger", *rel[:-3].split("/")]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, name: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = name.split(".")
    base = base[:len(base) - node.level + (1 if name.endswith("__init__") else 0)]
    return ".".join(base + ([node.module] if node.module else []))


@functools.lru_cache(maxsize=None)
def _is_module(name: str) -> bool:
    if not name.startswith("chronoledger."):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def imported_modules(node, importer: str) -> list[str]:
    """The chronoledger modules an import statement loads."""
    out = []
    if isinstance(node, ast.Import):
        out = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        mod = _absolute(node, importer)
        for a in node.names:
            sub = f"{mod}.{a.name}"
            out.append(sub if _is_module(sub) else mod)
    return [m for m in out if m == "chronoledger" or m.startswith("chronoledger.")]


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, (ast.Name, ast.Attribute)) and "TYPE_CHECKING" in ast.unparse(node.test)


def module_level_imports(tree: ast.Module):
    """Import statements run when the module is imported (not in functions or TYPE_CHECKING blocks)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])


def function_imports(tree: ast.Module):
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def _trees():
    return {rel: ast.parse(path.read_text(encoding="utf-8"), str(path)) for rel, path in library_modules()}


def test_library_modules_import_each_other_without_cycles():
    graph = {}
    for rel, tree in _trees().items():
        name = module_name(rel)
        targets = set()
        for node in module_level_imports(tree):
            for m in imported_modules(node, name if not rel.endswith("__init__.py") else name + ".__init__"):
                if m != name and not name.startswith(m + "."):      # a parent package: Python's own order
                    targets.add(m)
        graph[name] = targets
    cycles = []
    state: dict[str, int] = {}

    def visit(n, path):
        state[n] = 1
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                cycles.append(path[path.index(m):] + [m] if m in path else [n, m])
            elif m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_imports_inside_functions_are_only_the_deliberate_lazy_ones():
    found = set()
    for rel, tree in _trees().items():
        name = module_name(rel) + (".__init__" if rel.endswith("__init__.py") else "")
        for node in function_imports(tree):
            if isinstance(node, ast.Import):
                found.update((rel, a.name) for a in node.names)
            else:
                mods = imported_modules(node, name) or [_absolute(node, name)]
                found.update((rel, m) for m in mods)
    assert found == LAZY_IMPORTS, (f"new: {sorted(found - LAZY_IMPORTS)}; gone: {sorted(LAZY_IMPORTS - found)} "
                                   f"(a cycle: move the shared piece down; heavy or optional: list it here)")


def test_each_lazy_import_says_why():
    """A comment on the import's line or above it in its function."""
    trees = _trees()
    for rel, path in library_modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(trees[rel]):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        above = "\n".join(lines[fn.lineno - 1:node.end_lineno])
                        assert "#" in above, f"{rel}:{node.lineno}: say why this import is deferred"


# leaf -> the only package modules it may import (themselves leaves): _fsutil
# raises the hierarchy's ExistsError and StorageError, and errors imports nothing at all
LEAVES = {"_version.py": [], "_warn.py": [], "_fsutil.py": ["chronoledger.errors"], "_isotime.py": [],
          "errors.py": []}


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_nothing_from_the_package(leaf):
    tree = ast.parse((PACKAGE / leaf).read_text(encoding="utf-8"))
    inner = sorted({m for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for m in imported_modules(node, module_name(leaf))})
    assert inner == LEAVES[leaf], f"{leaf} imports {inner}"
    assert all(f"{m.split('.')[-1]}.py" in LEAVES for m in inner), f"{leaf} imports a module that is no leaf"


def test_no_library_module_takes_a_name_from_the_package_root():
    """`from chronoledger import __version__` in a module the root imports (or may) is a back-edge."""
    for rel, tree in _trees().items():
        if rel == "__init__.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "chronoledger":
                for a in node.names:
                    m = f"chronoledger.{a.name}"
                    assert m in imported_modules(node, module_name(rel)), \
                        f"{rel}:{node.lineno}: takes {a.name} from the package root"


def test_importing_a_subsystem_leaves_the_others_unloaded():
    import subprocess

    code = ("import sys, chronoledger.chronicle; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['chronoledger', 'runtime'], "
            "['chronoledger', 'tables'], ['chronoledger', 'sequence'], ['chronoledger', 'world'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- the version -------------------------------------------------------------------------------

def _pyproject_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:                                  # Python 3.10
        project = text.split("[project]", 1)[1].split("\n[", 1)[0]
        return re.search(r'^version\s*=\s*"([^"]+)"', project, re.M).group(1)
    return tomllib.loads(text)["project"]["version"]


def test_the_version_is_pyprojects_and_lives_in_a_leaf():
    from chronoledger import _version

    assert chronoledger.__version__ is _version.__version__
    # a stale install (pyproject bumped, not reinstalled) shows here: reinstall
    assert chronoledger.__version__ == _pyproject_version()


def test_the_chronicle_writer_stamps_the_version(tmp_path):
    from chronoledger.chronicle import Chronicle

    with Chronicle.open(tmp_path / "v.cmeta", "w", schema="event") as ch:
        ch.append(timestamp=1, event_type="x")
    with Chronicle.open(tmp_path / "v.cmeta") as ch:
        assert ch.metadata["created_by"] == f"chronoledger {chronoledger.__version__}"
