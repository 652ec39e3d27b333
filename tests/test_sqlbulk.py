"""chronoledger._sqlbulk and chronoledger.sqlite.insert_columns: rows given as
columns go into SQLite through C, and store exactly what ``executemany`` over
the same rows stores (the fallback), with the same change counts and errors
that name the failing row and column."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap

import apsw
import numpy as np
import pytest
from _world_data import ONE_PLACE_CONFIG, WEEKEND, TABLES, dump, run_world, seed_friends, write
from chronoledger import _sqlbulk
from chronoledger import sqlite as db
from chronoledger.world import config as wconfig
from chronoledger.world import store
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

INT64_MIN, INT64_MAX = -2 ** 63, 2 ** 63 - 1


# --- helpers ------------------------------------------------------------------------------------

def _connect(ncols: int = 2, extra: str = "") -> apsw.Connection:
    """An in-memory database with an untyped table t(c0, c1, ...): values keep the type they were bound with."""
    conn = apsw.Connection(":memory:")
    assert _sqlbulk.bind()
    cols = ", ".join(f"c{j}" for j in range(ncols))
    conn.execute(f"CREATE TABLE t ({cols}{extra})")
    return conn


def _sql(ncols: int, verb: str = "INSERT", table: str = "t") -> str:
    return f"{verb} INTO {table} ({', '.join(f'c{j}' for j in range(ncols))}) VALUES ({', '.join('?' * ncols)})"


def _typed(conn: apsw.Connection, ncols: int, table: str = "t") -> list[tuple]:
    """Every row, each value with its SQLite type (1 and 1.0 compare equal in Python, not in SQLite)."""
    sel = ", ".join(f"c{j}, typeof(c{j})" for j in range(ncols))
    return conn.execute(f"SELECT {sel} FROM {table} ORDER BY rowid").fetchall()


def _count(conn: apsw.Connection, table: str = "t") -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _native(conn, sql, columns, n):
    return _sqlbulk.insert(conn, sql, columns, n)


def _fallback(conn, sql, columns, n):
    """insert_columns where the module cannot be bound: executemany."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db, "_sqlbulk", False)
        return db.insert_columns(conn, sql, columns, n)


def _both(columns, n, ncols=None, sql=None, extra="", setup=None):
    """Run the same insert natively and through the fallback, each in a fresh
    database: (native count, native rows, fallback count, fallback rows)."""
    ncols = len(columns) if ncols is None else ncols
    sql = sql or _sql(ncols)
    out = []
    for insert in (_native, _fallback):
        conn = _connect(ncols, extra)
        if setup:
            conn.execute(setup)
        count = insert(conn, sql, columns, n)
        out += [count, _typed(conn, ncols)]
        conn.close()
    return tuple(out)


class _Traced:
    """The statements apsw itself runs on a connection (execute, executemany);
    those run by _sqlbulk's C loop do not pass through apsw's tracer."""

    def __init__(self, conn):
        self.sql = []
        conn.exec_trace = self._trace

    def _trace(self, cursor, sql, bindings):
        self.sql.append(sql)
        return True


@pytest.fixture
def conn():
    c = _connect(3)
    yield c
    c.close()


# --- the fast path is really the one tested ---------------------------------------------------------

def test_insert_columns_binds_the_native_module(monkeypatch):
    monkeypatch.delenv("CHRONOLEDGER_NO_SQLBULK", raising=False)
    monkeypatch.setattr(db, "_sqlbulk", None)            # not checked yet
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE t (c0, c1)")
    assert db.insert_columns(conn, _sql(2), [[1, 2, 3], "x"]) == 3
    assert db._sqlbulk is _sqlbulk
    assert _sqlbulk.bound()
    major, minor, patch = (int(x) for x in apsw.sqlite_lib_version().split(".")[:3])
    assert _sqlbulk.sqlite_version_number() == major * 1_000_000 + minor * 1000 + patch >= 3045000
    assert conn.execute("SELECT * FROM t").fetchall() == [(1, "x"), (2, "x"), (3, "x")]
    # extension loading was switched on for the bind only
    with pytest.raises(apsw.Error):
        conn.load_extension(_sqlbulk.__file__, _sqlbulk.ENTRY_POINT)


def test_insert_columns_goes_through_the_module_not_executemany(monkeypatch):
    monkeypatch.delenv("CHRONOLEDGER_NO_SQLBULK", raising=False)
    monkeypatch.setattr(db, "_sqlbulk", None)
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE t (c0, c1)")
    traced = _Traced(conn)
    assert db.insert_columns(conn, _sql(2), [[1, 2], 3]) == 2
    assert db.insert_many(conn, [(_sql(2), [[4], 5], None), (_sql(2), [6, "x"], 2)]) == [1, 2]
    assert not any("INSERT" in q for q in traced.sql), traced.sql
    monkeypatch.setattr(db, "_sqlbulk", False)                 # the fallback: apsw runs the statement
    assert db.insert_columns(conn, _sql(2), [[1, 2], 3]) == 2
    assert any(q.startswith("INSERT INTO t") for q in traced.sql)
    conn.exec_trace = None
    assert _count(conn) == 7


