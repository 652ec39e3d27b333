"""What the built package and the repository ship: the extensions export
only what must leave them, the licence is declared, and no binary is kept in
the tree but the golden test files."""

import ctypes
import importlib
import importlib.metadata
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = ["_core", "_chronicle", "_yamlread", "_sqlbulk"]
#: what each extension must export besides its PyInit_ function
ENTRY_POINTS = {"_sqlbulk": ["cl_sqlbulk_entry"]}      # SQLite's load_extension finds it by name


def kernel_names() -> set[str]:
    """Every cl_ function the native headers declare."""
    names = set()
    for header in (ROOT / "native").glob("*.h"):
        names.update(re.findall(r"\b(cl_[a-z0-9_]+)\s*\(", header.read_text()))
    return names


@pytest.mark.parametrize("name", EXTENSIONS)
def test_extensions_export_their_init_and_nothing_of_the_kernels(name):
    module = importlib.import_module(f"chronoledger.{name}")
    lib = ctypes.CDLL(module.__file__)                  # the loaded library: dlsym sees its dynamic symbols
    assert hasattr(lib, f"PyInit_{name}")
    kernels = kernel_names()
    assert len(kernels) > 40                            # the headers were read
    wanted = set(ENTRY_POINTS.get(name, []))
    exported = {k for k in kernels if hasattr(lib, k)}
    assert exported == wanted, f"{name} exports {sorted(exported - wanted)}"


def test_the_licence_is_declared_and_shipped():
    meta = importlib.metadata.metadata("chronoledger")
    assert meta["License-Expression"] == "MIT"
    files = [str(f) for f in importlib.metadata.files("chronoledger") or []]
    assert any(f.endswith("LICENSE") for f in files), files
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def tracked_files() -> list[Path]:
    """The files of the repository: git's list in a checkout; in a copy of
    one (.ci/run tests a copy of the tracked files), the tree less what a
    build and a test run make."""
    if (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [ROOT / p for p in out.decode().split("\0") if p]
    made = {"build", "dist", ".git", "__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not made.intersection(p.relative_to(ROOT).parts)
            and not p.relative_to(ROOT).parts[0].endswith(".egg-info")]


def test_the_repository_keeps_no_binaries_but_the_golden_files():
    golden = {ROOT / "tests" / "data" / "golden_v1_cycles.cmeta", ROOT / "tests" / "data" / "golden_v1_events.cmeta"}
    binary = []
    for path in tracked_files():
        if not path.exists():                          # deleted in the working tree
            continue
        with open(path, "rb") as fh:
            head = fh.read(8192)
        if b"\0" in head or path.suffix in (".whl", ".db", ".sqlite", ".so", ".parquet", ".cmeta"):
            binary.append(path)
    assert set(binary) == golden, sorted(str(p.relative_to(ROOT)) for p in set(binary) - golden)
