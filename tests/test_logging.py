"""The library reports through logging.getLogger("chronoledger.<area>"), never
by printing; its warnings name the user's line (tests/test_warn.py)."""

import ast
import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path

import chronoledger
from chronoledger.sequence import listener, sample
from chronoledger.sequence.registry import mirror_folder
from chronoledger.sequence.sync import sync

PACKAGE = Path(chronoledger.__file__).resolve().parent
#: docs/agents.md "Logging" lists these
AREAS = {"chronicle", "runtime", "sequence", "tables", "world", "sqlite", "demo", "server"}


def _library_sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not rel.startswith("cli/"):
            yield rel, ast.parse(path.read_text(encoding="utf-8"))


def test_the_library_never_prints_and_never_uses_click():
    for rel, tree in _library_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                text = ast.unparse(node.func)
                assert text not in ("print", "click.echo", "click.secho", "sys.stdout.write", "sys.stderr.write"), \
                    f"{rel}:{node.lineno}: {text}(...) in the library: log it, or return it"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "click" for n in names), f"{rel}:{node.lineno}: imports click"


def test_every_logger_is_chronoledger_dot_an_area():
    names = set()
    for rel, tree in _library_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "logging.getLogger":
                arg = node.args[0]
                assert isinstance(arg, ast.Constant), f"{rel}:{node.lineno}: name the logger with a literal"
                names.add(arg.value)
    assert names and all(n.startswith("chronoledger.") for n in names), names
    assert {n.split(".", 1)[1] for n in names} <= AREAS, names


def test_every_warning_names_the_users_line():
    """warnings.warn only through chronoledger._warn (or with a stacklevel that it computes)."""
    for rel, tree in _library_sources():
        if rel == "_warn.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "warnings.warn":
                levels = [k for k in node.keywords if k.arg == "stacklevel"]
                assert levels and "stacklevel(" in ast.unparse(levels[0].value), \
                    f"{rel}:{node.lineno}: use chronoledger._warn.warn (a fixed stacklevel is right from one depth only)"


# --- the sequence listener ---------------------------------------------------------------------

def _clock():
    clock = [datetime(2026, 1, 1, 23, 58)]

    def sleep(s):
        clock[0] += timedelta(seconds=s)

    return clock, sleep


def test_the_listener_logs_to_chronoledger_sequence_and_prints_nothing(tmp_path, caplog, capsys):
    user = sample.write_user_folder(tmp_path, items=40, days=10, seed=1)
    clock, sleep = _clock()
    with caplog.at_level(logging.INFO, logger="chronoledger.sequence"):
        listener.listen(user, sleep=sleep, now=lambda: clock[0], cycles=1)
    assert capsys.readouterr() == ("", "")
    messages = [(r.name, r.levelname, r.getMessage()) for r in caplog.records if r.name == "chronoledger.sequence"]
    assert ("chronoledger.sequence", "INFO", "next sync at 2026-01-02T00:00") in messages
    assert any(lvl == "INFO" and m.startswith("synced ") and m.endswith("tendencies.md updated")
               for _, lvl, m in messages)


def test_the_listener_logs_a_bad_setting_as_a_warning_and_a_failed_cycle_as_an_error(tmp_path, caplog,
                                                                                        monkeypatch):
    user = sample.write_user_folder(tmp_path, items=20, days=5, seed=2)
    (user / "Settings" / "Sequence.yml").write_text("sync_time: 'teatime'\n")
    monkeypatch.setattr(listener, "sync", lambda u: 1 / 0)
    clock, sleep = _clock()
    with caplog.at_level(logging.INFO, logger="chronoledger.sequence"):
        listener.listen(user, sleep=sleep, now=lambda: clock[0], cycles=1)
    by_level = {r.levelname: r for r in caplog.records if r.name == "chronoledger.sequence"}
    assert "syncing at 00:00 until it is fixed" in by_level["WARNING"].getMessage()
    failed = by_level["ERROR"]
    assert "sync failed unexpectedly (ZeroDivisionError" in failed.getMessage()
    assert failed.exc_info is not None and failed.exc_info[0] is ZeroDivisionError      # the traceback of a bug