def test_the_environment_switches_the_module_off():
    code = textwrap.dedent("""
        import apsw
        from chronoledger import _sqlbulk, sqlite as db
        conn = apsw.Connection(":memory:")
        conn.execute("CREATE TABLE t (a, b)")
        n = db.insert_columns(conn, "INSERT INTO t VALUES (?, ?)", [[1, None, 3], "x"])
        assert n == 3, n
        assert db._sqlbulk is False, db._sqlbulk
        assert not _sqlbulk.bound()
        assert _sqlbulk.sqlite_version_number() == 0
        from chronoledger.errors import UnsupportedError
        try:
            _sqlbulk.insert(conn, "INSERT INTO t VALUES (?, ?)", [[1], 2], 1)
        except UnsupportedError as exc:         # the status table's class for CL_ERR_UNSUPPORTED
            assert "bind" in str(exc), exc
        else:
            raise AssertionError("an unbound module inserted")
        print(conn.execute("SELECT * FROM t").fetchall())
    """)
    env = dict(os.environ, CHRONOLEDGER_NO_SQLBULK="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[(1, 'x'), (None, 'x'), (3, 'x')]"


# --- column kinds ---------------------------------------------------------------------------------------

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", ">i4", ">i8", "<u2"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_arrays_of_every_dtype(conn, dtype):
    info = np.iinfo(np.dtype(dtype))
    lo, hi = int(info.min), min(int(info.max), INT64_MAX)
    values = [lo, hi, 0, 1, lo + 1, hi - 1]
    arr = np.array(values, dtype=dtype)
    assert _sqlbulk.insert(conn, _sql(3), [arr, arr[::-1], 7], len(values)) == len(values)
    assert _typed(conn, 3) == [(v, "integer", w, "integer", 7, "integer") for v, w in zip(values, values[::-1])]


def test_uint64_up_to_the_largest_int64(conn):
    arr = np.array([0, INT64_MAX, 2 ** 53 + 1], dtype=np.uint64)
    assert _sqlbulk.insert(conn, _sql(3), [arr, None, None], 3) == 3
    assert conn.execute("SELECT c0 FROM t ORDER BY rowid").fetchall() == [(0,), (INT64_MAX,), (2 ** 53 + 1,)]


@pytest.mark.parametrize("where", [0, 2, 4])
def test_uint64_past_int64_is_an_overflow_naming_the_row(conn, where):
    arr = np.arange(5, dtype=np.uint64)
    arr[where] = 2 ** 63
    with pytest.raises(OverflowError, match=rf"column 1: row {where}\b"):
        _sqlbulk.insert(conn, _sql(3), [np.arange(5), arr, "x"], 5)
    arr[where] = 2 ** 64 - 1
    with pytest.raises(OverflowError, match=rf"column 1: row {where}\b"):
        _sqlbulk.insert(conn, _sql(3), [np.arange(5), arr, "x"], 5)
    assert _count(conn) == 0


def test_integers_past_int64_in_sequences_and_constants_are_overflows(conn):
    for columns in ([[1, 2 ** 63], 0, 0], [[1, -2 ** 63 - 1], 0, 0], [[1, 2], 2 ** 63, 0], [[1, 2], 0, -2 ** 63 - 1]):
        with pytest.raises(OverflowError):
            _sqlbulk.insert(conn, _sql(3), columns, 2)
    assert _count(conn) == 0
    assert _sqlbulk.insert(conn, _sql(3), [[INT64_MIN, INT64_MAX], INT64_MAX, INT64_MIN], 2) == 2
    assert conn.execute("SELECT * FROM t").fetchall() == [(INT64_MIN, INT64_MAX, INT64_MIN),
                                                          (INT64_MAX, INT64_MAX, INT64_MIN)]


def test_bool_arrays_are_integers(conn):
    arr = np.array([True, False, True])
    assert _sqlbulk.insert(conn, _sql(3), [arr, [True, None, False], True], 3) == 3
    assert _typed(conn, 3) == [(1, "integer", 1, "integer", 1, "integer"), (0, "integer", None, "null", 1, "integer"),
                               (1, "integer", 0, "integer", 1, "integer")]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", ">f8"])
def test_float_arrays_of_every_dtype(conn, dtype):
    values = np.array([0.0, -1.5, 0.1, 1e4, -2.0 ** -10], dtype=dtype)
    n = len(values)
    assert _sqlbulk.insert(conn, _sql(3), [values, values[::-1], 0.25], n) == n
    want = [float(v) for v in values]                     # the array's values, widened exactly
    got = _typed(conn, 3)
    assert [r[0] for r in got] == want and [r[2] for r in got] == want[::-1]
    assert {r[1] for r in got} == {r[3] for r in got} == {"real"}
    assert [r[4] for r in got] == [0.25] * n


def test_nan_is_null_and_infinities_are_kept(conn):
    arr = np.array([np.nan, np.inf, -np.inf, 1.0])
    assert _sqlbulk.insert(conn, _sql(3), [arr, [math.nan, math.inf, -math.inf, 2.0], math.nan], 4) == 4
    assert conn.execute("SELECT * FROM t ORDER BY rowid").fetchall() == [
        (None, None, None), (math.inf, math.inf, None), (-math.inf, -math.inf, None), (1.0, 2.0, None)]


def test_strided_and_reversed_arrays(conn):
    base = np.arange(20, dtype=np.int32)
    floats = np.linspace(0, 1, 30)
    assert _sqlbulk.insert(conn, _sql(3), [base[::4], floats[::-6], base.reshape(5, 4)[:, 1]], 5) == 5
    assert conn.execute("SELECT * FROM t ORDER BY rowid").fetchall() == \
        list(zip(base[::4].tolist(), floats[::-6].tolist(), base.reshape(5, 4)[:, 1].tolist()))


def test_object_arrays_are_sequences(conn):
    texts = np.array(["a", None, "é"], dtype=object)
    ints = np.array([None, 5, np.int64(-7)], dtype=object)
    floats = np.array([1.5, np.float32(0.5), 2], dtype=object)
    assert _sqlbulk.insert(conn, _sql(3), [texts, ints, floats], 3) == 3
    assert _typed(conn, 3) == [("a", "text", None, "null", 1.5, "real"), (None, "null", 5, "integer", 0.5, "real"),
                               ("é", "text", -7, "integer", 2, "integer")]     # each value its own type


def test_numpy_string_arrays_are_texts(conn):
    assert _sqlbulk.insert(conn, _sql(3), [np.array(["ab", "", "中文"]), np.array([1, 2, 3]), None], 3) == 3
    assert conn.execute("SELECT c0, c1, c2 FROM t ORDER BY rowid").fetchall() == \
        [("ab", 1, None), ("", 2, None), ("中文", 3, None)]


def test_constants_of_every_kind(conn):
    assert _sqlbulk.insert(conn, _sql(3), [None, -12, "ünï"], 2) == 2
    assert _sqlbulk.insert(conn, _sql(3), [2.5, "", np.int64(9)], 2) == 2
    assert _sqlbulk.insert(conn, _sql(3), [np.float32(0.5), INT64_MAX, INT64_MIN], 1) == 1
    assert _typed(conn, 3) == [(None, "null", -12, "integer", "ünï", "text")] * 2 + \
        [(2.5, "real", "", "text", 9, "integer")] * 2 + [(0.5, "real", INT64_MAX, "integer", INT64_MIN, "integer")]


def test_a_bytes_constant_is_a_blob_on_both_paths():
    cols = [b"\x00\xffraw", [1, 2], b""]
    a, ta, b, tb = _both(cols, 2)
    assert ta == [(b"\x00\xffraw", "blob", 1, "integer", b"", "blob"), (b"\x00\xffraw", "blob", 2, "integer", b"", "blob")]
    assert (a, ta) == (b, tb)


def test_nulls_in_integer_and_text_sequences(conn):
    ints = [None, 1, None, -3, None]
    texts = [None, None, "x", None, "é"]
    tuples = (None, 2, 3, None, 5)
    assert _sqlbulk.insert(conn, _sql(3), [ints, texts, tuples], 5) == 5
    assert conn.execute("SELECT * FROM t ORDER BY rowid").fetchall() == list(zip(ints, texts, tuples))


def test_all_null_sequences(conn):
    assert _sqlbulk.insert(conn, _sql(3), [[None, None], (None, None), np.array([None, None], dtype=object)], 2) == 2
    assert _typed(conn, 3) == [(None, "null") * 3] * 2


def test_nulls_in_float_sequences(conn):
    """The docstrings: a sequence of str, int *or float*, None for NULL (executemany takes it)."""
    floats = [1.5, None, -2.25, None]
    assert _sqlbulk.insert(conn, _sql(3), [floats, [1, 2, 3, 4], "x"], 4) == 4
    assert conn.execute("SELECT c0 FROM t ORDER BY rowid").fetchall() == [(v,) for v in floats]


def test_a_float_sequence_with_integers_stores_what_executemany_stores():
    """A column that starts with a float may hold ints: executemany binds
    them as integers (exactly), so the native path must too."""
    col = [0.5, 2, 2 ** 53 + 1, -7]
    native_n, native, fallback_n, fallback = _both([col], 4, ncols=1)
    assert native_n == fallback_n == 4
    assert native == fallback == [(0.5, "real"), (2, "integer"), (2 ** 53 + 1, "integer"), (-7, "integer")]


def test_non_ascii_and_empty_texts(conn):
    texts = ["", "é", "日本語", "emoji 😀 astral", "a\x00b", "\u200b", "x" * 10_000 + "ü", ""]
    n = len(texts)
    assert _sqlbulk.insert(conn, _sql(3), [texts, "Grüße 😀", ""], n) == n
    got = conn.execute("SELECT c0, length(CAST(c0 AS BLOB)), c1, c2, typeof(c2) FROM t ORDER BY rowid").fetchall()
    assert [g[0] for g in got] == texts
    assert [g[1] for g in got] == [len(s.encode()) for s in texts]     # stored as UTF-8, every byte of it
    assert {g[2:] for g in got} == {("Grüße 😀", "", "text")}


@pytest.mark.parametrize("columns", [
    [["ok", "\ud800", "ok"], 1, 2],              # in a sequence
    [["ok", "ok", "ok"], 1, "bad \udfff"],       # a constant
    [["ok", "ok", "x\udc80"], np.arange(3), 0],  # in the last row
])
def test_lone_surrogates_are_refused_before_anything_is_bound(conn, columns):
    with pytest.raises(UnicodeEncodeError):
        _sqlbulk.insert(conn, _sql(3), columns, 3)
    assert _count(conn) == 0
    assert conn.getautocommit()
    assert _sqlbulk.insert(conn, _sql(3), [["fine"], 1, 2], 1) == 1
    conn.execute("DROP TABLE t")                 # no statement was left open on it


def test_zero_rows(conn):
    for columns in ([[], [], []], [np.zeros(0), np.zeros(0, np.uint64), ()], [None, 1, "x"],
                    [np.zeros(0, dtype=object), 2.5, []]):
        assert _sqlbulk.insert(conn, _sql(3), columns, 0) == 0
        assert db.insert_columns(conn, _sql(3), columns, 0) == 0
    assert db.insert_columns(conn, _sql(3), [[], "x", np.zeros(0)]) == 0          # n taken from the first list
    assert _count(conn) == 0
    with pytest.raises(ValueError, match="negative"):
        _sqlbulk.insert(conn, _sql(3), [None, None, None], -1)


# --- wrong input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("columns, n, match", [
    ([[1, 2], [1, 2, 3], "x"], 3, r"column 0: 3 values wanted, got 2"),
    ([[1, 2, 3], ("a", "b"), "x"], 3, r"column 1: 3 values wanted, got 2"),
    ([np.arange(3), np.arange(4), "x"], 3, r"column 1: 3 values wanted.*\(4,\)"),
    ([np.arange(3), 1, np.zeros((3, 1))], 3, r"column 2: 3 values wanted.*\(3, 1\)"),
    ([np.arange(3), 1, np.zeros(2)], 3, r"column 2: 3 values wanted"),
])
def test_length_mismatches_are_value_errors_naming_the_column(conn, columns, n, match):
    with pytest.raises(ValueError, match=match):
        _sqlbulk.insert(conn, _sql(3), columns, n)
    with pytest.raises(ValueError):
        db.insert_columns(conn, _sql(3), columns, n)
    assert _count(conn) == 0


