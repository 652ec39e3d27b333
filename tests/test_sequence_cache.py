"""The parse cache (chronoledger.sequence.parse_cache): a re-sync that reuses
unchanged files' parses builds the same mirrors, byte for byte, as a cold
sync of the same files; changed files are read again; a cache that is
damaged, foreign or from another version is ignored."""

from __future__ import annotations

import os
import pickle
import random
import shutil
import sqlite3
import struct
from datetime import date
from pathlib import Path

import pytest

from chronoledger.core import crc64
from chronoledger.sequence import parse_cache, sample, schema
from chronoledger.sequence import sync as seq
from chronoledger.sequence.parse_cache import CACHE_FILE, ParseCache
from chronoledger.sequence.reader import parse_file, read_user_folder
from chronoledger.sequence.registry import mirror_folder

AS_OF = date(2025, 3, 1)


def _dump(data: Path) -> dict[str, list[str]]:
    """Every mirror's SQL dump, without the command log (it records when commands ran)."""
    out = {}
    for name, f in schema.FILES.items():
        conn = sqlite3.connect(data / f)
        out[name] = [line for line in conn.iterdump() if "command_runs" not in line]
        conn.close()
    return out


def _yaml_files(user: Path) -> list[Path]:
    return sorted(p for p in user.rglob("*.yml") if mirror_folder(user) not in p.parents)


def _edit(user: Path, share: float, seed: int) -> list[Path]:
    """A new key at the end of ``share`` of the files whose top level is a mapping."""
    paths = _yaml_files(user)
    random.Random(seed).shuffle(paths)
    changed: list[Path] = []
    for p in paths:
        if len(changed) >= max(1, round(len(paths) * share)):
            break
        text = p.read_text(encoding="utf-8")
        if text.endswith("\n") and not text.lstrip().startswith("-"):
            p.write_text(f"{text}edited_{seed}: {len(changed)}\n", encoding="utf-8")
            changed.append(p)
    return changed


@pytest.fixture()
def user(tmp_path: Path) -> Path:
    return sample.write_user_folder(tmp_path / "a", items=120, days=40, seed=3)


def _copy_without_mirrors(user: Path, dest: Path) -> Path:
    """The user folder's files (modification times kept), without its mirrors."""
    mirrors = mirror_folder(user)
    shutil.copytree(user, dest, ignore=lambda d, names: [n for n in names if Path(d, n) == mirrors])
    return dest


def test_resync_with_cache_builds_the_same_mirrors_as_a_cold_sync(user: Path, tmp_path: Path) -> None:
    seq.sync(user, as_of=AS_OF)
    assert (mirror_folder(user) / CACHE_FILE).is_file()
    changed = _edit(user, 0.01, seed=1)
    assert changed
    seq.sync(user, as_of=AS_OF)
    cold = _copy_without_mirrors(user, tmp_path / "b" / "User")
    seq.sync(cold, as_of=AS_OF, parse_cache=False)
    assert _dump(mirror_folder(user)) == _dump(mirror_folder(cold))


def test_cache_reuses_unchanged_files_and_reads_changed_ones(user: Path) -> None:
    seq.sync(user, as_of=AS_OF)
    data = mirror_folder(user)
    files = len(_yaml_files(user))
    cache = ParseCache.load(data)
    read_user_folder(user, cache.parse)
    assert cache.misses == 0 and cache.hits == len(cache.new) > files // 2 and not cache.changed
    changed = _edit(user, 0.02, seed=2)
    cache = ParseCache.load(data)
    tree = read_user_folder(user, cache.parse)
    assert cache.misses == len(changed) and cache.changed
    plain = read_user_folder(user)
    assert [(i.slug, i.type, i.name, i.path, i.data, i.mtime) for i in tree.items] == \
           [(i.slug, i.type, i.name, i.path, i.data, i.mtime) for i in plain.items]
    assert tree.schedules == plain.schedules and tree.completions == plain.completions
    assert [str(p) for p in tree.problems] == [str(p) for p in plain.problems]


