"""Checkpoints and --resume: a stopped run goes on from its last whole tick
as if it had never stopped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _world_data import dump, rows
from chronoledger.chronicle import Chronicle
from chronoledger.errors import NotFoundError
from chronoledger.world import models, scheduler
from chronoledger.world.config import load_config
from chronoledger.world.replay import replay

OPTIONS = {"days": 2, "agents": 25, "seed": 11, "report_format": "json"}


def events(log) -> dict:
    with Chronicle.open(log) as ch:
        return ch.to_numpy()


def same_events(a, b) -> bool:
    return set(a) == set(b) and all(list(a[k]) == list(b[k]) if a[k].dtype == object else
                                    ((a[k] == b[k]) | ((a[k] != a[k]) & (b[k] != b[k]))).all() for k in a)


def assert_same_run(want: Path, got: Path) -> None:
    """The run in ``got`` (resumed) stored, logged and reported what the one in ``want`` did."""
    expected, stored = dump(want / "w.db"), dump(got / "w.db")
    for table in expected:
        if table != "runs":
            assert stored[table] == expected[table], table
    assert same_events(events(want / "w-run-1.cmeta"), events(got / "w-run-1.cmeta"))
    for report in (want / "reports").iterdir():                      # whole days, even the cut one
        assert (got / "reports" / report.name).read_text() == report.read_text(), report.name
    assert replay(got / "w-run-1.cmeta").matches


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    d = tmp_path_factory.mktemp("whole")
    scheduler.run(d / "w.db", load_config(), models.make_model("offline"),
                  scheduler.RunOptions(reports_dir=d / "reports", **OPTIONS))
    return d


def stop_at(day: int, tick: int):
    original = scheduler.WorldRun.tick

    def tick_then_stop(self, d, t):
        if (d, t) == (day, tick):
            raise KeyboardInterrupt
        return original(self, d, t)
    return tick_then_stop


@pytest.mark.parametrize("day, tick", [(1, 5), (1, 11), (2, 0)])
def test_a_resumed_run_equals_one_that_never_stopped(uninterrupted, tmp_path, monkeypatch, day, tick):
    monkeypatch.setattr(scheduler.WorldRun, "tick", stop_at(day, tick))
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"),
                      scheduler.RunOptions(reports_dir=tmp_path / "reports", **OPTIONS))
    monkeypatch.undo()
    assert rows(tmp_path / "w.db", "SELECT status FROM runs") == [("stopped",)]
    result = scheduler.resume(tmp_path / "w.db", models.make_model("offline"), reports_dir=tmp_path / "reports")
    assert result.run_id == 1
    assert_same_run(uninterrupted, tmp_path)


def test_two_copies_of_a_stopped_run_resume_alike_and_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(scheduler.WorldRun, "tick", stop_at(1, 7))
    a = tmp_path / "a"
    a.mkdir()
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(a / "w.db", load_config(), models.make_model("offline"), scheduler.RunOptions(**OPTIONS))
    monkeypatch.undo()
    shutil.copytree(a, tmp_path / "b")
    for d in ("a", "b"):
        scheduler.resume(tmp_path / d / "w.db", models.make_model("offline"))
    assert dump(tmp_path / "a" / "w.db") == dump(tmp_path / "b" / "w.db")
    assert (tmp_path / "a" / "w-run-1.cmeta").read_bytes() == (tmp_path / "b" / "w-run-1.cmeta").read_bytes()
    with pytest.raises(NotFoundError, match="no unfinished run"):
        scheduler.resume(tmp_path / "a" / "w.db", models.make_model("offline"))


def test_a_run_killed_with_sigkill_resumes_to_the_same_end(uninterrupted, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from chronoledger.world import models, scheduler
        from chronoledger.world.config import load_config
        original = scheduler.WorldRun.tick
        def slow(self, d, t):
            r = original(self, d, t)
            print(d, t, flush=True)
            return r
        scheduler.WorldRun.tick = slow
        scheduler.run({str(tmp_path / 'w.db')!r}, load_config(), models.make_model("offline"),
                      scheduler.RunOptions(reports_dir={str(tmp_path / 'reports')!r}, **{OPTIONS!r}))
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    for _ in range(8):                       # a few whole ticks, then the kill lands anywhere in the next
        p.stdout.readline()
    time.sleep(0.003)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert rows(tmp_path / "w.db", "SELECT status FROM runs") == [("running",)]
    scheduler.resume(tmp_path / "w.db", models.make_model("offline"), reports_dir=tmp_path / "reports")
    assert_same_run(uninterrupted, tmp_path)


def test_a_tick_logged_but_never_committed_is_cut_from_the_log_and_run_again(uninterrupted, tmp_path, monkeypatch):
    original = scheduler.WorldRun._checkpoint

    def fail_once(self, day, tick, *snapshot):
        if (day, tick) == (1, 6):            # the tick's events are in the log; its transaction rolls back
            raise OSError("disk full")
        return original(self, day, tick, *snapshot)
    monkeypatch.setattr(scheduler.WorldRun, "_checkpoint", fail_once)
    with pytest.raises(OSError):
        scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"),
                      scheduler.RunOptions(reports_dir=tmp_path / "reports", **OPTIONS))
    monkeypatch.undo()
    logged = len(events(tmp_path / "w-run-1.cmeta")["timestamp"])
    ticks = rows(tmp_path / "w.db", "SELECT max(tick_index) FROM world_events")[0][0]
    assert ticks == 5 and logged > 0
    scheduler.resume(tmp_path / "w.db", models.make_model("offline"), reports_dir=tmp_path / "reports")
    assert_same_run(uninterrupted, tmp_path)


def test_resume_refuses_another_model_and_ids_another_run_took(tmp_path, monkeypatch):
    from chronoledger.errors import ConfigError

    monkeypatch.setattr(scheduler.WorldRun, "tick", stop_at(1, 6))
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"), scheduler.RunOptions(**OPTIONS))
    monkeypatch.undo()

    class Other(models.OfflineModel):
        name = "other"
    with pytest.raises(ConfigError, match="made with the offline model"):
        scheduler.resume(tmp_path / "w.db", Other())
    scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"),
                  scheduler.RunOptions(days=1, agents=25, seed=3, report_format="none"))
    with pytest.raises(ConfigError, match="has taken the conversation ids"):
        scheduler.resume(tmp_path / "w.db", models.make_model("offline"), run_id=1)


def test_a_writer_that_fails_while_the_log_is_ticks_ahead_resumes_to_the_same_end(uninterrupted, tmp_path,
                                                                                 monkeypatch):
    # The writer holds tick 6 until the scheduler has logged tick 8 (two ticks further), then fails it:
    # nothing from tick 6 on commits, the log is cut back to tick 5's checkpoint, and resume redoes the rest.
    import threading

    from chronoledger.world.rows import TickRows

    original_commit, original_log = scheduler.WorldRun.commit_tick, TickRows.log_tick
    logged_ahead = threading.Event()
    seen = []

    def commit(self, job):
        if (job.day, job.tick) == (1, 6):
            assert logged_ahead.wait(30), "the scheduler never got ahead of the writer"
            raise OSError("disk full")
        seen.append((job.day, job.tick))
        return original_commit(self, job)

    def log_tick(self, chronicle, decision, *rest):
        original_log(self, chronicle, decision, *rest)
        if (decision.day, decision.tick) == (1, 8):
            logged_ahead.set()               # ticks 6 to 8 are in the log, tick 6 not committed
    monkeypatch.setattr(scheduler.WorldRun, "commit_tick", commit)
    monkeypatch.setattr(TickRows, "log_tick", log_tick)
    with pytest.raises(OSError, match="disk full"):
        scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"),
                      scheduler.RunOptions(reports_dir=tmp_path / "reports", **OPTIONS))
    monkeypatch.undo()
    assert seen == [(1, t) for t in range(6)]                          # nothing after the failure committed
    assert rows(tmp_path / "w.db", "SELECT max(tick_index), count(DISTINCT tick_index) FROM world_events") == [(5, 6)]
    assert rows(tmp_path / "w.db", "SELECT status FROM runs") == [("stopped",)]
    log = events(tmp_path / "w-run-1.cmeta")
    assert {7, 8} <= set(log["values.tick"][~(log["values.tick"] != log["values.tick"])].astype(int).tolist())
    scheduler.resume(tmp_path / "w.db", models.make_model("offline"), reports_dir=tmp_path / "reports")
    assert_same_run(uninterrupted, tmp_path)


def test_ctrl_c_lets_the_ticks_already_handed_to_the_writer_commit(tmp_path, monkeypatch):
    # The writer is held back; Ctrl-C comes on tick 2.  Ticks 0 and 1 were handed over: both commit, and
    # only then does the scheduler's thread touch the connection (to mark the run stopped).
    import threading

    from chronoledger.world import store

    original_commit, original_tick, original_connect = \
        scheduler.WorldRun.commit_tick, scheduler.WorldRun.tick, store.connect
    release = threading.Event()
    statements = []

    def connect(*args, **kwargs):
        conn = original_connect(*args, **kwargs)
        conn.setexectrace(lambda cursor, sql, bindings: statements.append((threading.current_thread().name,
                                                                            sql.split()[0].upper())) or True)
        return conn

    def slow_commit(self, job):
        release.wait(30)
        return original_commit(self, job)

    def tick_then_stop(self, d, t):
        if (d, t) == (1, 2):
            release.set()
            raise KeyboardInterrupt
        return original_tick(self, d, t)
    monkeypatch.setattr(store, "connect", connect)
    monkeypatch.setattr(scheduler.WorldRun, "commit_tick", slow_commit)
    monkeypatch.setattr(scheduler.WorldRun, "tick", tick_then_stop)
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"),
                      scheduler.RunOptions(reports_dir=tmp_path / "reports", **OPTIONS))
    assert rows(tmp_path / "w.db", "SELECT DISTINCT tick_index FROM world_events ORDER BY 1") == [(0,), (1,)]
    assert json.loads(rows(tmp_path / "w.db", "SELECT checkpoint_json FROM runs")[0][0])["tick"] == 1
    assert rows(tmp_path / "w.db", "SELECT status FROM runs") == [("stopped",)]
    writer_commits = [k for k, (thread, verb) in enumerate(statements) if thread == "world-writer" and verb == "COMMIT"]
    stopped = [k for k, (thread, verb) in enumerate(statements) if thread != "world-writer" and verb == "UPDATE"]
    assert len(writer_commits) == 2 and stopped and stopped[-1] > writer_commits[-1]


def test_a_checkpoint_holds_its_own_tick_even_when_the_writer_lags(tmp_path, monkeypatch):
    # The writer is slower than the scheduler, so the next tick adds to the day's tally before the
    # checkpoint is stored: what is stored must still be the state after the checkpoint's own tick.
    import json

    original = scheduler.WorldRun._checkpoint
    stored = []

    def slow_checkpoint(self, day, tick, state, arrays):
        time.sleep(0.03)
        original(self, day, tick, state, arrays)
        stored.append(json.loads(json.dumps(state, default=int)))          # what was written, as written
    monkeypatch.setattr(scheduler.WorldRun, "_checkpoint", slow_checkpoint)
    scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"),
                  scheduler.RunOptions(reports_dir=tmp_path / "reports", **OPTIONS))
    assert len(stored) == 24
    seen_later = 0
    for cp in stored:
        ticks = [t["tick"] for t in cp["tally"]["transcripts"]]
        assert all(t <= cp["tick"] for t in ticks), (cp["day"], cp["tick"], ticks)
        seen_later += any(t == cp["tick"] for t in ticks)
    assert seen_later > 0                                   # the check looked at transcripts at all


def test_a_run_stopped_in_its_first_tick_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(scheduler.WorldRun, "tick", stop_at(1, 0))
    with pytest.raises(KeyboardInterrupt):
        scheduler.run(tmp_path / "w.db", load_config(), models.make_model("offline"), scheduler.RunOptions(**OPTIONS))
    monkeypatch.undo()
    with pytest.raises(NotFoundError, match="run 1 stopped before its first tick; start it again"):
        scheduler.resume(tmp_path / "w.db", models.make_model("offline"))