def test_insert_columns_infers_n_and_refuses_mismatches(conn):
    assert db.insert_columns(conn, _sql(3), ["k", np.arange(4), [None, "a", "b", "c"]]) == 4
    with pytest.raises(ValueError):
        db.insert_columns(conn, _sql(3), ["k", np.arange(4), ["a", "b", "c"]])
    with pytest.raises(ValueError, match="pass n"):
        db.insert_columns(conn, _sql(3), ["k", 1, None])
    assert _count(conn) == 4


@pytest.mark.parametrize("columns, exc, match", [
    ([[{"a": 1}, {}, {}], 0, 0], TypeError, r"column 0: row 0 is a dict, which SQLite cannot store"),
    ([0, [1, 2, object()], 0], TypeError, r"column 1: row 2 is a object, which SQLite cannot store"),
    ([0, 0, ["x", b"y", [1]]], TypeError, r"column 2: row 2 is a list, which SQLite cannot store"),
    ([0, 0, np.array([1 + 2j, 0, 0])], TypeError, r"column 2: row 0 is a complex, which SQLite cannot store"),
    ([0, {"a": 1}, 0], TypeError, r"column 1: a dict is neither a value nor a column"),
    ([0, 0, object()], TypeError, r"column 2: a object is neither"),
    ([[1, 2, 2 ** 63], 0, 0], OverflowError, r"column 0: row 2 \(9223372036854775808\) does not fit"),
    ([2 ** 64, 0, 0], OverflowError, r"column 0: 18446744073709551616 does not fit"),
])
def test_wrong_types_name_the_column_and_row(conn, columns, exc, match):
    with pytest.raises(exc, match=match):
        _sqlbulk.insert(conn, _sql(3), columns, 3)
    assert _count(conn) == 0
    assert conn.getautocommit()


