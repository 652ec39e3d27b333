"""chronoledger.sqlite: how every store opens SQLite, migrates and writes."""

import os
import time
import re
import threading

import apsw
import pytest

from chronoledger import sqlite as db
from chronoledger.errors import SchemaError, ValidationError


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


def test_a_checkpoint_that_fails_is_logged_once_and_the_writer_goes_on(tmp_path, caplog):
    path = tmp_path / "a.sqlite"
    conn = db.connect(path)
    conn.execute("CREATE TABLE t (x BLOB)")
    tries = []

    class FailingDisk:
        def __init__(self, p):
            pass

        def execute(self, sql):
            tries.append(sql)
            raise apsw.IOError("disk I/O error")

        def setbusytimeout(self, ms):
            pass

        def close(self):
            pass

    class Checkpointer(db.BackgroundCheckpointer):
        _connect = FailingDisk

    ck = Checkpointer(conn, path, pages=1, limit=100_000)
    with caplog.at_level("WARNING", logger="chronoledger.sqlite"):
        for i in range(5):
            with db.write_transaction(conn):
                conn.execute("INSERT INTO t VALUES (?)", (os.urandom(5000),))
            ck.after_commit()
            deadline = time.monotonic() + 10
            while len(tries) <= i and time.monotonic() < deadline:     # the thread tries after each commit
                time.sleep(0.005)
        ck.close()
    assert len(tries) == 5                              # tried after every commit,
    warned = [r for r in caplog.records if r.name == "chronoledger.sqlite"]
    assert len(warned) == 1 and "background checkpoint" in warned[0].getMessage()   # said once
    assert str(path) in warned[0].getMessage()
    assert conn.execute("SELECT COUNT(*) FROM t").fetchall() == [(5,)]             # and nothing was lost
    conn.close()


def test_named_damage_names_the_file_for_damage_and_for_text_that_is_not_utf8(tmp_path):
    from chronoledger.errors import CorruptDataError

    conn = db.connect(tmp_path / "x.db")
    with pytest.raises(CorruptDataError, match=r"x\.db: a stored text is not valid UTF-8"):
        with db.named_damage(tmp_path / "x.db"):
            conn.execute("SELECT CAST(x'c5ff' AS TEXT)").fetchall()
    with pytest.raises(CorruptDataError, match=r"x\.db: the database is damaged"):
        with db.named_damage(tmp_path / "x.db"):
            raise apsw.CorruptError("database disk image is malformed")
    with pytest.raises(ValidationError, match=r"x\.db: UNIQUE constraint failed"):   # other SQLite errors: theirs
        with db.named_damage(tmp_path / "x.db"):
            raise apsw.ConstraintError("UNIQUE constraint failed")
    with pytest.raises(KeyError):                                # the rest pass through as they are
        with db.named_damage(tmp_path / "x.db"):
            raise KeyError("k")
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


# --- SQLite's errors -> the hierarchy: sqlite_error, the one table -----------------------------------------------

from chronoledger import errors  # noqa: E402

MAPPED = [
    (apsw.SQLITE_BUSY, errors.DatabaseBusyError),
    (apsw.SQLITE_BUSY_SNAPSHOT, errors.DatabaseBusyError),
    (apsw.SQLITE_LOCKED, errors.DatabaseBusyError),
    (apsw.SQLITE_PROTOCOL, errors.DatabaseBusyError),
    (apsw.SQLITE_CORRUPT, errors.CorruptDataError),
    (apsw.SQLITE_NOTADB, errors.CorruptDataError),
    (apsw.SQLITE_CONSTRAINT, errors.ValidationError),
    (apsw.SQLITE_CONSTRAINT_UNIQUE, errors.ValidationError),
    (apsw.SQLITE_CONSTRAINT_TRIGGER, errors.ValidationError),
    (apsw.SQLITE_MISMATCH, errors.ValidationError),
    (apsw.SQLITE_TOOBIG, errors.ValidationError),
    (apsw.SQLITE_ERROR, errors.SchemaError),
    (apsw.SQLITE_SCHEMA, errors.SchemaError),
    (apsw.SQLITE_AUTH, errors.QueryError),
    (apsw.SQLITE_CANTOPEN, errors.StorageError),
    (apsw.SQLITE_CANTOPEN_ISDIR, errors.StorageError),
    (apsw.SQLITE_IOERR, errors.StorageError),
    (apsw.SQLITE_IOERR_WRITE, errors.StorageError),
    (apsw.SQLITE_IOERR_FSYNC, errors.StorageError),
    (apsw.SQLITE_FULL, errors.StorageError),
    (apsw.SQLITE_READONLY, errors.StorageError),
    (apsw.SQLITE_READONLY_DBMOVED, errors.StorageError),
    (apsw.SQLITE_PERM, errors.StorageError),
    (apsw.SQLITE_NOLFS, errors.StorageError),
    (apsw.SQLITE_INTERRUPT, errors.ChronoledgerError),
    (apsw.SQLITE_NOMEM, errors.ChronoledgerError),
    (apsw.SQLITE_ABORT, errors.ChronoledgerError),
    (apsw.SQLITE_INTERNAL, errors.ChronoledgerError),
    (apsw.SQLITE_MISUSE, errors.ChronoledgerError),
]


