"""ToM's v1 databases read as they are (issue 19, part 2): a file made from
the plain v1 DDL and written the way ToM's RuntimeMemoryStore writes
(better-sqlite3, a rollback journal, ``new Date().toISOString()`` times with
milliseconds and a ``Z``, sessions ended ``completed`` or ``failed``,
proposals inserted at any status) is read by every read command without
changing a byte or leaving a -wal/-shm beside it; only a write adopts it."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from chronoledger import sqlite as db
from chronoledger.cli import cli
from chronoledger.errors import ChronoledgerError
from chronoledger.runtime import RuntimeMemoryStore
from chronoledger.runtime.enforcement import spec_ddl

from _cli import invoke


def tom_database(path):
    """A database as ToM's bootstrap() and store methods leave it (upstream:
    RobbyMo81/ToM src/integrations/runtimeMemoryStore.ts)."""
    con = sqlite3.connect(path)
    con.executescript("PRAGMA foreign_keys = ON;\n" + spec_ddl())
    con.executescript("""
      INSERT INTO sessions VALUES ('6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01', 'tom', 'cli', '2026-02-18T14:52:59.123Z',
        '2026-02-18T14:55:01.456Z', 'completed', '{}');
      INSERT INTO sessions VALUES ('6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a02', 'tom', 'api', '2026-02-18T15:00:00.000Z',
        '2026-02-18T15:00:05.000Z', 'failed', '{"reason":"timeout"}');
      INSERT INTO conversation_turns VALUES ('t1', '6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01', 0, 'user', 'What failed?',
        NULL, '2026-02-18T14:53:00.001Z', '{}');
      INSERT INTO conversation_turns VALUES ('t2', '6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01', 1, 'assistant',
        'Two sync runs.', 12, '2026-02-18T14:53:01.999Z', '{}');
      INSERT INTO workflow_runs VALUES ('r1', 'nightly-sync', 'cron', 'oxide', 'succeeded', '2026-02-18T02:00:00.000Z',
        '2026-02-18T02:04:00.500Z', '{"proposalId":"p1"}');
      INSERT INTO workflow_steps VALUES ('st1', 'r1', 0, 'scan', 'succeeded', '2026-02-18T02:00:00.100Z',
        '2026-02-18T02:01:00.000Z', '{}');
      INSERT INTO task_events VALUES ('e1', 'r1', 'st1', 'warn', 'medium', 'file locked', '{"path":"a.yml"}',
        '2026-02-18T02:00:30.250Z');
      INSERT INTO skills_learned VALUES ('s1', 'retry.locked_file', 'Retry when locked', 'conversation', NULL, 0.8,
        '2026-02-18T03:00:00.000Z', 'active', '{}');
      INSERT INTO skill_to_logic_proposals VALUES ('p1', 's1', 'oxide', 'code_patch', '{"retry":3}', NULL, 'critical',
        'promoted', '2026-02-18T03:00:01.000Z', '2026-02-18T03:00:02.000Z');
      INSERT INTO behavior_profiles VALUES ('b1', 'tom', 1, '{"escalate_above":"high"}', NULL, NULL,
        '2026-02-01T00:00:00.000Z', NULL, '2026-02-01T00:00:00.000Z', 'ops');
    """)
    con.commit()
    con.close()
    return path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args):
    return invoke(cli, [str(a) for a in args])


def test_every_read_command_reads_a_plain_v1_file_as_it_is(tmp_path):
    p = tom_database(tmp_path / "tom_runtime.sqlite")
    before = sha(p)
    checks = [
        (["runtime", "sessions", p, "--json"], lambda out: [s["status"] for s in json.loads(out)["sessions"]] ==
         ["failed", "completed"]),
        (["runtime", "replay", p, "6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01"], lambda out: "[1] assistant: Two sync runs."
         in out),
        (["runtime", "workflow", p, "r1"], lambda out: "event 2026-02-18T02:00:30.250Z warn/medium: file locked" in out),
        (["runtime", "lineage", p, "--latest"], lambda out: "NOT BACKED: status promoted lacks a passing validation"
         in out),
        (["runtime", "profile", p, "tom", "--as-of", "2026-02-10T00:00:00Z"], lambda out: "v1" in out),
        (["runtime", "export", p], lambda out: len(out.splitlines()) == 10),
    ]
    for args, ok in checks:
        r = run(*args)
        assert r.exit_code == 0, (args, r.output)
        assert ok(r.stdout), (args, r.stdout)
        assert sha(p) == before, args
        assert sorted(x.name for x in tmp_path.iterdir()) == ["tom_runtime.sqlite"], args


def test_a_reader_refuses_to_write_and_a_writer_adopts_keeping_what_tom_wrote(tmp_path):
    p = tom_database(tmp_path / "tom_runtime.sqlite")
    before = sha(p)
    with RuntimeMemoryStore(p, readonly=True) as s:
        assert s.schema_version == 0
        assert [t["turn_index"] for t in s.session_replay("6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01")["turns"]] == [0, 1]
        with pytest.raises(ChronoledgerError, match="opened read-only"):
            s.start_session("tom")
    assert sha(p) == before
    with RuntimeMemoryStore(p) as s:                        # a write adopts it
        assert s.schema_version == len(db.migrations("chronoledger.runtime"))
        sess = s.start_session("tom", "cli")
        s.append_turn(sess["id"], "user", "hello")
        assert s.end_session(sess["id"], "completed")["status"] == "completed"   # ToM's words are valid
        other = s.start_session("tom")
        assert s.end_session(other["id"], "failed")["status"] == "failed"
        with pytest.raises(ChronoledgerError, match="completed"):
            s.append_turn(sess["id"], "user", "too late")
        # ToM's promoted proposal is kept as it is, and said to be unbacked
        lin = s.proposal_lineage("p1")
        assert lin["proposal"]["status"] == "promoted" and lin["status_lacks"]
        assert s.session_replay("6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a02")["metadata_json"] == {"reason": "timeout"}


def test_reading_our_own_wal_file_leaves_nothing_beside_it(tmp_path):
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as s:
        s.start_session("tom")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["rt.sqlite"]
    before = sha(p)
    r = run("runtime", "sessions", p, "--json")
    assert r.exit_code == 0, r.output
    assert sorted(x.name for x in tmp_path.iterdir()) == ["rt.sqlite"] and sha(p) == before


def test_a_file_without_runtime_tables_is_refused_by_a_reader_untouched(tmp_path):
    p = tmp_path / "empty.sqlite"
    sqlite3.connect(p).close()
    p.write_bytes(b"")
    r = run("runtime", "sessions", p)
    assert r.exit_code == 3 and "runtime init" in r.output


# --- the store's edges: two SQLite libraries, odd paths, huge values, names -------------------------------

def test_python_sqlite3_removing_the_wal_under_the_store_is_caught_and_nothing_is_lost(tmp_path):
    """Python's sqlite3 is another copy of SQLite: closing its connection it
    cannot see the store's POSIX locks (they are the process's), checkpoints
    and deletes the WAL the store still writes.  The store notices at its
    next commit, copies what it committed into the file and says so."""
    from chronoledger.errors import WalLostError
    p = tmp_path / "rt.sqlite"
    store = RuntimeMemoryStore(p)
    first = store.start_session("tom")
    con = sqlite3.connect(p)
    assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    con.close()                                            # removes the store's WAL
    # the next call notices before it writes: nothing goes into the deleted WAL
    with pytest.raises(WalLostError, match=r"its WAL was removed while this store had it open .* Python's sqlite3"):
        store.start_session("tom")
    with pytest.raises(ChronoledgerError, match="the store is closed"):
        store.start_session("tom")
    con = sqlite3.connect(p)                               # what it committed is in the database file
    assert con.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1
    con.close()
    with RuntimeMemoryStore(p) as s:
        assert s.session_replay(first["id"])["actor"] == "tom"
        assert len(s.list_sessions()["sessions"]) == 1


def test_a_commit_into_a_removed_wal_is_rescued_into_the_file(tmp_path):
    """Between the check a call makes first and its commit, the WAL can still
    go: the commit then notices, and copies what it committed into the file."""
    from chronoledger.errors import WalLostError
    p = tmp_path / "rt.sqlite"
    store = RuntimeMemoryStore(p)
    store.start_session("tom")
    store._wal_guard = None                                # as if the WAL went after the call's first check
    con = sqlite3.connect(p)
    con.execute("SELECT count(*) FROM sessions").fetchone()
    con.close()
    with pytest.raises(WalLostError, match="what it committed has been copied into the database file"):
        store.start_session("ana")
    con = sqlite3.connect(p)
    assert sorted(r[0] for r in con.execute("SELECT actor FROM sessions")) == ["ana", "tom"]
    con.close()


def test_a_second_apsw_connection_in_the_process_is_safe(tmp_path):
    import apsw
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as store:
        for n in range(1, 4):
            store.start_session("tom")
            con = apsw.Connection(str(p))
            assert con.execute("SELECT count(*) FROM sessions").fetchall()[0][0] == n
            con.close()


def test_a_database_path_that_is_not_utf8_works_from_python_and_the_shell(tmp_path):
    import os
    folder = tmp_path / os.fsdecode(b"caf\xe9")
    folder.mkdir()
    p = folder / os.fsdecode(b"r\xfft.sqlite")
    with RuntimeMemoryStore(p) as s:
        sid = s.start_session("tom")["id"]
    with RuntimeMemoryStore(p, readonly=True) as s:
        assert s.session_replay(sid)["actor"] == "tom"
    r = run("runtime", "sessions", p, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sessions"][0]["id"] == sid
    assert os.listdir(os.fsencode(folder)) == [b"r\xfft.sqlite"]


def test_a_value_too_large_for_sqlite_is_a_validation_error_naming_the_field(tmp_path, monkeypatch):
    import apsw
    from chronoledger.errors import ValidationError
    from chronoledger.runtime import values
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        sid = s.start_session("tom")["id"]
        monkeypatch.setattr(values, "MAX_BYTES", 1000)     # SQLite's limit is 10^9 bytes: checked the same way
        with pytest.raises(ValidationError, match=r"turns\[0\]\.content: 1,001 bytes of UTF-8, more than SQLite"):
            s.append_turn(sid, "user", "x" * 1001)
        with pytest.raises(ValidationError, match=r"turns\[1\]\.content: 1,002 bytes"):
            s.append_turns(sid, [{"role": "user", "content": "ok"}, {"role": "user", "content": "é" * 501}])
        monkeypatch.undo()
        s._conn.limit(apsw.SQLITE_LIMIT_LENGTH, 5000)       # what only SQLite finds: a JSON text made of a dict
        with pytest.raises(ValidationError, match="append_turns: a value is larger than SQLite stores"):
            s.append_turn(sid, "user", "fine", metadata={"blob": "y" * 6000})
        assert s.session_replay(sid)["turns"] == []


def test_a_session_listing_counts_turns_and_a_replay_lists_them(tmp_path):
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        sid = s.start_session("tom")["id"]
        s.append_turns(sid, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
        listed = s.list_sessions()["sessions"][0]
        assert listed["turn_count"] == 2 and "turns" not in listed
        assert [t["content"] for t in s.session_replay(sid)["turns"]] == ["a", "b"]


def test_a_reader_whose_wal_python_sqlite3_removed_says_so_instead_of_reading_stale_rows(tmp_path):
    import subprocess
    import sys
    from chronoledger.errors import WalLostError
    p = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(p) as w:
        w.start_session("tom")
    writer = RuntimeMemoryStore(p)              # another store keeps the file in WAL mode, as a live agent would
    reader = RuntimeMemoryStore(p, readonly=True)
    assert len(reader.list_sessions()["sessions"]) == 1
    con = sqlite3.connect(p)
    con.execute("SELECT count(*) FROM sessions").fetchone()
    con.close()                                 # another copy of SQLite: it removes the WAL both stores use
    subprocess.run([sys.executable, "-c", "import sys; from chronoledger.runtime import RuntimeMemoryStore as S; "
                    "s = S(sys.argv[1]); s.start_session('other'); s.close()", str(p)], check=True)
    with pytest.raises(WalLostError, match="what the store reads could be stale"):
        reader.list_sessions()
    with pytest.raises(WalLostError):
        writer.start_session("tom")
    writer.close()
    reader.close()
    with RuntimeMemoryStore(p, readonly=True) as fresh:
        assert len(fresh.list_sessions()["sessions"]) == 2


def test_odd_values_another_program_stored_are_read_or_named_never_a_traceback(tmp_path):
    p = tom_database(tmp_path / "tom_runtime.sqlite")
    con = sqlite3.connect(p)
    con.execute("UPDATE conversation_turns SET token_count = 'lots' WHERE id = 't1'")
    con.execute("UPDATE conversation_turns SET content = x'00ff' WHERE id = 't2'")
    con.commit()
    con.close()
    before = sha(p)
    r = run("runtime", "export", p, "--table", "conversation_turns", "--format", "parquet", "-o", tmp_path / "t.pq")
    assert r.exit_code == 3 and "column token_count: 'lots' is not an integer" in r.stderr
    assert not (tmp_path / "t.pq").exists()
    r = run("runtime", "export", p)                       # the dump: a BLOB is written in hex
    assert r.exit_code == 0, r.output
    turns = [json.loads(x)["row"] for x in r.stdout.splitlines() if json.loads(x)["table"] == "conversation_turns"]
    assert [t["content"] for t in turns] == ["What failed?", "00ff"] and turns[0]["token_count"] == "lots"
    r = run("runtime", "export", p, "--table", "conversation_turns", "--format", "csv")
    assert r.exit_code == 0 and "lots" in r.stdout
    assert sha(p) == before


def test_small_misuses_are_named(tmp_path):
    import io
    from chronoledger.errors import MissingFileError, ValidationError
    with pytest.raises(MissingFileError, match="no such database"):
        RuntimeMemoryStore(tmp_path / "missing.sqlite", readonly=True)
    with RuntimeMemoryStore(tmp_path / "rt.sqlite") as s:
        with pytest.raises(ValidationError, match="cursor: expected the text of a next_cursor, got int"):
            s.list_sessions(cursor=5)
        with pytest.raises(ValidationError, match="out: expected a text stream to write to, got str"):
            s.export_jsonl("/tmp/dump.jsonl")
        s.start_session("tom")
        assert [t for t, _ in s.iter_rows("sessions")] == ["sessions"]
        buf = io.StringIO()
        assert s.export_jsonl(buf, ["sessions"]) == 1


def test_ending_a_session_another_program_ended_without_a_time_says_how_it_ended(tmp_path):
    from chronoledger.errors import ValidationError
    p = tom_database(tmp_path / "tom_runtime.sqlite")
    con = sqlite3.connect(p)
    con.execute("UPDATE sessions SET ended_at = NULL WHERE status = 'failed'")
    con.commit()
    con.close()
    with RuntimeMemoryStore(p) as s:
        with pytest.raises(ValidationError, match=r"already ended \(failed\)$"):
            s.end_session("6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a02")


def test_a_write_command_on_a_file_not_adopted_yet_refuses_and_leaves_it_as_it_was(tmp_path):
    p = tom_database(tmp_path / "tom_runtime.sqlite")
    before = sha(p)
    for args in (["end-session", p, "6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01"], ["index", p],
                 ["approve", p, "p1", "--approver", "alice", "--type", "human"]):
        r = run("runtime", *args)
        assert r.exit_code == 3 and "adopt it first with `chronoledger runtime init" in r.stderr, (args, r.output)
        assert sha(p) == before and sorted(x.name for x in tmp_path.iterdir()) == ["tom_runtime.sqlite"], args
    assert run("runtime", "init", p).exit_code == 0
    r = run("runtime", "end-session", p, "6f1c0c4e-1c5e-4c56-9a35-0d8b1d6f7a01")
    assert r.exit_code == 2 and "already ended (completed" in r.stderr