@pytest.mark.parametrize("sql", [
    "INSERT INTO t (c0, c1) VALUES (?, ?)",                         # too few parameters
    "INSERT INTO t (c0, c1, c2) VALUES (?, ?, ? + ?) ",
    "INSERT INTO t (c0, c1, c2) VALUES (?1, ?1, ?4)",                # four by number
    "INSERT INTO t (c0, c1, c2) VALUES (?, ?, ?); INSERT INTO t (c0) VALUES (1)",
    "INSERT INTO t (c0, c1, c2) VALUES (?, ?, ?); DELETE FROM t",
    "",
    "  ;  ",
])
def test_statements_that_do_not_take_the_columns_are_value_errors(conn, sql):
    conn.execute("INSERT INTO t VALUES (0, 0, 0)")
    with pytest.raises(ValueError, match="not one statement that writes rows with 3 parameter"):
        _sqlbulk.insert(conn, sql, [[1, 2], 3, 4], 2)
    if db._bulk_ready(conn):
        with pytest.raises(ValueError):
            db.insert_columns(conn, sql, [[1, 2], 3, 4])
    assert conn.execute("SELECT * FROM t").fetchall() == [(0, 0, 0)]      # nothing run, nothing deleted
    conn.execute("DROP TABLE t")                                            # and nothing left prepared


def test_one_statement_with_a_trailing_semicolon_is_fine(conn):
    assert _sqlbulk.insert(conn, _sql(3) + " ;\n", [[1, 2], 3, 4], 2) == 2
    assert _sqlbulk.insert(conn, "INSERT INTO t VALUES (?, ?, ?2)", [[1, 2], 3], 2) == 2
    assert conn.execute("SELECT * FROM t ORDER BY rowid").fetchall() == [(1, 3, 4), (2, 3, 4), (1, 3, 3), (2, 3, 3)]


@pytest.mark.parametrize("sql, what", [                # what: the statement, as the message names it
    ("INSERT INTO t VALUES (?, ?, ?", "INSERT INTO t VALUES"),
    ("INSERT INTO nosuch VALUES (?, ?, ?)", "INSERT INTO nosuch VALUES"),
    ("INSERT INTO t (c0, c1, nosuch) VALUES (?, ?, ?)", "INSERT INTO t"),
    ("INSRT INTO t VALUES (?, ?, ?)", "INSRT INTO t VALUES"),
])
def test_sql_errors_are_apsw_sql_errors(conn, sql, what):
    # our part of the message: the statement and the stage; SQLite's own reason follows it
    with pytest.raises(apsw.SQLError, match=rf"^{re.escape(what)}: preparing: \S"):
        _sqlbulk.insert(conn, sql, [[1], 2, 3], 1)
    with pytest.raises(apsw.SQLError):
        db.insert_columns(conn, sql, [[1], 2, 3])
    assert _count(conn) == 0


