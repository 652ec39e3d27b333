"""Warnings point at the user's line, whatever depth of the library raised them."""

import logging
import threading
import warnings

import pytest

from chronoledger import _warn
from chronoledger.chronicle import Chronicle, ChronicleReader, ChronicleWriter
from chronoledger.chronicle import writer as writer_module

from _chronicle_util import write_cycles


def _torn(tmp_path, schema="cycle"):
    p = tmp_path / f"torn-{schema}.cmeta"
    if schema == "cycle":
        write_cycles(p, 40, block_records=16)
    else:
        with Chronicle.open(p, "w", schema="event", block_records=4) as ch:
            for i in range(10):
                ch.append(timestamp=i, event_type="tick", payload={"i": i})
    with ChronicleReader(p) as r:
        end = r.blocks[-1].end
    p.write_bytes(p.read_bytes()[:end - 3])
    return p


def _only(record) -> warnings.WarningMessage:
    assert len(record) == 1, [str(w.message) for w in record]
    return record[0]


def test_a_torn_tail_dropped_by_chronicle_open_is_attributed_to_the_caller(tmp_path):
    p = _torn(tmp_path)
    with pytest.warns(UserWarning, match="torn tail") as record:
        ch = Chronicle.open(p, "a")                          # the line the warning names
    ch.close()
    w = _only(record)
    assert w.filename == __file__
    assert "Chronicle.open(p, \"a\")" in open(__file__).read().splitlines()[w.lineno - 1]


def test_the_same_warning_from_the_writer_itself_names_the_caller_too(tmp_path):
    p = _torn(tmp_path)
    with pytest.warns(UserWarning, match="torn tail") as record:
        w_ = ChronicleWriter(p, "a")
    w_.close()
    assert _only(record).filename == __file__


def test_a_damaged_footer_warning_names_the_caller(tmp_path):
    p = tmp_path / "footer.cmeta"
    write_cycles(p, 400, block_records=100)
    data = bytearray(p.read_bytes())
    data[len(data) - 30] ^= 1
    p.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="damaged footer") as record:
        Chronicle.open(p, "a").close()
    assert _only(record).filename == __file__


def test_a_store_opening_a_torn_event_log_names_the_users_line(tmp_path):
    from chronoledger.runtime import RuntimeMemoryStore

    log = _torn(tmp_path, "event")
    with pytest.warns(UserWarning, match="torn tail") as record:
        store = RuntimeMemoryStore(tmp_path / "rt.sqlite", events_log=log)
    store.close()
    assert _only(record).filename == __file__


def test_stacklevel_counts_the_package_frames_and_stops_at_the_cli():
    assert _warn.stacklevel() == 1                           # called from outside the package: its own line
    ns = {"__name__": "chronoledger.fake"}
    exec("import warnings\nfrom chronoledger import _warn\n"
         "def inner():\n    warnings.warn('x', UserWarning, stacklevel=_warn.stacklevel())\n"
         "def outer():\n    inner()\n", ns)
    with pytest.warns(UserWarning) as record:
        ns["outer"]()                                        # inner and outer are the package's: this line
    assert _only(record).filename == __file__
    cli = {"__name__": "chronoledger.cli.fake"}
    exec("def command(f):\n    f()\n", cli)
    with pytest.warns(UserWarning) as record:
        cli["command"](ns["outer"])                          # the CLI is the library's user: its line
    assert _only(record).filename == "<string>"


def test_a_warning_in_a_thread_the_library_started_names_the_librarys_line():
    ns = {"__name__": "chronoledger.fake"}
    exec("from chronoledger import _warn\ndef work():\n    _warn.warn('from a thread')\n", ns)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        t = threading.Thread(target=ns["work"])
        t.start()
        t.join()
    w = _only(record)
    assert w.filename == "<string>" and w.lineno == 3            # not threading.py


def test_a_writer_that_fails_to_close_at_exit_is_logged(monkeypatch, caplog):
    class Broken:
        path = "broken.cmeta"

        def close(self):
            raise OSError(28, "No space left on device")

    broken = Broken()
    monkeypatch.setattr(writer_module, "_open_writers", [broken])
    with caplog.at_level(logging.ERROR, logger="chronoledger.chronicle"):
        writer_module._close_open_writers()
    assert [(r.name, r.levelname) for r in caplog.records] == [("chronoledger.chronicle", "ERROR")]
    assert "closing broken.cmeta at exit failed" in caplog.text and "No space left" in caplog.text