@pytest.mark.parametrize("code, cls", MAPPED, ids=[apsw.mapping_extended_result_codes.get(c) or
                                                   apsw.mapping_result_codes[c] for c, _ in MAPPED])
def test_each_sqlite_error_is_one_class_of_ours_naming_the_file(tmp_path, code, cls):
    exc = apsw.exception_for(code)
    exc.args = ("what SQLite said",)
    err = db.sqlite_error(exc, tmp_path / "x.db", "doing it")
    assert type(err) is cls
    assert str(err).startswith(f"{tmp_path / 'x.db'}: doing it: ")
    assert "what SQLite said" in str(err)
    bare = db.sqlite_error(apsw.exception_for(code))             # no path, no what, no text: still says why
    assert type(bare) is cls and str(bare)


def test_the_extended_code_decides_not_the_wording():
    exc = apsw.exception_for(apsw.SQLITE_READONLY_DBMOVED)
    exc.args = ("attempt to write a readonly database",)         # the same words as a plain read-only file
    assert "moved or deleted" in str(db.sqlite_error(exc, "x.db"))
    unique = apsw.exception_for(apsw.SQLITE_CONSTRAINT_UNIQUE)
    unique.args = ("worded differently in some future SQLite",)
    assert str(db.sqlite_error(unique, "x.db", "insert")) == \
        "x.db: insert: worded differently in some future SQLite (a row with these values exists already)"


@pytest.mark.parametrize("code, cls", [
    (apsw.SQLITE_ERROR, errors.QueryError),             # a person's SQL that SQLite refuses: the query's fault
    (apsw.SQLITE_AUTH, errors.QueryError),
    (apsw.SQLITE_READONLY, errors.QueryError),          # it tried to write a database opened read-only
    (apsw.SQLITE_INTERRUPT, errors.QueryError),
    (apsw.SQLITE_READONLY_DBMOVED, errors.StorageError),    # not the query's fault
    (apsw.SQLITE_CORRUPT, errors.CorruptDataError),
    (apsw.SQLITE_BUSY, errors.DatabaseBusyError),
])
def test_a_query_a_person_wrote_is_refused_as_a_query_error(code, cls):
    assert type(db.sqlite_error(apsw.exception_for(code), "x.db", query=True)) is cls


def test_real_sqlite_errors_are_mapped(tmp_path):
    conn = db.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE t (a UNIQUE, b NOT NULL)")
    conn.execute("INSERT INTO t VALUES (1, 1)")
    with pytest.raises(errors.ValidationError, match=r"x\.db: adding: UNIQUE constraint failed: t\.a "
                                                     r"\(a row with these values exists already\)$"):
        with db.sqlite_errors(tmp_path / "x.db", "adding"):
            conn.execute("INSERT INTO t VALUES (1, 2)")
    with pytest.raises(errors.ValidationError, match="NOT NULL"):
        with db.sqlite_errors(tmp_path / "x.db", "adding"):
            conn.execute("INSERT INTO t VALUES (2, NULL)")
    with pytest.raises(errors.SchemaError, match=r"x\.db: reading: SQLite refused the statement \(no such table: u\)"):
        with db.sqlite_errors(tmp_path / "x.db", "reading"):
            conn.execute("SELECT * FROM u")
    with pytest.raises(errors.QueryError, match=r"x\.db: the query failed \(near"):
        with db.sqlite_errors(tmp_path / "x.db", query=True):
            conn.execute("SELEC 1")
    with pytest.raises(LookupError):                             # not SQLite's: passes as it is
        with db.sqlite_errors(tmp_path / "x.db"):
            raise LookupError("k")
    conn.close()
    with pytest.raises(errors.ChronoledgerError, match="the connection is closed"):
        with db.sqlite_errors(tmp_path / "x.db"):
            conn.execute("SELECT 1")