# --- constraints and conflicts ------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 1, 5, 9])
def test_a_unique_violation_names_its_row_and_the_transaction_decides(tmp_path, k):
    conn = db.connect(tmp_path / "u.db")
    conn.execute("CREATE TABLE u (id INTEGER UNIQUE, name TEXT NOT NULL)")
    conn.execute("INSERT INTO u VALUES (-1, 'old')")
    ids = list(range(10))
    ids[k] = -1 if k == 0 else ids[k - 1]            # row k repeats a stored id or the row before it
    seen = {}
    with pytest.raises(apsw.ConstraintError, match=rf"^INSERT INTO u: row {k}: ") as info:
        with db.write_transaction(conn):
            try:
                db.insert_columns(conn, "INSERT INTO u (id, name) VALUES (?, ?)", [ids, "new"])
            finally:
                seen["rows"] = conn.execute("SELECT id FROM u WHERE name = 'new' ORDER BY rowid").fetchall()
    assert info.value.extendedresult == apsw.SQLITE_CONSTRAINT_UNIQUE
    assert db._sqlbulk is _sqlbulk
    assert seen["rows"] == [(i,) for i in ids[:k]]   # rows before k were written, inside the transaction
    assert conn.execute("SELECT * FROM u").fetchall() == [(-1, "old")]      # and the rollback took them back
    assert conn.getautocommit()
    conn.execute("DROP TABLE u")
    conn.close()


def test_a_not_null_violation_is_a_constraint_error_with_its_row(conn):
    conn.execute("CREATE TABLE nn (a NOT NULL, b)")
    with pytest.raises(apsw.ConstraintError, match=r"^INSERT INTO nn VALUES: row 3: ") as info:
        _sqlbulk.insert(conn, "INSERT INTO nn VALUES (?, ?)", [[1, 2, 3, None, 5], "x"], 5)
    assert info.value.extendedresult == apsw.SQLITE_CONSTRAINT_NOTNULL
    assert conn.execute("SELECT a FROM nn").fetchall() == [(1,), (2,), (3,)]   # no transaction: they stay


def test_a_check_and_foreign_key_violation(tmp_path):
    conn = db.connect(tmp_path / "fk.db")             # foreign keys on
    conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY); INSERT INTO p VALUES (1), (2);"
                 "CREATE TABLE c (p INTEGER REFERENCES p (id), v CHECK (v >= 0))")
    assert _sqlbulk.bind()
    with pytest.raises(apsw.ConstraintError, match=r"^INSERT INTO c VALUES: row 2: ") as info:
        _sqlbulk.insert(conn, "INSERT INTO c VALUES (?, ?)", [[1, 2, 3], 0], 3)
    assert info.value.extendedresult == apsw.SQLITE_CONSTRAINT_FOREIGNKEY
    with pytest.raises(apsw.ConstraintError, match=r"^INSERT INTO c VALUES: row 1: ") as info:
        _sqlbulk.insert(conn, "INSERT INTO c VALUES (?, ?)", [1, [0, -1]], 2)
    assert info.value.extendedresult == apsw.SQLITE_CONSTRAINT_CHECK
    conn.close()


def _unique_conn() -> apsw.Connection:
    conn = _connect(3, ", UNIQUE (c0)")
    conn.execute("INSERT INTO t VALUES (1, 'stored', 0.5), (4, 'stored', 0.5)")
    return conn


KEYS = [1, 2, 3, 2, 4, 5, 5, None, None, 6]     # 1 and 4 stored before; 2 and 5 twice; NULLs are distinct


@pytest.mark.parametrize("fallback", [False, True])
def test_insert_or_ignore_counts_the_rows_it_kept(monkeypatch, fallback):
    if fallback:
        monkeypatch.setattr(db, "_sqlbulk", False)
    conn = _unique_conn()
    before = _count(conn)
    n = db.insert_columns(conn, _sql(3, "INSERT OR IGNORE"), [KEYS, np.arange(10), 1.5])
    assert n == _count(conn) - before == 6
    assert conn.execute("SELECT c0, c1 FROM t WHERE c2 = 1.5 ORDER BY rowid").fetchall() == \
        [(2, 1), (3, 2), (5, 5), (None, 7), (None, 8), (6, 9)]
    assert conn.execute("SELECT c0, c1 FROM t WHERE c1 = 'stored' ORDER BY rowid").fetchall() == \
        [(1, "stored"), (4, "stored")]
    # everything ignored: 0 changes
    assert db.insert_columns(conn, _sql(3, "INSERT OR IGNORE"), [[1, 2, 3], "y", 0.0]) == 0
    assert _count(conn) == before + 6


def test_insert_or_ignore_native_and_fallback_agree():
    got = []
    for insert in (_native, _fallback):
        conn = _unique_conn()
        count = insert(conn, _sql(3, "INSERT OR IGNORE"), [KEYS, np.arange(10), 1.5], 10)
        got.append((count, _typed(conn, 3)))
    assert got[0] == got[1]
    assert got[0][0] == 6 and len(got[0][1]) == 8
    assert [r[0] for r in got[0][1]] == [1, 4, 2, 3, 5, None, None, 6]


