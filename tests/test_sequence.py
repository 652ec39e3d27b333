"""Sequence: reading a user folder, the four mirrors, atomic sync, read-only
data queries, the metastudy and the listener."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import date, datetime, time
from pathlib import Path

import apsw
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chronoledger.errors import ConfigError, QueryError
from chronoledger.sequence import listener, metastudy, sample
from chronoledger.sequence.layout import find_user_folder, parse_duration, read_user_folder, singular
from chronoledger.sequence.query import run_query
from chronoledger.sequence.reader import SPECIAL
from chronoledger.sequence.registry import mirror_folder
from chronoledger.sequence.sync import hhmm, plan, status, sync

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "User"


def q(path, sql, *args):
    conn = apsw.Connection(str(path))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def lower_keys(value):
    """The reference for our loaders: mappings' string keys stripped and lower-cased, all the way down."""
    if isinstance(value, dict):
        return {(k.strip().lower() if isinstance(k, str) else k): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value


def yaml_digest(user: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(user.rglob("*")):
        if p.is_file() and "Data" not in p.relative_to(user).parts[:1]:
            h.update(p.relative_to(user).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(params=["direct", "pyyaml"])
def reader(request, monkeypatch):
    """Both ways a file is read: libyaml's events straight to values, and PyYAML's loader."""
    from chronoledger.sequence import yamlfile

    if request.param == "pyyaml":
        monkeypatch.setattr(yamlfile, "_yamlread", None)
    return request.param


@pytest.fixture
def folder(tmp_path):
    return sample.write_user_folder(tmp_path, items=120, days=45, seed=3)


# --- reading -----------------------------------------------------------------

@pytest.mark.parametrize("value, minutes", [("00:05", 5), ("02:00", 120), ("1:30", 90), ("90d", 90 * 1440),
                                            ("24h", 1440), ("45m", 45), ("45M", 45), (30, 30), (7.5, 7.5),
                                            ("15", 15), (" 2h ", 120)])
def test_every_duration_form(value, minutes):
    assert parse_duration(value) == minutes


@pytest.mark.parametrize("value", ["soon", "-5", -5, "1:75", True, None, [], "5 weeks"])
def test_durations_that_say_nothing(value):
    assert parse_duration(value) is None


def test_times_of_day_in_every_spelling():
    assert [hhmm(v) for v in ("6:30", "06:30", "06:30:00", 390, 23400, "25:00", "x", None)] == \
        ["06:30", "06:30", "06:30", "06:30", "06:30", None, None, None]


def test_folder_names_and_keys_in_any_case(tmp_path):
    user = tmp_path / "user"
    (user / "HABITS").mkdir(parents=True)
    (user / "habits_extra").mkdir()
    (user / "HABITS" / "run.yml").write_text("NAME: Run\nType: habit\nDuration: '00:20'\nTAGS: [a]\n")
    (user / "Inventory_Items").mkdir()
    (user / "Inventory_Items" / "tent.yaml").write_text("name: Tent\n")         # type from the folder
    (user / "schedules" / "Completions").mkdir(parents=True)
    (user / "schedules" / "Completions" / "2025-01-02.yml").write_text("Entries:\n  Run@06:30: completed\n")
    tree = read_user_folder(tmp_path)
    assert tree.root == user
    by = {it.name: it for it in tree.items}
    assert by["Run"].type == "habit" and by["Run"].data["duration"] == "00:20" and by["Run"].data["tags"] == ["a"]
    assert by["Tent"].type == "inventory_item" and singular("Inventories") == "inventory"
    assert tree.completions == {"2025-01-02": {"Run@06:30": "completed"}}      # entry keys are names: case kept


YAML_CASES = [
    "a: 1\nB: 2.5\nC: true\nd: null\ne: ~\nf: 2025-01-02\ng: 2025-01-02 03:04:05\nh: 06:30\ni: 0x1f\n",
    "- [1, 2, {X: y}]\n- !!str 12\n- '06:30'\n- .inf\n- -.5e3\n- 'quoted'\n- 1_000\n",
    "base: &b {Name: A, Type: habit}\nuse: *b\nmerged:\n  <<: *b\n  extra: 1\n",
    "Key With Space : value\n'Quoted Key': [a, b]\n2: int key\nnested: {Deep: {Deeper: [1, {Q: 2}]}}\n",
    "set: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\nbinary: !!binary aGVsbG8=\n",
    "s: |\n  line one\n  line two\nf: >\n  folded\n  text\n",
    "= : value key\nplain: {<<: {Merged: 1}, own: 2}\n",
    "2025-01-02: date key\n1.5: float key\ntrue: bool key\n~: null key\nX: !!str 3\n",
]


@pytest.mark.parametrize("text", YAML_CASES)
def test_our_loader_gives_what_the_safe_loader_gives(text):
    import yaml

    from chronoledger.sequence import yamlfile

    want = repr(lower_keys(yaml.load(text, Loader=yaml.SafeLoader)))
    # bytes without '&' take the walk for documents without aliases; a str, or an '&' (here in a
    # comment), the general one: both must give what the safe loader gives
    for stream in (text.encode(), text, text.encode() + b"# &\n", text.encode("utf-16")):
        assert repr(yaml.load(stream, Loader=yamlfile.Loader)) == want, stream
    again = yaml.load(text.encode(), Loader=yamlfile.Loader)  # the resolver's memory gives the same answer
    assert repr(again) == want


@pytest.mark.parametrize("text", [
    "Entries:\n  Run@06:30: {Status: Done, Extra: {Deep: 1}}\n  read@21:00: skipped\n",
    "base: &b {Status: Done}\nEntries:\n  Run@06:30: *b\n",
])
def test_the_completions_loader_keeps_only_entry_keys_as_written(text):
    import yaml

    from chronoledger.sequence import yamlfile

    got = yaml.load(text.encode(), Loader=yamlfile.CaseLoader)
    if "base" in text:      # an alias: the anchored mapping is lower-cased where it is used as an entry
        assert got == {"base": {"Status": "Done"}, "entries": {"Run@06:30": {"status": "Done"}}}
    else:
        assert got == {"entries": {"Run@06:30": {"status": "Done", "extra": {"deep": 1}}, "read@21:00": "skipped"}}


def same_values(a, b) -> bool:
    """Equal with the same types all the way down (True == 1 and 1 == 1.0 are not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)       # NaN


#: YAML_CASES the direct reader takes itself (the rest have anchors, merge or value keys, set/omap tags).
DIRECT_CASES = [0, 1, 3, 5, 7]


@pytest.mark.parametrize("index", range(len(YAML_CASES)))
def test_the_direct_reader_gives_what_our_loader_gives_or_leaves_the_document_to_it(index):
    from chronoledger.sequence import yamlfile

    raw = YAML_CASES[index].encode()
    assert yamlfile._yamlread is not None, "libyaml could not be bound from PyYAML's extension"
    for keep_case in (False, True):
        got = yamlfile._read_direct(raw, keep_case)
        if index not in DIRECT_CASES:
            assert got is yamlfile._MISSING
            continue
        want, problem = yamlfile._load_with_pyyaml("/", "/x.yml", raw, keep_case)
        assert problem is None and same_values(got, want), (got, want)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=True, allow_infinity=True), st.dates(),
                     st.datetimes(), st.text(max_size=12),
                     st.sampled_from(["yes", "No", "06:30", "1:30:00", "0x1F", "0o17", "~", "null", "1_000",
                                      ".5", "+1", "2025-01-02", "2025-1-2 3:04:05", "", " x ", "'", "a: b", "#"]))
_keys = st.one_of(st.text(min_size=1, max_size=8), st.sampled_from(["Name", " Type ", "STATUS", "Due_Date"]),
                  st.integers(-5, 5), st.dates(), st.booleans())
_documents = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(_keys, inner, max_size=4)),
                          max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(_keys, _documents, max_size=6), flow=st.sampled_from([None, True, False]),
       keep_case=st.booleans())
def test_the_direct_reader_agrees_with_the_pyyaml_loader_on_any_document(doc, flow, keep_case):
    import yaml

    from chronoledger.sequence import yamlfile

    raw = yaml.safe_dump(doc, default_flow_style=flow, allow_unicode=True).encode()
    want, problem = yamlfile._load_with_pyyaml("/", "/x.yml", raw, keep_case)
    got = yamlfile._read_direct(raw, keep_case)
    if problem is not None:                        # e.g. a key that collides once lower-cased is fine; refusals
        assert got is yamlfile._MISSING              # are PyYAML's to word
    else:
        assert got is not yamlfile._MISSING and same_values(got, want), (raw, got, want)


def test_the_direct_reader_binds_again_and_refuses_what_it_cannot_read_safely():
    import yaml._yaml

    from chronoledger import _yamlread
    from chronoledger.sequence import yamlfile

    version = _yamlread.bind(yaml._yaml.__file__)
    assert version and version == _yamlread.bind(yaml._yaml.__file__)      # a second bind (a reload) still works
    assert version.startswith(("0.1.", "0.2."))
    args = (-1, 10, {}, yamlfile._resolve_plain, yamlfile._scalar_value, {})
    with pytest.raises(TypeError):
        _yamlread.read(None, *args)
    with pytest.raises(ValueError, match="max_depth"):
        _yamlread.read(b"[]", -1, _yamlread.MAX_DEPTH_LIMIT + 1, *args[2:])
    with pytest.raises(_yamlread.TooDeep):
        _yamlread.read(b"[" * 11 + b"]" * 11, *args)
    assert _yamlread.read(b"[" * 10 + b"]" * 10, *args) == [[[[[[[[[[]]]]]]]]]]
    assert _yamlread.read(b"# only a comment\n", *args) is None


def test_the_direct_reader_reads_a_folder_as_pyyaml_does(folder, monkeypatch):
    from chronoledger.sequence import yamlfile

    direct = read_user_folder(folder)
    monkeypatch.setattr(yamlfile, "_yamlread", None)
    slow = read_user_folder(folder)
    assert [(i.name, i.type, i.path) for i in direct.items] == [(i.name, i.type, i.path) for i in slow.items]
    assert same_values([i.data for i in direct.items], [i.data for i in slow.items])
    for part in ("completions", "schedules", "status", "points", "reviews", "settings"):
        assert same_values(getattr(direct, part), getattr(slow, part)), part
    assert [str(p) for p in direct.problems] == [str(p) for p in slow.problems]


def test_our_loader_refuses_what_the_safe_loader_refuses():
    import yaml

    from chronoledger.sequence import yamlfile

    for bad in ("a: !!python/object:os.system x\n", "? [1, 2]\n: unhashable\n"):
        with pytest.raises(yaml.YAMLError):
            yaml.load(bad, Loader=yaml.SafeLoader)
        with pytest.raises(yaml.YAMLError):
            yaml.load(bad, Loader=yamlfile.Loader)


def test_the_user_folder_is_found_or_refused(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        find_user_folder(tmp_path / "nope")
    with pytest.raises(ConfigError, match="named User/ or user/"):
        find_user_folder(tmp_path)


# --- the mirrors ------------------------------------------------------------------

def test_every_table_is_filled_as_the_yaml_says(folder):
    before = yaml_digest(folder)
    report = sync(folder.parent)
    assert yaml_digest(folder) == before                    # the source of truth is never written
    data = mirror_folder(folder)
    core = data / "chronos_core.db"
    # Chronos's layout: items in type folders, logs and settings in the folders Chronos keeps them in
    item_files = [p for p in folder.iterdir() if p.is_dir() and p.name.lower() not in SPECIAL]
    n_items = sum(1 for d in item_files for f in d.glob("*.yml") if f.name != "points.yml")
    assert q(core, "SELECT COUNT(*) FROM items") == [(n_items,)] == [(report.items,)]
    import yaml

    entries = sum(len(yaml.safe_load(f.read_text())["entries"]) for f in (folder / "schedules" / "completions").glob("*.yml"))
    assert q(core, "SELECT COUNT(*) FROM completions") == [(entries,)]

    def count_blocks(blocks):       # buffers are free time, not activities
        return sum(1 + count_blocks(b.get("children") or []) for b in blocks if not b.get("is_buffer"))

    blocks = sum(count_blocks(yaml.safe_load(f.read_text()) or []) for f in (folder / "schedules").glob("*.yml")
                 if re.fullmatch(r"schedule_\d{4}-\d{2}-\d{2}\.yml", f.name))
    assert q(core, "SELECT COUNT(*) FROM schedules") == [(blocks,)]
    points = yaml.safe_load((folder / "Rewards" / "points.yml").read_text())
    assert q(core, "SELECT COUNT(*), SUM(delta) FROM points_ledger") == [(len(points["ledger"]),
                                                                         float(sum(e["delta"] for e in points["ledger"])))]
    assert q(core, "SELECT balance FROM points_ledger ORDER BY id DESC LIMIT 1") == [(float(points["balance"]),)]
    history = {f.name: f for f in (folder / "profile" / "Status").glob("status_*.yml")}
    history.update({f.name: f for f in (folder / "logs").glob("status_*.yml")})     # logs/ first, as Chronos
    snaps = [e["status"] for f in history.values() for e in yaml.safe_load(f.read_text())["entries"]]
    assert q(core, "SELECT COUNT(*) FROM status_log") == [(sum(len(s) for s in snaps),)]
    mem = data / "chronos_memory.db"
    assert q(mem, "SELECT COUNT(*) FROM status_snapshots") == [(len(snaps),)]
    assert q(mem, "SELECT COUNT(*) FROM narratives") == [(len(list((folder / "logs" / "narratives").glob("*.md"))),)]
    assert q(mem, "SELECT COUNT(*) FROM activity_facts WHERE depth = 0") == \
        q(core, "SELECT COUNT(*) FROM schedules WHERE depth = 0")
    ev = data / "chronos_events.db"
    assert q(ev, "SELECT COUNT(*) FROM events WHERE event_type = 'completion'") == [(entries,)]
    assert q(ev, "SELECT COUNT(*) FROM trigger_log") == q(mem, "SELECT COUNT(*) FROM reinforcements")
    from chronoledger.chronicle import Chronicle

    with Chronicle.open(data / "chronos_events.cmeta") as ch:       # the same events, as a chronicle
        assert len(ch) == q(ev, "SELECT COUNT(*) FROM events")[0][0]
    for path, raw in q(core, "SELECT path, raw_json FROM items WHERE type IN ('goal', 'commitment', 'routine')"):
        want = lower_keys(yaml.safe_load((folder / path).read_text()))
        assert json.loads(raw) == json.loads(json.dumps(want, default=str))   # the whole item is kept
    reg = (data / "databases.yml").read_text()
    assert "chronos_core.db" in reg and str(folder) not in reg        # relative names only


def test_references_resolve_by_name_and_type_and_the_rest_are_kept(folder):
    report = sync(folder.parent, ("core",))
    core = mirror_folder(folder) / "chronos_core.db"
    resolved = q(core, "SELECT COUNT(*) FROM relations r JOIN items c ON c.id = r.child_id "
                       "WHERE r.resolved = 1 AND lower(c.name) = lower(r.child_name)")
    assert resolved == q(core, "SELECT COUNT(*) FROM relations WHERE resolved = 1") and resolved[0][0] > 20
    # a day's inline windows (sequence: entries with their own start and end) name no item, by design
    unresolved = q(core, "SELECT child_name, child_type FROM relations WHERE resolved = 0 AND NOT "
                         "(kind = 'sequence' AND json_extract(detail_json, '$.window'))")
    assert unresolved and all(n == "A Step Nobody Wrote Down" for n, _ in unresolved)
    assert len(report.unresolved) == len(unresolved)
    kinds = {k for (k,) in q(core, "SELECT DISTINCT kind FROM relations")}
    assert kinds >= {"children", "milestones", "targets", "goal", "sequence"}


def test_durations_in_the_mirror(tmp_path):
    user = tmp_path / "User"
    (user / "Tasks").mkdir(parents=True)
    for i, d in enumerate(["'00:05'", "'02:00'", "90d", "24h", "45m", "30", "someday"]):
        (user / "Tasks" / f"t{i}.yml").write_text(f"name: T{i}\ntype: task\nduration: {d}\n")
    report = sync(tmp_path, ("core",))
    got = dict(q(mirror_folder(user) / "chronos_core.db", "SELECT name, duration_minutes FROM items"))
    assert got == {"T0": 5.0, "T1": 120.0, "T2": 129600.0, "T3": 1440.0, "T4": 45.0, "T5": 30.0, "T6": None}
    assert any("duration 'someday'" in str(p) for p in report.problems)


def test_malformed_and_empty_files_are_skipped_and_reported(folder, reader):
    (folder / "Tasks" / "broken.yml").write_text("name: Broken\ntags: [a, b\nstatus: x\n")
    (folder / "Tasks" / "empty.yml").write_text("")
    (folder / "Tasks" / "list.yml").write_text("- just\n- a list\n")
    (folder / "Tasks" / "noname.yml").write_text("type: task\n")
    (folder / "logs" / "status_2025-01-03.yml").write_text("date: [unclosed\n")
    report = sync(folder.parent)
    by = {p.path: p for p in report.problems}
    assert by["Tasks/broken.yml"].line == 3 and "malformed YAML" in by["Tasks/broken.yml"].reason
    assert by["Tasks/empty.yml"].reason == "the file is empty"
    assert "expected a mapping" in by["Tasks/list.yml"].reason
    assert "no name" in by["Tasks/noname.yml"].reason
    assert "logs/status_2025-01-03.yml" in by and report.skipped == 5
    assert q(mirror_folder(folder) / "chronos_core.db", "SELECT COUNT(*) FROM items WHERE path = 'Tasks/broken.yml'") == [(0,)]
    assert report.items > 100                                  # the rest was read


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from chronoledger.sequence import sync as s
    real = s.Builder.memory
    def memory(self, conn):
        out = real(self, conn)
        os.kill(os.getpid(), signal.SIGKILL)      # mid-sync: the memory mirror is half built
        return out
    s.Builder.memory = memory
    s.sync(sys.argv[1])
""")


def test_a_sync_killed_midway_leaves_the_previous_mirrors(folder):
    sync(folder.parent)
    data = mirror_folder(folder)
    before = {f: (data / f).read_bytes() for f in ("chronos_core.db", "chronos_memory.db", "chronos_trends.db")}
    (folder / "Tasks" / "new_task.yml").write_text("name: New Task\ntype: task\n")
    r = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(folder.parent)], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    for f, content in before.items():           # every mirror as it was: none is put in place until all are built
        assert (data / f).read_bytes() == content, f
    assert list(data.glob(".*.building-*"))                                      # the half-built file
    sync(folder.parent)
    assert not list(data.glob(".*.building-*"))
    assert q(data / "chronos_core.db", "SELECT COUNT(*) FROM items WHERE name = 'New Task'") == [(1,)]


def test_a_failing_sync_keeps_the_old_mirror_and_says_so(folder, monkeypatch):
    sync(folder.parent)
    core = mirror_folder(folder) / "chronos_core.db"
    old = core.read_bytes()
    from chronoledger.sequence import sync as s

    monkeypatch.setattr(s.Builder, "core", lambda self, conn: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sync(folder.parent, ("core",))
    assert core.read_bytes() == old
    st = status(folder.parent)["databases"]["core"]
    assert st["status"] == "failed" and "ZeroDivisionError" in st["error"]


def test_sync_pauses_the_cycle_collector_and_restores_it(folder, monkeypatch):
    import gc

    states = []
    assert gc.isenabled()
    sync(folder.parent, ("core",), progress=lambda _: states.append(gc.isenabled()))
    assert states and not any(states) and gc.isenabled()
    gc.disable()                                   # a caller that runs without it keeps running without it
    try:
        sync(folder.parent, ("core",))
        assert not gc.isenabled()
    finally:
        gc.enable()
    from chronoledger.sequence import sync as s

    monkeypatch.setattr(s.Builder, "core", lambda self, conn: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        sync(folder.parent, ("core",))
    assert gc.isenabled()


@pytest.mark.parametrize("registry", [b"- a list\n", b"databases: 5\n", b"databases: {core: 5}\n",
                                      b"\xff\xfe\x00bad", b"a: [unclosed\n", b"[" * 5000],
                         ids=["list", "databases-int", "entry-int", "not-text", "malformed", "deep"])
def test_a_registry_that_is_not_ours_is_replaced_by_the_next_sync(folder, registry):
    data = mirror_folder(folder)
    data.mkdir(parents=True)
    (data / "databases.yml").write_bytes(registry)
    status(folder.parent)                                       # reads it without failing
    sync(folder.parent, ("core",))
    assert status(folder.parent)["databases"]["core"]["status"] == "ok"


def test_status_and_plan(folder):
    assert status(folder.parent)["databases"]["core"]["yaml_changed_since"] is True
    p = plan(folder.parent)
    assert not p["mirror_exists"] and sum(len(v["added"]) for v in p["types"].values()) == p["items"]
    sync(folder.parent)
    st = status(folder.parent)
    assert all(not e["yaml_changed_since"] for e in st["databases"].values())
    assert plan(folder.parent)["types"] == {}
    (folder / "Tasks" / "fresh.yml").write_text("name: Fresh\ntype: task\n")
    victim = next((folder / "Goals").glob("*.yml"))
    victim.unlink()
    changed = next((folder / "Tasks").glob("*.yml"))
    changed.write_text(changed.read_text() + "extra_key: 1\n")
    p = plan(folder.parent)
    assert p["types"]["task"]["added"] == ["fresh"] and p["types"]["goal"]["removed"] == [victim.stem]
    assert changed.stem in p["types"]["task"]["changed"]
    assert status(folder.parent)["databases"]["core"]["yaml_changed_since"] is True


def test_command_runs_survive_rebuilds(folder):
    from chronoledger.sequence.sync import record_command

    sync(folder.parent)
    record_command(folder, "status", ["status"], 0.01, "ok")
    sync(folder.parent)
    ev = mirror_folder(folder) / "chronos_events.db"
    assert q(ev, "SELECT command, result FROM command_runs") == [("status", "ok")]
    assert q(ev, "SELECT COUNT(*) FROM events WHERE event_type = 'command'") == [(1,)]


# --- read-only data queries -----------------------------------------------------------

@pytest.mark.parametrize("sql", [
    "DELETE FROM items", "UPDATE items SET name = 'x'", "INSERT INTO variables VALUES ('a', 'b')",
    "DROP TABLE items", "CREATE TABLE t (x)", "ATTACH DATABASE 'x.db' AS x", "DETACH DATABASE memory",
    "PRAGMA journal_mode = DELETE", "PRAGMA user_version = 5", "PRAGMA query_only = OFF",
    "SELECT load_extension('x')", "BEGIN", "VACUUM", "REINDEX", "ANALYZE",
    "CREATE TEMP TABLE t (x)", "CREATE TEMP VIEW v AS SELECT 1",
])
def test_data_refuses_anything_but_reading(folder, sql):
    sync(folder.parent)
    data = mirror_folder(folder)
    before = {f.name: f.read_bytes() for f in data.glob("chronos_*.db")}
    with pytest.raises(QueryError, match="refused|failed"):
        run_query(data, sql)
    assert {f.name: f.read_bytes() for f in data.glob("chronos_*.db")} == before
    assert not (data / "x.db").exists()


def test_data_reads_across_the_mirrors(folder):
    sync(folder.parent)
    data = mirror_folder(folder)
    names, rows = run_query(data, "SELECT COUNT(*) AS n FROM items i JOIN memory.activity_facts f "
                                  "ON f.name = i.name WHERE f.status = 'completed'")
    assert names == ["n"] and rows[0][0] > 0
    assert run_query(data, "PRAGMA table_info(items)")[1][0][1] == "id"
    assert run_query(data, "SELECT COUNT(*) FROM trigger_log", "events")[1][0][0] >= 0


# --- the metastudy ---------------------------------------------------------------

def _tiny(tmp_path) -> Path:
    """Ten days of one habit, by hand: done on days 1-3, 5-9 (8 of 10); day 4 missed,
    day 10 skipped; starts planned 07:00, actual 07:00 + (day - 1) minutes."""
    user = tmp_path / "User"
    (user / "Habits").mkdir(parents=True)
    (user / "Habits" / "run.yml").write_text("name: Run\ntype: habit\nduration: 30\n")
    comp = user / "schedules" / "completions"
    comp.mkdir(parents=True)
    for d in range(1, 11):
        day = f"2025-03-{d:02d}"
        (user / "schedules" / f"schedule_{day}.yml").write_text(
            f"- name: Run\n  type: habit\n  start_time: {day} 07:00:00\n  end_time: {day} 07:30:00\n")
        status = "missed" if d == 4 else "skipped" if d == 10 else "completed"
        body = f"    status: {status}\n"
        if status == "completed":
            body += f"    actual_start: '07:{d - 1:02d}'\n    actual_end: '07:{d + 29:02d}'\n"
        (comp / f"{day}.yml").write_text(f"entries:\n  Run@07:00:\n{body}")
    logs = user / "logs"
    logs.mkdir(parents=True)
    for d, energy in zip(range(1, 11), ["low"] * 4 + ["medium"] * 2 + ["high"] * 4):
        (logs / f"status_2025-03-{d:02d}.yml").write_text(
            f"date: '2025-03-{d:02d}'\nentries:\n- at: 08:00:00\n  status:\n    energy: {energy}\n")
    return user


def test_metastudy_figures_by_hand(tmp_path):
    user = _tiny(tmp_path)
    sync(tmp_path, as_of=date(2025, 3, 10))
    data = mirror_folder(user)
    row = q(data / "chronos_trends.db", "SELECT scheduled, completed, completion_rate, current_streak, best_streak, "
                                        "avg_start_minute, avg_delay_minutes, actual_minutes, planned_minutes "
                                        "FROM item_trends WHERE item_name = 'Run' AND window_days = 30")[0]
    starts = [7 * 60 + d - 1 for d in range(1, 11) if d not in (4, 10)]
    assert row[:5] == (10, 8, 0.8, 0, 5)            # streak broken by the skip on day 10; best run days 5-9
    assert row[5] == pytest.approx(sum(starts) / 8) and row[6] == pytest.approx(sum(s - 420 for s in starts) / 8)
    assert row[7] == 30.0 and row[8] == 30.0
    wk = q(data / "chronos_trends.db", "SELECT scheduled, completed FROM item_trends WHERE item_name = 'Run' "
                                       "AND window_days = 7")[0]
    assert wk == (7, 5)                              # 4..10 March: day 4 missed, day 10 skipped
    energy = q(data / "chronos_trends.db", "SELECT samples, most_common, mean_level, drift FROM status_trends "
                                           "WHERE dimension = 'energy' AND window_days = 30")[0]
    levels = [0] * 4 + [0.5] * 2 + [1] * 4
    assert energy[:2] == (10, "low")                # 4 low, 4 high: the first seen wins the tie
    assert energy[2] == pytest.approx(sum(levels) / 10)
    assert energy[3] == pytest.approx(sum(levels[-3:]) / 3 - sum(levels[:3]) / 3)
    digest = json.loads((data / "tendencies.json").read_text())
    assert digest["completion"]["30"] == {"rate": 0.8, "completed": 8, "scheduled": 10}
    md = (data / "tendencies.md").read_text()
    assert "Tendencies as of 2025-03-10" in md and "80% (8/10)" in md


def test_metastudy_is_deterministic_for_an_as_of(folder):
    sync(folder.parent)
    data = mirror_folder(folder)
    metastudy.build_trends(data, as_of=date(2025, 2, 1))
    first = {f: (data / f).read_bytes() for f in ("tendencies.md", "tendencies.json")}
    db_rows = q(data / "chronos_trends.db", "SELECT * FROM item_trends ORDER BY item_name, window_days")
    metastudy.build_trends(data, as_of=date(2025, 2, 1))
    assert {f: (data / f).read_bytes() for f in first} == first
    assert q(data / "chronos_trends.db", "SELECT * FROM item_trends ORDER BY item_name, window_days") == db_rows
    assert len(first["tendencies.md"].split()) < 600          # short enough to read in few tokens


# --- the listener ------------------------------------------------------------------

def test_listener_time_comes_from_settings(tmp_path):
    user = tmp_path / "User"
    (user / "settings").mkdir(parents=True)
    assert listener.sync_time(user) == time(0, 0)
    (user / "settings" / "Sequence.yml").write_text("listener:\n  sync_time: '02:30'\n")
    assert listener.sync_time(user) == time(2, 30)
    (user / "settings" / "Sequence.yml").write_text("sync_time: 04:15\n")      # unquoted: YAML reads 255
    assert listener.sync_time(user) == time(4, 15)
    (user / "settings" / "Sequence.yml").write_text("sync_time: 'teatime'\n")
    with pytest.raises(ConfigError, match="not a time of day"):
        listener.sync_time(user)
    assert listener.next_run(datetime(2026, 1, 1, 1, 0), time(2, 30)) == datetime(2026, 1, 1, 2, 30)
    assert listener.next_run(datetime(2026, 1, 1, 3, 0), time(2, 30)) == datetime(2026, 1, 2, 2, 30)
    assert listener.next_run(datetime(2026, 1, 1, 2, 30), time(2, 30)) == datetime(2026, 1, 1, 2, 30)


def test_listener_waits_for_the_time_then_syncs(folder):
    clock = [datetime(2026, 1, 1, 23, 58)]
    slept = []

    def sleep(s):
        slept.append(s)
        clock[0] = clock[0] + __import__("datetime").timedelta(seconds=s)

    logs = []
    reports = listener.listen(folder.parent, log=logs.append, sleep=sleep, now=lambda: clock[0], cycles=1)
    assert len(reports) == 1 and sum(slept) == 120 and logs[0] == "next sync at 2026-01-02T00:00"
    assert (mirror_folder(folder) / "tendencies.md").exists()


def test_the_shipped_example_folder_syncs_cleanly(tmp_path):
    user = tmp_path / "User"
    shutil.copytree(EXAMPLES, user, ignore=shutil.ignore_patterns("Data"))
    report = sync(tmp_path)
    # nothing skipped, no warning; only notes of what is not mirrored by design (scripts/, a token...)
    assert report.items >= 300 and not [p for p in report.problems if not p.note]
    assert {p.path for p in report.problems} >= {"scripts", "Settings/link_settings.yml"}
    types = {t for (t,) in q(mirror_folder(user) / "chronos_core.db", "SELECT DISTINCT type FROM items")}
    assert len(types) >= 18


def test_the_queries_in_docs_agents_md_run(folder):
    import re

    sync(folder.parent)
    text = (Path(__file__).resolve().parents[1] / "docs" / "agents.md").read_text(encoding="utf-8")
    block = re.search(r"```sql\n(.*?)```", text, re.S).group(1)
    code = "\n".join(line for line in block.splitlines() if not line.strip().startswith("--"))
    queries = [q.strip() for q in code.split(";") if q.strip()]
    assert len(queries) == 3
    for sql in queries:
        names, _ = run_query(mirror_folder(folder), sql)
        assert names


# --- what a review found: odd files, races, the metastudy's arithmetic ------------

def test_odd_values_anywhere_are_reported_not_fatal(tmp_path, reader):
    user = tmp_path / "User"
    (user / "Tasks").mkdir(parents=True)
    (user / "Tasks" / "ok.yml").write_text("name: Ok\ntype: task\ncategory: {nested: true}\nstatus: [a, b]\n")
    (user / "Tasks" / "baddate.yml").write_text("name: Bad Date\ndue_date: 2025-02-30\n")
    (user / "Tasks" / "huge.yml").write_text("name: Huge\npoints: " + "9" * 5000 + "\n")
    (user / "Tasks" / "deep.yml").write_text("name: Deep\nx: " + "[" * 3000 + "]" * 3000 + "\n")
    (user / "Tasks" / "loop.yml").write_text("name: Loop\nx: &a [*a]\n")
    bomb = "name: Bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(7))
    (user / "Tasks" / "bomb.yml").write_text(bomb)
    (user / "Tasks" / "binary.yml").write_bytes(b"name: caf\xe9\n")                # Latin-1, not UTF-8
    (user / "tasks").mkdir()
    (user / "tasks" / "ok.yml").write_text("name: Ok Again\ntype: task\n")          # same (type, slug)
    sched = user / "Schedules"
    (sched / "completions").mkdir(parents=True)
    (sched / "schedule_2025-02-30.yml").write_text("- name: Ok\n")                     # not a date
    (sched / "schedule_2025-01-01.yml").write_text("- name: {odd: 1}\n  type: [x]\n  status: {y: 2}\n  start_time: '07:00'\n")
    (sched / "completions" / "2025-01-01.yml").write_text(
        "entries:\n  Ok@07:00: {status: completed, note: {a: 1}, type: [t], quality: .nan}\n  Odd: 5\n")
    (user / "Rewards").mkdir()
    (user / "Rewards" / "points.yml").write_text(
        "ledger:\n- {date: '2025-01-01 08:00:00', delta: .nan, reason: x}\n"
        "- {date: '2025-01-01 09:00:00', delta: 3, reason: {why: 1}, source: [a]}\n")
    (user / "Commitments").mkdir()
    (user / "Commitments" / "c.yml").write_text("name: C\nrule: {times: .inf, period: fortnight}\n"
                                                "targets: [Ok]\n")
    (user / "Reviews" / "weekly").mkdir(parents=True)
    (user / "Reviews" / "weekly" / "w.yml").write_text("week: 2025-W01\nlessons: [2025-01-03, {a: 2025-01-04}]\n")
    report = sync(tmp_path)                                       # every mirror built despite all of it
    msgs = {p.path: p for p in report.problems}
    assert "a value cannot be read" in msgs["Tasks/baddate.yml"].reason
    assert "a value cannot be read" in msgs["Tasks/huge.yml"].reason
    assert str(msgs["Tasks/deep.yml"]) == "Tasks/deep.yml:2: nested more than 500 levels deep"
    assert "recursive" in msgs["Tasks/loop.yml"].reason
    assert "once its aliases are expanded" in msgs["Tasks/bomb.yml"].reason
    assert "UTF-8" in msgs["Tasks/binary.yml"].reason
    assert "already holds the task" in msgs["tasks/ok.yml"].reason
    assert "is not a date" in msgs["Schedules/schedule_2025-02-30.yml"].reason
    assert "is not one of day, week, month" in msgs["Commitments/c.yml"].reason and not msgs["Commitments/c.yml"].skipped
    assert "finite numeric delta" in msgs["Rewards/points.yml"].reason
    assert "no status" in msgs["Schedules/completions/2025-01-01.yml"].reason
    core = mirror_folder(user) / "chronos_core.db"
    assert q(core, "SELECT category, status FROM items WHERE name = 'Ok'") == [('{"nested":true}', '["a","b"]')]
    assert q(core, "SELECT note, item_type, quality FROM completions") == [('{"a":1}', '["t"]', None)]
    assert q(core, "SELECT delta, reason, source FROM points_ledger") == [(3.0, '{"why":1}', '["a"]')]
    assert report.skipped == 8          # the eight files above; the rest are warnings about values


def test_bad_tagged_values_deep_nesting_and_odd_keys_never_stop_a_sync(tmp_path, reader):
    user = tmp_path / "User"
    (user / "Tasks").mkdir(parents=True)
    files = {
        "bool.yml": ("name: B\nnotes: !!bool maybe\n", "Tasks/bool.yml:2: a value cannot be read: 'maybe' is not a valid bool"),
        "int.yml": ("name: I\nn: !!int ''\n", "Tasks/int.yml:2: a value cannot be read: '' is not a valid int"),
        "ts.yml": ("name: T\n\nwhen: !!timestamp soon\n",
                   "Tasks/ts.yml:3: a value cannot be read: 'soon' is not a valid timestamp"),
        # deep enough to overflow the C stack in PyYAML's composer if it were ever parsed
        "block.yml": ("name: D\nx:\n" + "- " * 30000 + "x\n", "Tasks/block.yml:3: nested more than 500 levels deep"),
        "flow.yml": ("name: F\nx: " + "[" * 30000 + "]" * 30000 + "\n", "Tasks/flow.yml:2: nested more than 500 levels deep"),
    }
    for name, (text, _) in files.items():
        (user / "Tasks" / name).write_text(text)
    (user / "Tasks" / "keys.yml").write_text("name: K\n1: one\n2025-01-02: a date\n? !!binary aGVsbG8=\n: bytes\n")
    (user / "Tasks" / "deep_ok.yml").write_text("name: Deep Ok\nx: " + "[" * 400 + "]" * 400 + "\n")
    report = sync(tmp_path, ("core",))
    assert sorted(str(p) for p in report.problems) == sorted(want for _, want in files.values())
    raw = dict(q(mirror_folder(user) / "chronos_core.db", "SELECT name, raw_json FROM items"))
    assert json.loads(raw["K"]) == {"name": "K", "1": "one", "2025-01-02": "a date", "b'hello'": "bytes"}
    depth, x = 0, json.loads(raw["Deep Ok"])["x"]
    while x:
        depth, x = depth + 1, x[0]
    assert depth == 399


@pytest.mark.parametrize("make", [
    lambda d: "x:\n" + "- " * d + "x\n",                                   # compact block sequences
    lambda d: "".join("  " * i + f"k{i}:\n" for i in range(d)) + "  " * d + "x\n",  # block mappings
    lambda d: "[" * d + "x" + "]" * d,                                      # flow sequences
    lambda d: '{"a":' * d + "x" + "}" * d,                                  # flow mappings, no space after ':'
    lambda d: '["a":' * (d // 2) + "x" + "]" * (d // 2),                    # single-pair mappings inside [ ]
    lambda d: "- a:\n" + "".join("  " * (i + 1) + "- a:\n" for i in range(d)) + "  " * (d + 2) + "x\n",
])
def test_nesting_depth_is_measured_exactly_around_the_limit(make):
    import yaml

    from chronoledger.sequence.layout import too_deep_line

    def nested_deeper_than(raw: bytes, limit: int) -> bool:
        return too_deep_line(raw, limit) is not None

    def depth_of(raw: bytes) -> int:             # the reference: the deepest collection in the composed nodes
        deepest, stack = 0, [(yaml.compose(raw, Loader=yaml.CSafeLoader), 0)]
        while stack:                             # iterative: documents here nest past Python's recursion limit
            n, d = stack.pop()
            if isinstance(n, yaml.ScalarNode):
                continue
            deepest = max(deepest, d + 1)
            kids = n.value if isinstance(n, yaml.SequenceNode) else [v for kv in n.value for v in kv]
            stack.extend((k, d + 1) for k in kids)
        return deepest

    for d in (3, 40, 61):
        raw = make(d).encode()
        deepest = depth_of(raw)
        for limit in (deepest - 1, deepest, deepest + 1, 2, 1000):
            assert nested_deeper_than(raw, limit) == (deepest > limit), (d, deepest, limit)
    # the direct reader counts the same levels against MAX_DEPTH
    from chronoledger.sequence import yamlfile

    for d in range(yamlfile.MAX_DEPTH - 3, yamlfile.MAX_DEPTH + 3):
        raw = make(d).encode()
        too_deep = isinstance(yamlfile._read_direct(raw, False), yamlfile._TooDeep)
        assert too_deep == (depth_of(raw) > yamlfile.MAX_DEPTH) == nested_deeper_than(raw, yamlfile.MAX_DEPTH), d


class _LookaheadLimitLoader(yaml.CSafeLoader):
    """A C parser with a nesting limit of its own, below what the document holds, that
    refuses (with wording nobody can predict) before handing over a single collection:
    as the libyaml in PyYAML 6.0.4 does while its scanner looks ahead."""

    LIMIT = 600

    def __init__(self, stream):
        super().__init__(stream)
        text = stream.decode() if isinstance(stream, bytes) else stream
        self.refuse = max(len(run) for run in re.findall(r"\[+", text) or [""]) > self.LIMIT

    def get_event(self):
        event = super().get_event()
        if self.refuse and isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            raise yaml.scanner.ScannerError("while doing something new", None, "a limit of its own",
                                            event.start_mark)
        return event


def test_our_nesting_limit_decides_whatever_the_c_parser_refuses(tmp_path, monkeypatch):
    from chronoledger.sequence import yamlfile

    monkeypatch.setattr(yamlfile, "_yamlread", None)            # every file through the loader path
    monkeypatch.setattr(yamlfile, "_BaseLoader", _LookaheadLimitLoader)
    deep = b"name: Deep\nx: " + b"[" * 3000 + b"]" * 3000 + b"\n"
    assert yamlfile.too_deep_line(deep, 500) == 2
    assert yamlfile.too_deep_line(deep, 3001) is None          # 3,001 deep with its mapping: measured, not assumed
    assert yamlfile.too_deep_line(b"a: [1\n]]\nb: " + b"[" * 700 + b"]" * 700, 500) is None   # malformed first
    assert yamlfile.too_deep_line(b"a: 1\nb: " + b"[" * 700 + b"\n", 500) == 2     # deep first, malformed later
    medium = b"x: " + b"[" * 550 + b"]" * 550
    assert yamlfile.too_deep_line(medium, 500) == 1 and yamlfile.too_deep_line(medium, 551) is None

    user = tmp_path / "User"
    (user / "Tasks").mkdir(parents=True)
    (user / "Tasks" / "deep.yml").write_bytes(deep)
    (user / "Tasks" / "bad.yml").write_text("name: Bad\nx: [a, b\n")
    (user / "Tasks" / "medium.yml").write_text("name: Medium\n\nx: " + "[" * 550 + "]" * 550 + "\n")
    report = sync(tmp_path, ("core",))
    msgs = {p.path: p for p in report.problems}
    assert str(msgs["Tasks/deep.yml"]) == "Tasks/deep.yml:2: nested more than 500 levels deep"
    assert msgs["Tasks/bad.yml"].reason.startswith("malformed YAML: ") and msgs["Tasks/bad.yml"].line == 3
    assert str(msgs["Tasks/medium.yml"]) == "Tasks/medium.yml:3: nested more than 500 levels deep"
    assert report.skipped == 3


def test_completion_names_keep_their_case_and_match_blocks_once(tmp_path):
    user = tmp_path / "User"
    (user / "Habits").mkdir(parents=True)
    (user / "Habits" / "walk.yml").write_text("name: Walk\n")
    (user / "Habits" / "read.yml").write_text("name: Read\n")
    sched = user / "Schedules"
    (sched / "completions").mkdir(parents=True)
    (sched / "schedule_2025-01-06.yml").write_text(
        "- name: Morning\n  start_time: '06:00'\n  children:\n  - {name: Read, start_time: '06:10', duration: 10}\n"
        "- name: Walk\n  start_time: '07:00'\n  duration: 30\n")
    (sched / "completions" / "2025-01-06.yml").write_text(
        "entries:\n  Walk: completed\n  Read@06:10: {status: completed, actual_start: '06:12', actual_end: '06:20'}\n")
    sync(tmp_path)
    data = mirror_folder(user)
    assert q(data / "chronos_core.db", "SELECT item_name FROM completions ORDER BY item_name") == [("Read",), ("Walk",)]
    facts = q(data / "chronos_memory.db", "SELECT name, depth, status FROM activity_facts ORDER BY name")
    assert facts == [("Morning", 0, "unlogged"), ("Read", 1, "completed"), ("Walk", 0, "completed")]
    assert q(data / "chronos_trends.db", "SELECT item_name, scheduled, completed FROM item_trends WHERE "
                                         "window_days = 7 ORDER BY item_name") == \
        [("Morning", 1, 0), ("Read", 1, 1), ("Walk", 1, 1)]


def test_clock_figures_wrap_around_midnight_and_planned_meets_actual_like_with_like():
    from chronoledger.sequence import trends_builder

    f = metastudy.Fact
    facts = [f("2025-01-01", 2, "Late", "habit", "completed", 23 * 60 + 50, 0.0, 30.0, 30.0),
             f("2025-01-02", 3, "Late", "habit", "completed", 10, 0.0, 30.0, 30.0),
             f("2025-01-03", 4, "Late", "habit", "skipped", None, None, 60.0, None)]
    st = trends_builder._group_stats(facts)
    assert st["avg_start_minute"] == pytest.approx(0.0, abs=1e-6) or st["avg_start_minute"] == pytest.approx(1440)
    assert st["start_stddev_minutes"] == pytest.approx(10.0)
    assert (st["planned_minutes"], st["actual_minutes"]) == (30.0, 30.0)     # the skipped block has no actual


def test_commitments_honour_period_spellings_start_dates_and_pauses(tmp_path):
    user = tmp_path / "User"
    (user / "Habits").mkdir(parents=True)
    (user / "Habits" / "gym.yml").write_text("name: Gym\n")
    (user / "Commitments").mkdir()
    (user / "Commitments" / "a.yml").write_text("name: Weekly Gym\nrule: {times: 1, period: Weekly}\n"
                                                "targets: [Gym]\ncreated: 2025-01-13\n")
    (user / "Commitments" / "b.yml").write_text("name: Paused Gym\nstatus: paused\nrule: {times: 1, period: week}\n"
                                                "targets: [Gym]\n")
    (user / "Commitments" / "m.yml").write_text("name: Monthly Gym\nrule: {times: 3, period: month}\ntargets: [Gym]\n")
    comp = user / "Schedules" / "completions"
    comp.mkdir(parents=True)
    for d in ("2025-01-06", "2025-01-14", "2025-01-21", "2025-02-03"):
        (comp / f"{d}.yml").write_text("entries:\n  Gym: completed\n")
    (comp / "2025-02-28.yml").write_text("entries: {}\n")
    sync(tmp_path, ("core", "events"))
    log = q(mirror_folder(user) / "chronos_events.db", "SELECT source_name, period, outcome FROM trigger_log "
                                                 "ORDER BY source_name, period")
    weekly = [(p, o) for n, p, o in log if n == "Weekly Gym"]
    assert weekly[0] == ("2025-W03", "met")                 # weeks before 13 January are not judged
    assert ("2025-W05", "violated") in weekly and len(weekly) == 6
    assert not [r for r in log if r[0] == "Paused Gym"]
    assert [(p, o) for n, p, o in log if n == "Monthly Gym"] == [("2025-01", "met"), ("2025-02", "violated")]


@pytest.mark.parametrize("name", ["C#notes", "what?", "100%25", "a b"])
def test_folders_with_uri_characters(tmp_path, name):
    root = tmp_path / name
    user = sample.write_user_folder(root, items=30, days=5)
    sync(root)
    assert run_query(mirror_folder(user), "SELECT COUNT(*) FROM items")[1][0][0] >= 25
    assert status(root)["databases"]["core"]["yaml_changed_since"] is False


def test_status_sees_a_moved_file(folder):
    sync(folder.parent)
    f = next((folder / "Tasks").glob("*.yml"))
    f.rename(folder / "Goals" / f.name)
    assert status(folder.parent)["databases"]["core"]["yaml_changed_since"] is True
    (folder / "Tasks" / "dangling.yml").symlink_to(folder / "nowhere.yml")
    assert status(folder.parent)["databases"]["core"]["exists"]


def test_a_command_recorded_during_a_sync_waits_and_is_kept(folder):
    import threading

    from chronoledger.sequence.sync import data_folder, record_command, sync_lock

    sync(folder.parent)
    data = data_folder(folder)
    done = threading.Event()
    with sync_lock(data):
        t = threading.Thread(target=lambda: (record_command(folder, "status", [], 0.0, "ok"), done.set()))
        t.start()
        assert not done.wait(0.3)                 # it waits for the lock
    t.join(10)
    sync(folder.parent)
    assert q(data / "chronos_events.db", "SELECT command FROM command_runs") == [("status",)]


def test_an_unreadable_events_database_is_set_aside(folder):
    sync(folder.parent)
    ev = mirror_folder(folder) / "chronos_events.db"
    ev.write_bytes(b"garbage" * 1000)
    report = sync(folder.parent)
    assert any("set aside" in p.reason for p in report.warnings)
    assert list((mirror_folder(folder)).glob("chronos_events.db.unreadable-*"))
    assert q(ev, "SELECT COUNT(*) FROM events")[0][0] > 0


def test_the_listener_survives_bad_settings_and_failed_cycles(folder, monkeypatch):
    (folder / "Settings" / "Sequence.yml").write_text("sync_time: 'teatime'\n")
    from chronoledger.sequence import listener as L

    monkeypatch.setattr(L, "sync", lambda user: 1 / 0)
    clock = [datetime(2026, 1, 1, 23, 59)]

    def sleep(s):
        clock[0] += __import__("datetime").timedelta(seconds=s)

    logs = []
    L.listen(folder.parent, log=logs.append, sleep=sleep, now=lambda: clock[0], cycles=2)
    assert "syncing at 00:00 until it is fixed" in logs[0]
    assert sum("sync failed unexpectedly (ZeroDivisionError" in m for m in logs) == 2


def test_commands_are_logged_even_after_future_dated_logs(tmp_path):
    from chronoledger.chronicle import Chronicle
    from chronoledger.sequence.sync import record_command

    user = tmp_path / "User"
    (user / "Schedules" / "completions").mkdir(parents=True)
    (user / "Schedules" / "completions" / "2099-01-01.yml").write_text(
        "entries:\n  Plan@07:00: {status: completed, logged_at: '2099-01-01 07:30:00'}\n")
    sync(tmp_path)
    record_command(user, "status", ["status"], 0.1, "ok")
    with Chronicle.open(mirror_folder(user) / "chronos_events.cmeta") as ch:
        events = list(ch)
        assert ch.last_timestamp == events[-1].timestamp
    assert events[-1].event_type == "command" and events[-1].payload["command"] == "status"
    assert events[-1].timestamp == events[-2].timestamp            # placed at the log's last time
    assert events[-1].payload["recorded_at"].startswith("20")


def test_review_events_survive_the_next_sync(folder):
    from chronoledger.sequence.sync import record_review

    sync(folder, ("core", "events", "memory"))
    record_review(folder, "weekly", date(2025, 3, 2))
    sync(folder)
    rows = q(mirror_folder(folder) / "chronos_events.db", "SELECT payload_json FROM events WHERE event_type = 'review' "
             "AND json_extract(payload_json, '$.source') = 'sequence review'")
    assert len(rows) == 1 and json.loads(rows[0][0])["kind"] == "weekly"        # kept once, not copied again
    sync(folder)
    assert len(q(mirror_folder(folder) / "chronos_events.db", "SELECT 1 FROM events WHERE event_type = 'review' AND "
                 "json_extract(payload_json, '$.source') = 'sequence review'")) == 1


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "1e400", "inf"])
def test_durations_that_are_not_finite_say_nothing(value):
    assert parse_duration(value) is None


def test_a_file_where_a_folder_belongs_is_reported_and_the_rest_synced(tmp_path):
    user = sample.write_user_folder(tmp_path, items=20, days=5, seed=1)
    shutil.rmtree(user / "schedules")
    (user / "schedules").write_text("not a folder")
    report = sync(tmp_path)
    assert report.items > 0
    assert [str(p) for p in report.problems if str(p).startswith("schedules")] == \
        ["schedules: cannot be read: Not a directory; what it holds is skipped"]


def test_data_takes_one_statement_at_a_time(folder):
    sync(folder)
    with pytest.raises(QueryError, match="one statement at a time"):
        run_query(mirror_folder(folder), "SELECT name FROM items LIMIT 1; SELECT count(*) AS n, 2 AS m")


def test_the_metastudy_keeps_databases_yml_up_to_date(folder):
    import yaml

    sync(folder)
    counts = metastudy.build_trends(mirror_folder(folder), as_of=date(2025, 1, 20))
    reg = yaml.safe_load((mirror_folder(folder) / "databases.yml").read_text())
    assert reg["databases"]["trends"]["counts"] == counts and reg["databases"]["trends"]["status"] == "ok"


def _non_utf8_name(folder: Path, name: bytes, text: str = "name: Cafe\n", is_dir: bool = False) -> None:
    """A file (or a folder holding one item) named with bytes that are not UTF-8, or a skip where the
    file system refuses such names (macOS)."""
    path = os.path.join(os.fsencode(folder), name)
    try:
        if is_dir:
            os.mkdir(path)
            path = os.path.join(path, b"a.yml")
        with open(path, "wb") as fh:
            fh.write(text.encode())
    except OSError as exc:
        pytest.skip(f"this file system refuses names that are not UTF-8: {exc}")


def test_a_file_name_that_is_not_utf8_is_skipped_and_status_still_works(folder):
    _non_utf8_name(folder / "Tasks", b"caf\xe9.yml")
    _non_utf8_name(folder, b"Caf\xe9s", is_dir=True)
    report = sync(folder)
    skipped = {str(p) for p in report.problems if p.skipped}
    assert skipped == {"Tasks/caf\\xe9.yml: the file name is not UTF-8; rename the file to read it",
                       "Caf\\xe9s: the folder name is not UTF-8; what it holds is skipped (rename it to read it)"}
    assert report.skipped == 2
    assert q(mirror_folder(folder) / "chronos_core.db", "SELECT COUNT(*) FROM items WHERE name = 'Cafe'") == [(0,)]
    st = status(folder)
    assert not st["databases"]["core"]["yaml_changed_since"]
    (folder / "Tasks" / "cafe.yml").write_text("name: Cafe\n")
    os.unlink(os.path.join(os.fsencode(folder / "Tasks"), b"caf\xe9.yml"))
    assert status(folder)["databases"]["core"]["yaml_changed_since"]      # a rename shows in the fingerprint
    assert sync(folder).skipped == 1


def test_names_that_yaml_reads_as_numbers_or_dates_are_names_as_written(tmp_path, reader):
    tasks = tmp_path / "User" / "Tasks"
    tasks.mkdir(parents=True)
    written = {"year": "1984", "bond": "007", "version": "3.10", "day": "2025-01-01", "ratio": "0.5",
               "text": "'1999'"}
    for slug, name in written.items():
        (tasks / f"{slug}.yml").write_text(f"type: task\nname: {name}\n")
    (tasks / "yes.yml").write_text("type: task\nName: yes\n")
    (tasks / "off.yml").write_text("name: Off   # so is Off\n")
    (tasks / "list.yml").write_text("name: [a, b]\n")
    (tasks / "none.yml").write_text("name:\n")
    report = sync(tmp_path)
    core = mirror_folder(tmp_path / "User") / "chronos_core.db"
    assert {Path(p).stem: n for p, n in q(core, "SELECT path, name FROM items")} == {
        "year": "1984", "bond": "007", "version": "3.10", "day": "2025-01-01", "ratio": "0.5", "text": "1999"}
    assert sorted(str(p) for p in report.problems) == [
        "Tasks/list.yml:1: the name is a list, not text",
        "Tasks/none.yml:1: the item has no name",
        'Tasks/off.yml:1: the name Off reads as the boolean false (so do yes, no, on, off, true and false); '
        'quote it: name: "Off"',
        'Tasks/yes.yml:2: the name yes reads as the boolean true (so do yes, no, on, off, true and false); '
        'quote it: name: "yes"']


def test_a_file_that_is_not_utf8_text_says_so_with_line_and_byte(tmp_path, reader):
    tasks = tmp_path / "User" / "Tasks"
    tasks.mkdir(parents=True)
    (tasks / "latin1.yml").write_bytes(b"type: task\n\nname: caf\xe9\n")
    (tasks / "bell.yml").write_bytes(b"name: ring\x07\n")
    (tasks / "utf16.yml").write_bytes("name: Sixteen\n".encode("utf-16"))       # with its byte order mark: read
    report = sync(tmp_path)
    assert sorted(str(p) for p in report.problems) == [
        "Tasks/bell.yml:1: character U+0007 at byte 10: YAML allows no control characters",
        "Tasks/latin1.yml:3: not UTF-8 text at byte 21"]
    assert q(mirror_folder(tmp_path / "User") / "chronos_core.db", "SELECT name FROM items") == [("Sixteen",)]


FOREVER = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "


def test_data_stops_a_query_past_its_time_limit_and_takes_a_row_limit(folder):
    import time as _time

    sync(folder.parent, ("core",))
    data = mirror_folder(folder)
    t0 = _time.monotonic()
    with pytest.raises(QueryError, match=r"stopped: the query ran longer than its time limit of 0\.3 s"):
        run_query(data, FOREVER + "SELECT COUNT(*) FROM c", timeout=0.3)                 # never yields a row
    with pytest.raises(QueryError, match="time limit of 0.2 s"):
        run_query(data, FOREVER + "SELECT x FROM c", timeout=0.2)                        # rows without end
    assert _time.monotonic() - t0 < 5
    assert run_query(data, FOREVER + "SELECT x FROM c", limit=3) == (["x"], [(1,), (2,), (3,)])
    assert run_query(data, FOREVER + "SELECT x FROM c", limit=0) == (["x"], [])
    assert run_query(data, "SELECT COUNT(*) FROM items", timeout=30)[1][0][0] > 0
    for bad in ({"limit": -1}, {"limit": 2.5}, {"timeout": 0}, {"timeout": -1}, {"timeout": "5"}):
        with pytest.raises(QueryError, match="limit must|timeout must"):
            run_query(data, "SELECT 1", **bad)


def test_schedules_and_activity_facts_agree_block_for_block(folder):
    """Both come from one walk of the schedule blocks (Builder.block_rows)."""
    sync(folder.parent, ("core", "memory"))
    data = mirror_folder(folder)
    cols = "date, block, depth, name, type, start_time, end_time, planned_minutes, actual_start, actual_end"
    sched = q(data / "chronos_core.db", f"SELECT {cols}, COALESCE(completion_status, 'unlogged') FROM schedules "
                                        f"ORDER BY date, block")
    facts = q(data / "chronos_memory.db", "SELECT date, block, depth, name, type, scheduled_start, scheduled_end, "
                                          "planned_minutes, actual_start, actual_end, status FROM activity_facts "
                                          "WHERE block IS NOT NULL ORDER BY date, block")
    assert len(sched) > 100 and sched == facts


@pytest.mark.parametrize("first", [
    "",                                                                  # the package's names, nothing else yet
    "import chronoledger.sequence.sync as m; assert m.hhmm('6:30') == '06:30'",        # the submodule first
    "from chronoledger.sequence import sync as m; assert m.SyncReport.__name__ == 'SyncReport'",
])
def test_the_package_gives_the_functions_and_sync_stays_the_submodule(folder, first):
    """cl.sequence.sync(...) as DESIGN.md shows it, in a fresh interpreter, whatever was imported first."""
    code = textwrap.dedent(f"""
        import sys, types
        {first}
        import chronoledger as cl
        from chronoledger.sequence import listener, metastudy, query, sync as module
        seq = cl.sequence
        assert isinstance(seq.sync, types.ModuleType) and seq.sync is sys.modules["chronoledger.sequence.sync"]
        assert seq.sync is module and module.hhmm("6:30") == "06:30"
        assert (seq.status, seq.plan) == (module.status, module.plan)
        assert (seq.build_trends, seq.run_query, seq.listen) == (metastudy.build_trends, query.run_query,
                                                                 listener.listen)
        report = seq.sync(sys.argv[1], ("core",))
        assert isinstance(report, module.SyncReport) and report.items > 100
        assert seq.status(sys.argv[1])["databases"]["core"]["yaml_changed_since"] is False
        assert seq.run_query(report.data, "SELECT COUNT(*) FROM items")[1] == [(report.items,)]
        assert set(seq.__all__) <= set(dir(seq))
        try:
            seq.nothing
        except AttributeError as exc:
            assert "chronoledger.sequence" in str(exc)
        else:
            raise AssertionError("an unknown name must be an AttributeError")
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_json_in_the_mirrors_is_compact_sorted_and_keeps_every_value_it_can():
    """to_json: compact, keys sorted, non-ASCII kept, dates and odd types as
    their text, keys JSON cannot hold as text, ints past 64 bits exact, NaN
    and the infinities (which JSON cannot hold) as null."""
    from datetime import date, datetime
    from chronoledger.sequence.values import to_json
    assert to_json({"b": 1, "a": "é", "c": [1.5, None, True]}) == '{"a":"é","b":1,"c":[1.5,null,true]}'
    assert to_json({"when": datetime(2026, 1, 2, 3, 4, 5), "day": date(2026, 1, 2)}) == \
        '{"day":"2026-01-02","when":"2026-01-02 03:04:05"}'
    assert to_json({1: "one", "x": {date(2025, 1, 2): b"hi"}}) == '{"1":"one","x":{"2025-01-02":"b\'hi\'"}}'
    assert to_json({"big": 2**70, "neg": -(2**65), "nan": float("nan")}) == \
        f'{{"big":{2**70},"nan":null,"neg":{-(2**65)}}}'
    assert to_json([float("inf"), float("-inf"), 0.1]) == "[null,null,0.1]"
    import numpy as np
    assert to_json({"f": np.float64(1.5), "i": np.int64(3), "s": {1}}) == '{"f":1.5,"i":3,"s":"{1}"}'


def test_each_mirror_schema_splits_into_its_tables_and_its_indexes():
    """Builders create tables, load rows, then index: the split loses no statement."""
    from chronoledger.sequence import schema
    for name, ddl in schema.DDL.items():
        t, i = schema.tables(ddl), schema.indexes(ddl)
        got = [s.strip() for s in (t + i).split(";") if s.strip()]
        assert sorted(got) == sorted(s.strip() for s in ddl.split(";") if s.strip()), name
        assert "CREATE INDEX" not in t.upper() and all(s.upper().startswith("CREATE") for s in got)
    assert "idx_events_ts" in schema.indexes(schema.EVENTS) and "idx_events_ts" not in schema.tables(schema.EVENTS)


def test_trigger_details_are_the_json_of_their_detail_whichever_way_they_were_written(tmp_path):
    """A commitment's period details are written by hand on the common path
    and by to_json when a manual status is set: the same text either way."""
    from chronoledger.sequence.sync import Builder
    from chronoledger.sequence.values import to_json
    user = sample.write_user_folder(tmp_path / "u", 60, 21)
    triggers = Builder(read_user_folder(user)).records.triggers()
    assert triggers
    for t in triggers:
        assert t["detail_json"] == to_json(t["detail"]), t
        assert t["actions_json"] == to_json(t["actions"]), t
