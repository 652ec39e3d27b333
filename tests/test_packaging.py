"""What the built package and the repository ship: the extensions export
only what must leave them, the licence is declared, and no binary is kept in
the tree but the golden test files."""

import ctypes
import fnmatch
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


def ignored(rel: Path, patterns: list[str]) -> bool:
    """Whether .gitignore's ``patterns`` (the forms it uses: names, globs,
    /anchored paths, trailing / for folders) leave out ``rel`` or a folder above it."""
    prefixes = [Path(*rel.parts[:i]) for i in range(1, len(rel.parts) + 1)]
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if pattern.startswith("/"):                    # component by component: * stops at a /
            parts = pattern[1:].split("/")
            if any(len(p.parts) == len(parts) and all(map(fnmatch.fnmatchcase, p.parts, parts)) for p in prefixes):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in rel.parts):
            return True
    return False


def tracked_files() -> list[Path]:
    """The files of the repository: git's list in a checkout; in a copy of
    one (an sdist, or the copy .ci/run tests), the tree less what .gitignore
    leaves out (a build, the demo's output, caches)."""
    if (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [ROOT / p for p in out.decode().split("\0") if p]
    patterns = [ln.strip() for ln in (ROOT / ".gitignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    return [p for p in ROOT.rglob("*") if p.is_file() and not ignored(p.relative_to(ROOT), patterns + [".git"])]


def test_the_ignore_rules_read_as_git_reads_them():
    patterns = ["build/", "*.egg-info/", "__pycache__/", "*.so", "/src/*.c", "/*.cmeta", "/chronoledger-demo/",
                "/examples/User/Data/"]
    for rel in ["build/x/y.o", "python/a.egg-info/PKG-INFO", "tests/__pycache__/t.pyc", "python/chronoledger/_core.so",
                "src/_core.c", "run.cmeta", "chronoledger-demo/world/world.db", "examples/User/Data/chronos_core.db"]:
        assert ignored(Path(rel), patterns), rel
    for rel in ["native/cl_crc64.c", "tests/data/golden_v1_cycles.cmeta", "examples/User/Tasks/a.yml", "src/_core.pyx"]:
        assert not ignored(Path(rel), patterns), rel


def test_the_repository_keeps_no_binaries_but_the_golden_files():
    # the chronicles of release 1, and a database Grace's own registry made (tools/make_grace_db.py)
    golden = {ROOT / "tests" / "data" / "golden_v1_cycles.cmeta", ROOT / "tests" / "data" / "golden_v1_events.cmeta",
              ROOT / "tests" / "data" / "grace_registry.db"}
    # the screenshots docs/server.md shows, taken by tests/test_server_browser.py
    golden |= {ROOT / "docs" / "images" / f"serve-{page}.png" for page in ("home", "world", "runs", "digest")}
    binary = []
    for path in tracked_files():
        if not path.exists():                          # deleted in the working tree
            continue
        with open(path, "rb") as fh:
            head = fh.read(8192)
        if b"\0" in head or path.suffix in (".whl", ".db", ".sqlite", ".so", ".parquet", ".cmeta"):
            binary.append(path)
    assert set(binary) == golden, sorted(str(p.relative_to(ROOT)) for p in set(binary) - golden)