def test_on_conflict_do_update():
    sql = ("INSERT INTO t (c0, c1, c2) VALUES (?, ?, ?) ON CONFLICT (c0) DO UPDATE SET "
           "c1 = excluded.c1, c2 = t.c2 + excluded.c2")
    keys = [1, 2, 1, 3, 2, 1]
    got = []
    for insert in (_native, _fallback):
        conn = _unique_conn()
        count = insert(conn, sql, [keys, [f"v{i}" for i in range(6)], 1.0], 6)
        got.append((count, _typed(conn, 3)))
    assert got[0] == got[1]
    count, table = got[0]
    assert count == 6                                 # every row inserted or updated one
    assert [(r[0], r[2], r[4]) for r in table] == [(1, "v5", 3.5), (4, "stored", 0.5), (2, "v4", 2.0),
                                                   (3, "v3", 1.0)]


def test_on_conflict_do_nothing_and_where_count_like_executemany():
    sql = ("INSERT INTO t (c0, c1, c2) VALUES (?, ?, ?) ON CONFLICT (c0) DO UPDATE SET c1 = excluded.c1 "
           "WHERE excluded.c2 > 0")
    cols = [[1, 2, 4, 7], ["a", "b", "c", "d"], [1.0, 1.0, -1.0, 0.0]]
    a, ta, b, tb = _both(cols, 4, sql=sql, setup="INSERT INTO t VALUES (1, 'stored', 0.5), (4, 'stored', 0.5)",
                         extra=", UNIQUE (c0)")
    assert (a, ta) == (b, tb)
    assert a == 3                                     # 1 updated, 2 and 7 inserted, 4 left alone


def test_counts_leave_out_rows_written_by_triggers():
    """insert_columns counts the rows its statement changed; a trigger's
    writes are not the statement's, on either path."""
    trigger = "CREATE TABLE log (x); CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.c0); END"
    a, ta, b, tb = _both([[1, 2, 3], "x"], 3, setup=trigger)
    assert ta == tb
    assert a == 3
    assert b == a


def test_returning_stores_every_row_on_both_paths():
    sql = _sql(2) + " RETURNING c0"
    a, ta, b, tb = _both([[1, 2, 3], "x"], 3, sql=sql)
    assert ta == [(1, "integer", "x", "text"), (2, "integer", "x", "text"), (3, "integer", "x", "text")]
    assert (a, ta) == (b, tb)


def test_numpy_scalar_constants_work_on_both_paths(monkeypatch):
    cols = [np.int64(5), np.float32(0.5), np.array([1, 2])]
    a, ta, b, tb = _both(cols, 2)
    assert ta == [(5, "integer", 0.5, "real", 1, "integer"), (5, "integer", 0.5, "real", 2, "integer")]
    assert (a, ta) == (b, tb)


# --- several statements at once (insert_many) ------------------------------------------------------------------

def _many_conn():
    conn = _connect(2, ", UNIQUE (c0)")
    conn.execute("CREATE TABLE s (c0, c1)")
    return conn


def _many(conn, jobs, fallback: bool):
    with pytest.MonkeyPatch.context() as mp:
        if fallback:
            mp.setattr(db, "_sqlbulk", False)
        return db.insert_many(conn, jobs)


@pytest.mark.parametrize("fallback", [False, True])
def test_insert_many_runs_each_job_in_turn(fallback):
    conn = _many_conn()
    jobs = [("INSERT INTO t (c0, c1) VALUES (?, ?)", [[1, 2, 3], "a"], None),
            ("INSERT INTO s (c0, c1) VALUES (?, ?)", [np.arange(2), [None, "é"]], 2),
            ("INSERT OR IGNORE INTO t (c0, c1) VALUES (?, ?)", [[3, 4, 1], "b"], None),
            ("INSERT INTO s (c0, c1) VALUES (?, ?)", [None, 1.5], 0),
            ("UPDATE t SET c1 = ? WHERE c0 >= ?", ["c", [2, 3]], None)]
    assert _many(conn, jobs, fallback) == [3, 2, 1, 0, 5]        # the update: 3 rows, then 2
    assert _typed(conn, 2) == [(1, "integer", "a", "text"), (2, "integer", "c", "text"), (3, "integer", "c", "text"),
                               (4, "integer", "c", "text")]
    assert _typed(conn, 2, "s") == [(0, "integer", None, "null"), (1, "integer", "é", "text")]
    assert _many(conn, [], fallback) == []


_BAD = {"length": [[1, 2], "x"], "surrogate": [["ok", "\ud800", "ok"], "x"], "dict": [{"a": 1}, "x"],
        "dict_item": [[{"a": 1}, {}, {}], "x"], "uint64": [np.array([0, 2 ** 63, 1], np.uint64), "x"],
        "int_overflow": [[0, 1, 2 ** 64], "x"]}


@pytest.mark.parametrize("fallback", [False, True])
@pytest.mark.parametrize("bad", list(_BAD))
def test_insert_many_checks_every_column_before_writing(fallback, bad):
    """A column that cannot be stored in a later job: nothing of the earlier
    jobs is written either (insert_many's promise, on both paths)."""
    conn = _many_conn()
    jobs = [("INSERT INTO s (c0, c1) VALUES (?, ?)", [[1, 2, 3], "a"], 3),
            ("INSERT INTO t (c0, c1) VALUES (?, ?)", _BAD[bad], 3)]
    with pytest.raises((TypeError, ValueError, OverflowError)):
        _many(conn, jobs, fallback)
    assert _count(conn, "s") == _count(conn, "t") == 0


