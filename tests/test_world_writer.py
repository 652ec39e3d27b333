"""The world's tick writer: jobs in order on one thread, the first failure
stops it and reaches the scheduler."""

from __future__ import annotations

import threading

import pytest
from chronoledger.world.writer import TickWriter


def test_jobs_run_in_order_on_another_thread():
    done, threads = [], set()

    def commit(job):
        done.append(job)
        threads.add(threading.get_ident())
    w = TickWriter(commit)
    for k in range(50):
        w.submit(k)
    w.drain()
    w.close()
    assert done == list(range(50))
    assert threads and threading.get_ident() not in threads


def test_the_first_failure_stops_the_writer_and_is_raised_by_submit_and_drain():
    done = []
    gate = threading.Event()

    def commit(job):
        gate.wait(10)
        if job == 2:
            raise OSError("disk full")
        done.append(job)
    w = TickWriter(commit)
    w.submit(1)
    w.submit(2)
    gate.set()
    with pytest.raises(OSError, match="disk full"):
        w.drain()
    with pytest.raises(OSError, match="disk full"):
        w.submit(3)                          # refused: nothing after a failure is written
    with pytest.raises(OSError, match="disk full"):
        w.drain()
    w.close()
    assert done == [1]


def test_jobs_queued_behind_a_failure_are_dropped():
    done = []
    started, gate = threading.Event(), threading.Event()

    def commit(job):
        started.set()
        gate.wait(10)
        if job == 1:
            raise ValueError("bad row")
        done.append(job)
    w = TickWriter(commit)
    w.submit(1)
    assert started.wait(10)
    w.submit(2)                              # queued while 1 is being written
    gate.set()
    with pytest.raises(ValueError):
        w.drain()
    w.close()
    assert done == []


def test_at_most_one_job_waits_while_another_is_written():
    gate = threading.Event()
    w = TickWriter(lambda job: gate.wait(10))
    w.submit(1)                              # taken by the thread
    w.submit(2)                              # waits in the queue
    third = threading.Thread(target=w.submit, args=(3,))
    third.start()
    third.join(0.3)
    assert third.is_alive()                  # the scheduler is held back, not a queue growing without end
    gate.set()
    third.join(10)
    w.drain()
    w.close()


def test_settle_waits_for_the_job_being_written_through_ctrl_c():
    import os
    import signal
    import time

    done = threading.Event()

    def commit(job):
        time.sleep(0.1)                          # the scheduler's thread is in settle() by now
        os.kill(os.getpid(), signal.SIGINT)      # Ctrl-C while a tick is being written
        time.sleep(0.2)
        done.set()
    w = TickWriter(commit)
    w.submit(1)
    assert w.settle() is None                    # not interrupted, and no failure
    assert done.is_set()
    w.close()


def test_check_raises_a_failure_before_the_next_tick_is_worked_out():
    w = TickWriter(lambda job: (_ for _ in ()).throw(OSError("disk full")))
    w.submit(1)
    w.settle()
    with pytest.raises(OSError, match="disk full"):
        w.check()
    assert isinstance(w.settle(), OSError)
    w.close()
