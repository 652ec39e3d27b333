"""_fsutil: atomic replacement of a file, without touching the process umask."""

import os
import stat

import pytest

from chronoledger import _fsutil
from chronoledger._fsutil import atomic_write_bytes


@pytest.fixture
def umask_untouchable(monkeypatch):
    """os.umask fails if called: the umask is process-wide, and other threads may be creating files."""
    def refuse(*args):
        raise AssertionError("os.umask was called")
    monkeypatch.setattr(os, "umask", refuse)
    monkeypatch.setattr(_fsutil.os, "umask", refuse)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o000], ids=oct)
def test_a_new_file_gets_0o666_less_the_umask_and_the_umask_is_never_changed(tmp_path, monkeypatch, mask):
    old = os.umask(mask)
    try:
        def refuse(*args):
            raise AssertionError("os.umask was called")
        monkeypatch.setattr(os, "umask", refuse)
        target = tmp_path / "new.bin"
        atomic_write_bytes(target, b"hello")
        monkeypatch.undo()
        assert os.umask(mask) == mask                  # unchanged meanwhile
    finally:
        os.umask(old)
    assert target.read_bytes() == b"hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["new.bin"]     # no temporary file left


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o755, 0o444], ids=oct)
def test_a_replaced_file_keeps_its_permissions(tmp_path, umask_untouchable, mode):
    target = tmp_path / "kept.txt"
    target.write_bytes(b"old")
    os.chmod(target, mode)
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_the_write_is_fsynced_renamed_and_the_folder_fsynced(tmp_path, monkeypatch, umask_untouchable):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(a, b):
        calls.append(("replace", os.path.dirname(a) == os.path.dirname(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_bytes(tmp_path / "f", b"x" * 10)
    # the file's bytes, then the rename (within its folder), then the folder
    assert calls == [("fsync", False), ("replace", True), ("fsync", True)]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, umask_untouchable):
    target = tmp_path / "f.json"
    target.write_bytes(b"old")

    def broken_fsync(fd):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_temporary_name_taken_already_is_not_reused(tmp_path, monkeypatch, umask_untouchable):
    tokens = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(_fsutil.secrets, "token_hex", lambda n: next(tokens))
    squatter = tmp_path / ".f.aaaaaaaa.tmp"
    squatter.write_bytes(b"someone else's")
    atomic_write_bytes(tmp_path / "f", b"mine")
    assert (tmp_path / "f").read_bytes() == b"mine"
    assert squatter.read_bytes() == b"someone else's"


def test_a_missing_folder_is_a_clear_error(tmp_path, umask_untouchable):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_bytes(tmp_path / "no" / "f", b"x")



# --- atomic_path: a temporary file to write by name, renamed into place ---------------------------

def test_atomic_path_renames_the_written_file_into_place(tmp_path, umask_untouchable):
    target = tmp_path / "out.bin"
    with _fsutil.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.bin.") and tmp.exists()
        assert not target.exists()                       # nothing at the name until the body is done
        tmp.write_bytes(b"by name")
    assert target.read_bytes() == b"by name"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_path_keeps_the_permissions_of_a_replaced_file(tmp_path, umask_untouchable):
    target = tmp_path / "kept"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with _fsutil.atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_atomic_path_without_replace_refuses_an_existing_file_and_leaves_it(tmp_path, umask_untouchable):
    target = tmp_path / "mine"
    target.write_bytes(b"someone's")
    with pytest.raises(FileExistsError):
        with _fsutil.atomic_path(target, replace=False) as tmp:
            tmp.write_bytes(b"new")
    assert target.read_bytes() == b"someone's"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    fresh = tmp_path / "fresh"
    with _fsutil.atomic_path(fresh, replace=False) as tmp:
        tmp.write_bytes(b"x")
    assert fresh.read_bytes() == b"x" and sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "mine"]


def test_atomic_path_removes_the_temporary_when_the_body_fails(tmp_path, umask_untouchable):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with _fsutil.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_atomic_path_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch,
                                                                            umask_untouchable):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(a, b):
        calls.append(("replace", os.path.dirname(a) == os.path.dirname(b)))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with _fsutil.atomic_path(tmp_path / "f") as tmp:
        tmp.write_bytes(b"x")
    assert calls == [("fsync", False), ("replace", True), ("fsync", True)]