@pytest.mark.parametrize("fallback", [False, True])
def test_insert_many_stops_at_the_failing_job_and_the_transaction_rolls_back(tmp_path, fallback):
    conn = db.connect(tmp_path / "m.db")
    conn.execute("CREATE TABLE t (c0 UNIQUE, c1); CREATE TABLE s (c0, c1)")
    jobs = [("INSERT INTO s (c0, c1) VALUES (?, ?)", [[1, 2, 3], "a"], None),
            ("INSERT INTO t (c0, c1) VALUES (?, ?)", [[1, 2, 3, 2, 5], "b"], None),
            ("INSERT INTO s (c0, c1) VALUES (?, ?)", [[9], "never"], None)]
    seen = {}
    with pytest.raises(apsw.ConstraintError) as info:
        with db.write_transaction(conn):
            try:
                _many(conn, jobs, fallback)
            finally:
                seen["s"] = conn.execute("SELECT c0 FROM s ORDER BY rowid").fetchall()
                seen["t"] = conn.execute("SELECT c0 FROM t ORDER BY rowid").fetchall()
    assert seen == {"s": [(1,), (2,), (3,)], "t": [(1,), (2,), (3,)]}
    if not fallback:
        assert "INSERT INTO t" in str(info.value) and "row 3" in str(info.value)
    assert _count(conn, "s") == _count(conn, "t") == 0
    conn.close()


def test_insert_many_names_the_job_whose_statement_is_wrong():
    conn = _many_conn()
    jobs = [("INSERT INTO s (c0, c1) VALUES (?, ?)", [[1], "a"], 1),
            ("INSERT INTO t (c0, c1) VALUES (?, ?, ?)", [[1], "a", 2], 1)]
    with pytest.raises(apsw.SQLError, match=r"^INSERT INTO t: preparing: "):
        _sqlbulk.insert_many(conn, jobs)
    assert _count(conn, "s") == 1                     # the first job ran
    jobs[1] = ("INSERT INTO t (c0) VALUES (?); SELECT 1", [[1]], 1)
    with pytest.raises(ValueError, match=r"INSERT INTO t \(c0\) VALUES \(\?\); SELECT 1.*1 parameter"):
        _sqlbulk.insert_many(conn, jobs)


# --- native path = executemany, for any columns ---------------------------------------------------------

_texts = st.text(st.characters(codec="utf-8"), max_size=12)
_i64 = st.integers(INT64_MIN, INT64_MAX)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_NUMERIC = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool", "float16",
            "float32", "float64", ">i8", ">f4"]


@st.composite
def _column(draw, n: int):
    kind = draw(st.sampled_from(["const", "array", "ints", "texts", "floats", "object_texts", "object_ints",
                                 "tuple_ints", "str_array"]))
    if kind == "const":
        return draw(st.one_of(st.none(), _i64, st.floats(allow_nan=False), _texts))
    if kind == "array":
        dtype = np.dtype(draw(st.sampled_from(_NUMERIC)))
        if dtype.kind == "u":
            elements = st.integers(0, min(int(np.iinfo(dtype).max), INT64_MAX))
        elif dtype.kind == "f":
            elements = st.floats(width=8 * dtype.itemsize)
        else:
            elements = None
        return draw(hnp.arrays(dtype, n, elements=elements))
    if kind in ("ints", "tuple_ints", "object_ints"):
        values = draw(st.lists(st.one_of(st.none(), _i64), min_size=n, max_size=n))
        if kind == "tuple_ints":
            return tuple(values)
        return np.array(values + [None], dtype=object)[:n] if kind == "object_ints" else values
    if kind in ("texts", "object_texts"):
        values = draw(st.lists(st.one_of(st.none(), _texts), min_size=n, max_size=n))
        return np.array(values + [None], dtype=object)[:n] if kind == "object_texts" else values
    if kind == "str_array":
        return np.array(draw(st.lists(_texts, min_size=n, max_size=n)), dtype=str)
    return draw(st.lists(_floats, min_size=n, max_size=n))


@st.composite
def _batch(draw):
    n = draw(st.integers(0, 25))
    return n, draw(st.lists(_column(n), min_size=1, max_size=6))


def _copy(columns):
    return [c.copy() if isinstance(c, np.ndarray) else c for c in columns]


@given(_batch())
def test_native_and_executemany_store_the_same_rows(batch):
    n, columns = batch
    ncols = len(columns)
    a, ta, b, tb = _both(_copy(columns), n, ncols)
    assert a == b == n
    assert ta == tb
    assert len(ta) == n


@given(_batch(), st.booleans())
def test_insert_columns_with_n_inferred_stores_the_same_on_both_paths(batch, pass_n):
    n, columns = batch
    ncols = len(columns)
    given_n = n if pass_n or all(c is None or isinstance(c, (str, int, float)) for c in columns) else None
    out = []
    for fallback in (False, True):
        with pytest.MonkeyPatch.context() as mp:
            if fallback:
                mp.setattr(db, "_sqlbulk", False)
            conn = apsw.Connection(":memory:")
            conn.execute(f"CREATE TABLE t ({', '.join(f'c{j}' for j in range(ncols))})")
            with db.write_transaction(conn):
                count = db.insert_columns(conn, _sql(ncols), _copy(columns), given_n)
            if not fallback:
                assert db._sqlbulk is _sqlbulk
            out.append((count, _typed(conn, ncols)))
            conn.close()
    assert out[0] == out[1]
    assert out[0][0] == n