def test_same_size_same_mtime_edit_is_seen(user: Path) -> None:
    seq.sync(user, as_of=AS_OF)
    data = mirror_folder(user)
    cache = ParseCache.load(data)
    rel = next(r for r, (ident, _) in cache.old.items() if ident[0] == "item" and r.startswith("habits/"))
    target = user / rel
    raw = target.read_bytes()
    st = target.stat()
    i = (b"\n" + raw).lower().index(b"\nname: ") + len(b"name: ")
    edited = raw[:i] + (b"Z" if raw[i:i + 1] != b"Z" else b"Y") + raw[i + 1:]     # same size, one byte other
    assert len(edited) == len(raw) and edited != raw
    target.write_bytes(edited)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    # even a stat that matched in every field would not hide the edit: the bytes' CRC-64 is compared
    ident, enc = cache.old[rel]
    new = target.stat()
    assert new.st_mtime_ns == ident[3]
    cache.old[rel] = ((*ident[:4], new.st_ctime_ns, *ident[5:]), enc)
    tree = read_user_folder(user, cache.parse)
    assert cache.misses == 1
    item = next(it for it in tree.items if it.path == rel)
    assert item.name[:1] == edited[i:i + 1].decode()


def _valid_cache_bytes(body_obj: object, stamp: str | None = None) -> bytes:
    stamp_b = (stamp if stamp is not None else parse_cache._stamp()).encode()
    body = struct.pack("<I", len(stamp_b)) + stamp_b + pickle.dumps(body_obj, protocol=5)
    return parse_cache._HEADER.pack(parse_cache._MAGIC, parse_cache.FORMAT, crc64(body), len(body)) + body


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "flipped", "other_version", "other_format",
                                  "foreign_class", "not_a_dict", "bad_entries"])
def test_damaged_or_foreign_cache_is_ignored(user: Path, tmp_path: Path, kind: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    seq.sync(user, as_of=AS_OF)
    data = mirror_folder(user)
    cache_file = data / CACHE_FILE
    good = cache_file.read_bytes()
    monkeypatch.chdir(tmp_path)
    if kind == "garbage":
        bad = os.urandom(4096)
    elif kind == "empty":
        bad = b""
    elif kind == "truncated":
        bad = good[: len(good) // 2]
    elif kind == "flipped":
        bad = good[:-10] + bytes([good[-10] ^ 0xFF]) + good[-9:]
    elif kind == "other_version":
        entries = parse_cache._entries(good)
        bad = _valid_cache_bytes(entries, stamp="chronoledger 0.0.1; PyYAML 1.0")
    elif kind == "other_format":
        bad = bytearray(good)
        struct.pack_into("<I", bad, 8, parse_cache.FORMAT + 1)
        bad = bytes(bad)
    elif kind == "foreign_class":
        bad = _valid_cache_bytes({"x": _Evil()})
    elif kind == "not_a_dict":
        bad = _valid_cache_bytes([1, 2, 3])
    else:                                   # a dict whose entries are of no shape this module writes
        entries = parse_cache._entries(good)
        bad = _valid_cache_bytes({rel: ("nonsense", 1) if i % 2 else (e[0], ("x",))
                                  for i, (rel, e) in enumerate(entries.items())})
    cache_file.write_bytes(bad)
    if kind not in ("bad_entries",):
        assert ParseCache.load(data).old == {}
    report = seq.sync(user, as_of=AS_OF)
    assert not (tmp_path / "pwned").exists()
    assert report.skipped == 0
    cold = _copy_without_mirrors(user, tmp_path / "cold" / "User")
    seq.sync(cold, as_of=AS_OF, parse_cache=False)
    assert _dump(data) == _dump(mirror_folder(cold))
    assert parse_cache._entries(cache_file.read_bytes())      # rewritten as a good cache


def test_cache_lives_in_the_mirror_folder_and_is_not_read_as_data(user: Path) -> None:
    report = seq.sync(user, as_of=AS_OF)
    again = seq.sync(user, as_of=AS_OF)
    assert (mirror_folder(user) / CACHE_FILE).is_file()
    assert not any(CACHE_FILE in str(p) for p in again.problems)
    assert again.files == report.files and again.items == report.items


def test_without_cache_nothing_is_written(user: Path) -> None:
    seq.sync(user, as_of=AS_OF, parse_cache=False)
    assert not (mirror_folder(user) / CACHE_FILE).exists()


def test_parse_matches_parse_file_for_a_file_that_cannot_be_read(user: Path, tmp_path: Path) -> None:
    bad = user / "Tasks" / "broken.yml"
    bad.parent.mkdir(exist_ok=True)
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    seq.sync(user, as_of=AS_OF)
    cache = ParseCache.load(mirror_folder(user))
    tree = read_user_folder(user, cache.parse)
    plain = read_user_folder(user, parse_file)
    assert cache.misses == 0
    assert [str(p) for p in tree.problems] == [str(p) for p in plain.problems]
    assert any("broken.yml" in str(p) for p in tree.problems)
