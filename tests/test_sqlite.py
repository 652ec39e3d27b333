"""chronoledger.sqlite: how every store opens SQLite, migrates and writes."""

import os
import threading

import apsw
import pytest

from chronoledger import sqlite as db
from chronoledger.errors import SchemaError


def test_connect_sets_wal_busy_timeout_and_foreign_keys(tmp_path):
    conn = db.connect(tmp_path / "a.sqlite", synchronous="full")
    assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchall()[0][0] == 1
    assert conn.execute("PRAGMA synchronous").fetchall()[0][0] == 2
    with pytest.raises(ValueError, match="synchronous must be one of"):
        db.connect(tmp_path / "b.sqlite", synchronous="fast")
    with pytest.raises(FileNotFoundError, match="no such database"):
        db.connect(tmp_path / "missing.sqlite", readonly=True)


def test_write_transaction_rolls_back_on_error(tmp_path):
    conn = db.connect(tmp_path / "a.sqlite")
    conn.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(RuntimeError):
        with db.write_transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM t").fetchall() == [(0,)]
    assert conn.getautocommit()


def test_a_writer_held_past_the_timeout_is_a_clear_error(tmp_path):
    path = tmp_path / "a.sqlite"
    holder = db.connect(path)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = db.connect(path, busy_timeout_ms=50)
    with pytest.raises(db.DatabaseBusyError, match="busy timeout"):
        with db.write_transaction(waiter, "test write"):
            pass
    holder.execute("COMMIT")
    with db.write_transaction(waiter):          # and it works once the lock is free
        waiter.execute("INSERT INTO t VALUES (1)")


def test_writers_wait_for_each_other_instead_of_failing(tmp_path):
    path = tmp_path / "a.sqlite"
    db.connect(path).execute("CREATE TABLE t (n INTEGER)")

    def bump(k):
        conn = db.connect(path)
        for _ in range(50):
            with db.write_transaction(conn):
                n = conn.execute("SELECT COUNT(*) FROM t").fetchall()[0][0]
                conn.execute("INSERT INTO t VALUES (?)", (n,))

    threads = [threading.Thread(target=bump, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [r[0] for r in db.connect(path).execute("SELECT n FROM t ORDER BY n")]
    assert got == list(range(200))             # each read-then-write saw every earlier one


def test_migrations_are_read_from_the_package_in_order(tmp_path, monkeypatch):
    steps = db.migrations("chronoledger.runtime")
    assert [m.version for m in steps] == list(range(1, len(steps) + 1))
    monkeypatch.chdir(tmp_path)                 # the working directory plays no part
    assert db.migrations("chronoledger.runtime") == steps


def test_migrate_applies_each_once_and_refuses_newer(tmp_path):
    conn = db.connect(tmp_path / "a.sqlite")
    steps = [db.Migration(1, "one", "CREATE TABLE a (x)"), db.Migration(2, "two", "CREATE TABLE b (x)")]
    assert db.migrate(conn, steps, "a") == [1, 2]
    assert db.migrate(conn, steps, "a") == []
    assert db.user_version(conn) == 2
    bad = steps + [db.Migration(3, "three", "CREATE TABLE c (x); CREATE TABLE a (x)")]
    with pytest.raises(SchemaError, match="migration 0003_three failed"):
        db.migrate(conn, bad, "a")
    assert db.user_version(conn) == 2          # the failed one left nothing behind
    assert "c" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    with pytest.raises(SchemaError, match="newer than this chronoledger knows"):
        db.migrate(conn, steps[:1], "a")


def test_identifiers_are_checked_before_quoting():
    assert db.quote_identifier("memory_documents") == '"memory_documents"'
    for bad in ("1abc", "a b", 'x"; DROP TABLE t; --', ""):
        with pytest.raises(SchemaError, match="not a valid identifier"):
            db.quote_identifier(bad)


def test_background_checkpointer_keeps_the_wal_bounded(tmp_path):
    path = tmp_path / "a.sqlite"
    conn = db.connect(path)
    conn.execute("CREATE TABLE t (x BLOB)")
    ck = db.BackgroundCheckpointer(conn, path, pages=50, limit=400)
    for i in range(300):
        with db.write_transaction(conn):
            conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(500),) for _ in range(20)])
        ck.after_commit()
    ck.close()
    page = conn.execute("PRAGMA page_size").fetchall()[0][0]
    assert os.path.getsize(f"{path}-wal") <= (400 + 100) * (page + 24) + 32
    assert conn.execute("SELECT COUNT(*) FROM t").fetchall() == [(6000,)]
    conn.close()
    check = apsw.Connection(str(path))          # another connection sees it all
    assert check.execute("SELECT COUNT(*) FROM t").fetchall() == [(6000,)]


def test_named_damage_names_the_file_for_damage_and_for_text_that_is_not_utf8(tmp_path):
    from chronoledger.errors import CorruptDataError

    conn = db.connect(tmp_path / "x.db")
    with pytest.raises(CorruptDataError, match=r"x\.db: a stored text is not valid UTF-8"):
        with db.named_damage(tmp_path / "x.db"):
            conn.execute("SELECT CAST(x'c5ff' AS TEXT)").fetchall()
    with pytest.raises(CorruptDataError, match=r"x\.db: the database is damaged"):
        with db.named_damage(tmp_path / "x.db"):
            raise apsw.CorruptError("database disk image is malformed")
    with pytest.raises(apsw.ConstraintError):                   # other errors pass through as they are
        with db.named_damage(tmp_path / "x.db"):
            raise apsw.ConstraintError("UNIQUE constraint failed")
    conn.close()


def test_connect_names_a_file_whose_schema_is_damaged(tmp_path):
    from chronoledger.errors import CorruptDataError

    conn = db.connect(tmp_path / "x.db", journal="delete")
    conn.execute("CREATE TABLE t (a TEXT); CREATE INDEX ix ON t (a)")
    conn.close()
    raw = bytearray((tmp_path / "x.db").read_bytes())
    at = raw.index(b"CREATE INDEX ix")
    raw[at:at + 6] = b"CRXATE"                                  # the schema's own text, damaged
    (tmp_path / "x.db").write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError, match=r"x\.db: the database is damaged"):
        db.connect(tmp_path / "x.db")