@given(st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=30), st.sampled_from(["IGNORE", "REPLACE"]))
def test_conflict_counts_agree_on_both_paths(keys, verb):
    out = []
    for insert in (_native, _fallback):
        conn = _connect(2, ", UNIQUE (c0)")
        conn.execute("INSERT INTO t VALUES (0, 'stored')")
        count = insert(conn, f"INSERT OR {verb} INTO t (c0, c1) VALUES (?, ?)", [keys, [str(k) for k in keys]],
                       len(keys))
        out.append((count, _typed(conn, 2)))
        conn.close()
    assert out[0] == out[1]
    if verb == "IGNORE":
        distinct = {k for k in keys if k is not None} - {0}
        assert out[0][0] == len(distinct) + sum(k is None for k in keys)


# --- a world run, natively and through the fallback ----------------------------------------------------------

def _world(d, fallback: bool, monkeypatch, setup: str):
    with monkeypatch.context() as mp:
        if fallback:
            mp.setattr(db, "_sqlbulk", False)
        d.mkdir()
        if setup == "weekend":
            cfg = wconfig.load_config(overrides={"default_hours.tick_minutes": 30,
                                                 "guardrails.max_actions_per_agent_per_day": 1000})
            seed_friends(d / "world.db")
            result = run_world(d / "world.db", cfg, days=2, agents=14, seed=5,
                               scenario=wconfig.load_scenario(WEEKEND, cfg), report_format="json",
                               reports_dir=d / "reports")
        else:                                     # the same two agents chat every tick: memories repeat
            cfg = wconfig.load_config(write(d / "one.yaml", ONE_PLACE_CONFIG))
            conn = store.connect(d / "world.db")
            for name in ("Ava", "Ben", "Cleo"):
                store.seed_agent(conn, name, interests="chess:0.9")
            conn.close()
            result = run_world(d / "world.db", cfg, days=3, seed=1, report_format="json", reports_dir=d / "reports")
        used = db._sqlbulk
    return result, used


@pytest.mark.parametrize("setup", ["weekend", "one_place"])
def test_a_world_run_stores_the_same_rows_natively_and_through_executemany(tmp_path, monkeypatch, setup):
    monkeypatch.delenv("CHRONOLEDGER_NO_SQLBULK", raising=False)
    native, used = _world(tmp_path / "native", False, monkeypatch, setup)
    assert used is _sqlbulk and _sqlbulk.bound()          # the run really went through C
    fallback, used = _world(tmp_path / "fallback", True, monkeypatch, setup)
    assert used is False
    a, b = dump(tmp_path / "native" / "world.db"), dump(tmp_path / "fallback" / "world.db")
    assert set(a) == set(TABLES)
    for table in TABLES:
        assert a[table] == b[table], table
    assert a["world_events"] and a["conversation_turns"] and a["memories"] and a["relationships"]
    assert a["agent_locations"] and a["agent_schedules"]
    assert (native.events, native.conversations, native.memories) == \
        (fallback.events, fallback.conversations, fallback.memories)
    assert native.memories == len(a["memories"])              # counts of the rows kept by INSERT OR IGNORE
    assert native.events == len(a["world_events"])
    assert native.chronicle.name == fallback.chronicle.name
    assert native.chronicle.read_bytes() == fallback.chronicle.read_bytes()
    assert [p.name for p in native.reports] == [p.name for p in fallback.reports]
    for pa, pb in zip(native.reports, fallback.reports):
        assert pa.read_bytes() == pb.read_bytes()


def test_a_sequence_of_mixed_values_stores_each_as_its_own_type_on_both_paths(conn, monkeypatch):
    mixed = ["a", 3, b"\x00x", 2.5, None, np.int32(-4), np.float64(0.25), True]
    cols = [mixed, list(range(8)), None]
    assert db.insert_columns(conn, _sql(3), cols) == 8
    native = _typed(conn, 3)
    conn.execute("DELETE FROM t")
    monkeypatch.setattr(db, "_sqlbulk", False)
    assert db.insert_columns(conn, _sql(3), cols) == 8
    assert _typed(conn, 3) == native
    assert [row[:2] for row in native] == [("a", "text"), (3, "integer"), (b"\x00x", "blob"), (2.5, "real"),
                                           (None, "null"), (-4, "integer"), (0.25, "real"), (1, "integer")]


@pytest.mark.parametrize("fallback", [False, True])
def test_a_statement_that_only_reads_is_refused(conn, monkeypatch, fallback):
    if fallback:
        monkeypatch.setattr(db, "_sqlbulk", False)
    conn.execute("INSERT INTO t VALUES (1, 2, 3)")
    with pytest.raises(ValueError, match="not one statement that writes rows"):
        db.insert_columns(conn, "SELECT c0 FROM t WHERE c0 = ? OR c1 = ? OR c2 = ?", [[1, 2], 3, 4])
    assert db.insert_columns(conn, "DELETE FROM t WHERE c0 = ? AND c1 = ? AND c2 = ?", [[1, 5], 2, 3]) == 1


def test_binding_leaves_the_callers_connections_alone(conn):
    from chronoledger import _sqlbulk as module

    assert module.bind() and module.bound()
    assert conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1) == 0
    conn.enable_load_extension(True)
    assert db.insert_columns(conn, _sql(3), [[1], 2, 3]) == 1
    assert conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1) == 1     # still as the caller set it