def test_a_folder_and_a_file_that_is_not_a_database_are_named(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(errors.StorageError, match=r"dir\.db: ") as info:
        db.connect(tmp_path / "dir.db")
    assert isinstance(info.value, OSError)
    (tmp_path / "junk.db").write_bytes(b"this is not a database, only text" * 200)
    with pytest.raises(errors.CorruptDataError, match=r"junk\.db: not an SQLite database"):
        db.connect(tmp_path / "junk.db")


def test_write_transaction_maps_begin_and_commit_and_passes_the_block_through(tmp_path):
    path = tmp_path / "a.sqlite"
    conn = db.connect(path)
    conn.execute("CREATE TABLE t (x UNIQUE)")
    with pytest.raises(apsw.ConstraintError):               # the block's own: for its caller to turn
        with db.write_transaction(conn, f"{path}: adding"):
            conn.execute("INSERT INTO t VALUES (1), (1)")
    assert conn.getautocommit() and conn.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    holder = db.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    waiter = db.connect(path, busy_timeout_ms=20)
    with pytest.raises(errors.DatabaseBusyError, match=rf"^{re.escape(str(path))}: adding: another connection"):
        with db.write_transaction(waiter, f"{path}: adding"):
            pass
    holder.execute("ROLLBACK")
    for c in (conn, holder, waiter):
        c.close()


# --- no apsw exception reaches the stores' users ------------------------------------------------------------------
# A failing disk (every write refused with a chosen SQLite error, through a VFS of SQLite's own), a damaged file
# and a locked database, met through each store's public functions: always the hierarchy's, naming the file.

class _FailingFile(apsw.VFSFile):
    def xWrite(self, data, offset):
        if _FailingDisk.fails is not None:
            raise _FailingDisk.fails()
        return super().xWrite(data, offset)


class _FailingDisk(apsw.VFS):
    fails: type | None = None           # while set, every write raises this apsw class

    NAME = "chronoledger-tests-failing-disk"

    def __init__(self):
        super().__init__(self.NAME, base="unix")

    def xOpen(self, name, flags):
        return _FailingFile("unix", name, flags)


_DISK = None


@pytest.fixture
def disk():
    """Every connection opened in the test goes through _FailingDisk (registered once and never
    unregistered: a connection left open by a failed test must not outlive its VFS)."""
    global _DISK
    if _DISK is None:
        _DISK = _FailingDisk()
    apsw.set_default_vfs(_FailingDisk.NAME)
    try:
        yield _FailingDisk
    finally:
        _FailingDisk.fails = None
        apsw.set_default_vfs("unix")


FAILURES = [(apsw.FullError, "is full"), (apsw.IOError, "reading or writing the file failed"),
            (apsw.ReadOnlyError, "read-only")]


def _damage(path, keep_pages: int = 1) -> None:
    """Every page of ``path`` after the first ``keep_pages`` overwritten with junk."""
    raw = bytearray(path.read_bytes())
    page = int.from_bytes(raw[16:18], "big") or 65536
    for at in range(keep_pages * page, len(raw), 97):
        raw[at] ^= 0x5A
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("fails, why", FAILURES)
def test_runtime_store_on_a_failing_disk(tmp_path, disk, fails, why):
    from chronoledger.runtime import RuntimeMemoryStore

    path = tmp_path / "rt.sqlite"
    store = RuntimeMemoryStore(path)
    try:
        disk.fails = fails
        with pytest.raises(errors.StorageError, match=rf"{re.escape(str(path))}: start_session: .*{why}"):
            store.start_session("tom")
        disk.fails = None
        assert store.start_session("tom")["actor"] == "tom"        # and the store goes on once the disk does
    finally:
        disk.fails = None
        store.close()
    disk.fails = fails
    with pytest.raises(errors.StorageError, match=re.escape(str(tmp_path / "new.sqlite"))):
        RuntimeMemoryStore(tmp_path / "new.sqlite")


def test_runtime_store_damaged_and_locked(tmp_path):
    from chronoledger.runtime import RuntimeMemoryStore

    path = tmp_path / "rt.sqlite"
    with RuntimeMemoryStore(path) as store:
        for i in range(200):
            store.start_session(f"actor {i}", metadata={"pad": "x" * 200})
    holder = db.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    with RuntimeMemoryStore(path, busy_timeout_ms=20) as store:
        with pytest.raises(errors.DatabaseBusyError, match=re.escape(str(path))):
            store.start_session("tom")
    holder.execute("ROLLBACK")
    holder.close()
    _damage(path, keep_pages=4)
    with pytest.raises(errors.CorruptDataError, match=re.escape(str(path))):
        with RuntimeMemoryStore(path, readonly=True) as store:
            store.list_sessions(limit=1000)


@pytest.mark.parametrize("fails, why", FAILURES)
def test_table_registry_on_a_failing_disk(tmp_path, disk, fails, why):
    from chronoledger.tables import GOVERNANCE_TABLE, TableRegistry

    path = tmp_path / "t.db"
    reg = TableRegistry(path, events_log=None, catalogue=False)
    try:
        disk.fails = fails
        with pytest.raises(errors.StorageError, match=rf"{re.escape(str(path))}: .*{why}"):
            reg.insert_row(GOVERNANCE_TABLE, {"decision_type": "approval", "subject": "x", "decision_maker": "me"})
    finally:
        disk.fails = None
        reg.close()


def test_table_registry_damaged_and_locked(tmp_path):
    from chronoledger.tables import GOVERNANCE_TABLE, TableRegistry

    path = tmp_path / "t.db"
    with TableRegistry(path, events_log=None, catalogue=False) as reg:
        for i in range(200):
            reg.insert_row(GOVERNANCE_TABLE, {"decision_type": "approval", "subject": f"s{i}" + "x" * 200,
                                              "decision_maker": "me"})
    holder = db.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    with TableRegistry(path, events_log=None, catalogue=False, busy_timeout_ms=20) as reg:
        with pytest.raises(errors.DatabaseBusyError, match=re.escape(str(path))):
            reg.insert_row(GOVERNANCE_TABLE, {"decision_type": "approval", "subject": "y", "decision_maker": "me"})
    holder.execute("ROLLBACK")
    holder.close()
    _damage(path, keep_pages=6)
    with pytest.raises(errors.CorruptDataError, match=re.escape(str(path))):
        with TableRegistry(path, events_log=None, catalogue=False) as reg:
            reg.query_rows(GOVERNANCE_TABLE, limit=1000)


@pytest.mark.parametrize("fails, why", FAILURES)
def test_sequence_on_a_failing_disk(tmp_path, disk, fails, why):
    from chronoledger.sequence import sample, sync

    user = sample.write_user_folder(tmp_path, items=20, days=5, seed=1)
    disk.fails = fails
    with pytest.raises(errors.StorageError, match=rf"chronos_\w+\.db: .*{why}"):
        sync(user)


def test_sequence_query_on_a_damaged_mirror(tmp_path):
    from chronoledger.sequence import run_query, sample, sync

    user = sample.write_user_folder(tmp_path, items=120, days=30, seed=1)
    report = sync(user)
    core = report.data / "chronos_core.db"
    _damage(core, keep_pages=8)
    with pytest.raises(errors.CorruptDataError, match=re.escape(str(core))):
        run_query(report.data, "SELECT * FROM items")


@pytest.mark.parametrize("fails, why", FAILURES)
def test_world_run_on_a_failing_disk(tmp_path, disk, fails, why):
    from chronoledger.world import config as wconfig, models, scheduler, store

    path = tmp_path / "w.db"
    store.connect(path).close()
    disk.fails = fails
    with pytest.raises(errors.StorageError, match=rf"{re.escape(str(path))}: .*{why}"):
        scheduler.run(path, wconfig.load_config(), models.make_model("offline"),
                      scheduler.RunOptions(days=1, agents=3, seed=1, report_format="none"))
    disk.fails = None


def test_world_reads_of_a_damaged_database(tmp_path):
    from chronoledger.world import config as wconfig, models, scheduler, store

    path = tmp_path / "w.db"
    scheduler.run(path, wconfig.load_config(), models.make_model("offline"),
                  scheduler.RunOptions(days=1, agents=6, seed=1, report_format="none"))
    conn = db.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _damage(path, keep_pages=10)
    with pytest.raises(errors.CorruptDataError, match=re.escape(str(path))):
        store.day_report(path, "2026-01-01")