def test_a_log_callback_gets_the_messages_instead(tmp_path, caplog):
    user = sample.write_user_folder(tmp_path, items=20, days=5, seed=2)
    got = []
    with caplog.at_level(logging.DEBUG, logger="chronoledger.sequence"):
        listener.listen(user, once=True, log=got.append)
    assert len(got) == 1 and got[0].startswith("synced ")
    assert not [r for r in caplog.records if r.getMessage() == got[0]]         # not shown twice


def test_a_sync_logs_its_summary_at_info(tmp_path, caplog):
    user = sample.write_user_folder(tmp_path, items=30, days=5, seed=4)
    with caplog.at_level(logging.INFO, logger="chronoledger.sequence"):
        report = sync(user)
    infos = [r.getMessage() for r in caplog.records if r.name == "chronoledger.sequence" and r.levelname == "INFO"]
    assert any(f"synced core, events, memory, behavior, matrix, trends: {report.items} items from {report.files} files" in m
               for m in infos), infos


def test_a_setting_aside_of_an_unreadable_events_database_is_a_warning(tmp_path, caplog):
    user = sample.write_user_folder(tmp_path, items=20, days=5, seed=5)
    sync(user)
    (mirror_folder(user) / "chronos_events.db").write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="chronoledger.sequence"):
        sync(user)
    assert any(r.levelname == "WARNING" and "set aside as chronos_events.db.unreadable-" in r.getMessage()
               for r in caplog.records)


# --- the runtime store --------------------------------------------------------------------------

def test_task_events_missing_from_the_event_log_are_caught_up_with_a_warning(tmp_path, caplog):
    from chronoledger.runtime import RuntimeMemoryStore

    db, log = tmp_path / "rt.sqlite", tmp_path / "rt.cmeta"
    with RuntimeMemoryStore(db, events_log=log) as store:
        store.append_task_event("info", "low", "mirrored")
    with RuntimeMemoryStore(db) as store:                    # as if the mirroring had not happened (a crash)
        store.append_task_event("info", "low", "stored only")
    with caplog.at_level(logging.WARNING, logger="chronoledger.runtime"):
        RuntimeMemoryStore(db, events_log=log).close()
    warned = [r for r in caplog.records if r.name == "chronoledger.runtime"]
    assert len(warned) == 1 and "1 task event(s) were stored but missing from the event log" in warned[0].getMessage()


# --- the world, SQLite ---------------------------------------------------------------------------

def test_a_world_run_logs_its_summary(tmp_path, caplog):
    from chronoledger.world.config import load_config
    from chronoledger.world.models import make_model
    from chronoledger.world.scheduler import RunOptions, run

    with caplog.at_level(logging.INFO, logger="chronoledger.world"):
        result = run(tmp_path / "w.db", load_config(), make_model("offline"),
                     RunOptions(days=1, agents=3, seed=1, report_format="none"))
    assert any(f"run {result.run_id} finished: 1 day(s) of 3 agents, {result.events} events" in r.getMessage()
               for r in caplog.records if r.name == "chronoledger.world")


def test_a_bulk_insert_extension_that_cannot_load_is_a_warning(monkeypatch, caplog):
    import apsw

    from chronoledger import sqlite as db

    monkeypatch.setattr(db, "_sqlbulk", None)
    monkeypatch.delenv("CHRONOLEDGER_NO_SQLBULK", raising=False)
    monkeypatch.delattr(chronoledger, "_sqlbulk", raising=False)
    monkeypatch.setitem(sys.modules, "chronoledger._sqlbulk", None)        # import fails
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE t (a, b)")
    with caplog.at_level(logging.WARNING, logger="chronoledger.sqlite"):
        assert db.insert_columns(conn, "INSERT INTO t VALUES (?, ?)", [[1, 2], "x"]) == 2
    assert [r.name for r in caplog.records] == ["chronoledger.sqlite"]
    assert "bulk inserts go through apsw's executemany" in caplog.text
