"""chronicle.export: CSV, JSON lines and Parquet, block by block, written atomically."""

import io
import json
import os
import sys
import tracemalloc

import numpy as np
import pytest

from chronoledger.chronicle import Chronicle, ChronicleReader, export
from chronoledger.cli.chronicle_cmds import _rows
from chronoledger.cli.output import write_rows
from chronoledger.errors import ConfigError

from _chronicle_util import write_cycles


def whole_file_rows(path, fmt_name: str) -> bytes:
    """The file as the export wrote it before it streamed: every column of
    to_numpy at once, through the rows `chronicle query` prints."""
    with ChronicleReader(path) as r:
        cols = r.to_numpy()
    text = io.StringIO()
    write_rows(text, _rows(cols), "nl" if fmt_name == "jsonl" else fmt_name, list(cols))
    return text.getvalue().encode()


@pytest.fixture
def varied(tmp_path):
    """Small blocks, metrics that appear late and vanish, names and phases that need quoting, absent actions."""
    p = tmp_path / "varied.cmeta"
    with Chronicle.open(p, "w", block_records=7, config={"lr": 0.5, "layers": [3, 2]}, initial_seed=99) as ch:
        for i in range(100):
            m = {"a": i * 0.1} if i % 3 == 0 else {}
            if i > 40:
                m['late,name"q'] = 1e-5 * i
            if 80 < i < 90:
                m["big"] = 1e8 + i
            ch.append(timestamp=i // 2, phase="tr,ain" if i % 5 else 'va"l', loss_value=0.1 * i, coherence=0.3,
                      tensor_signature=(0.1, -0.2, 1e-5), action_code=None if i % 4 else i % 256,
                      seed_state=2**64 - 1 - i, metrics=m)
    return p


@pytest.mark.parametrize("fmt_name", ["csv", "jsonl"])
def test_text_formats_are_the_rows_of_the_whole_file(varied, tmp_path, fmt_name):
    out = tmp_path / f"out.{fmt_name}"
    assert export(varied, out, fmt_name) == 100
    assert out.read_bytes() == whole_file_rows(varied, fmt_name)


def test_an_event_log_exports_as_its_rows(tmp_path):
    p = tmp_path / "events.cmeta"
    with Chronicle.open(p, "w", schema="event", block_records=5) as ch:
        for i in range(23):
            ch.append(timestamp=i, event_type="évt,x" if i % 2 else "plain",
                      payload={"k": 'ünï"code\n', "i": i}, values={"v": i * 0.25} if i % 3 else {})
    for fmt_name in ("csv", "jsonl"):
        out = tmp_path / f"events.{fmt_name}"
        assert export(p, out, fmt_name) == 23
        assert out.read_bytes() == whole_file_rows(p, fmt_name)


def test_an_empty_chronicle_exports_a_header_only(tmp_path):
    p = tmp_path / "empty.cmeta"
    Chronicle.open(p, "w").close()
    assert export(p, tmp_path / "e.csv", "csv") == 0
    assert (tmp_path / "e.csv").read_text().startswith("timestamp,phase,loss_value,")
    assert export(p, tmp_path / "e.jsonl", "jsonl") == 0 and (tmp_path / "e.jsonl").read_text() == ""


def test_an_output_the_export_cannot_write_is_a_storage_error_naming_it(varied, tmp_path):
    from chronoledger.errors import ExistsError, StorageError
    with pytest.raises(StorageError, match=r"export: .*nowhere.*(No such file|does not exist)"):
        export(varied, tmp_path / "nowhere" / "out.csv", "csv")
    with pytest.raises(StorageError, match="is a folder; name the file to write"):
        export(varied, tmp_path, "csv")
    (tmp_path / "taken.csv").write_text("kept")
    with pytest.raises(ExistsError, match="force"):
        export(varied, tmp_path / "taken.csv", "csv")
    assert (tmp_path / "taken.csv").read_text() == "kept" and not (tmp_path / "nowhere").exists()


def test_an_existing_file_is_refused_without_force_and_replaced_whole_with_it(varied, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("an older export")
    with pytest.raises(FileExistsError, match="force"):
        export(varied, out, "csv")
    assert out.read_text() == "an older export"
    os.chmod(out, 0o640)
    assert export(varied, out, "csv", force=True) == 100
    assert out.read_bytes() == whole_file_rows(varied, "csv")
    assert (os.stat(out).st_mode & 0o777) == 0o640                         # a replaced file keeps its mode
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "varied.cmeta"]     # no temporary file left


def test_a_failed_export_leaves_the_old_file_and_no_temporary(varied, tmp_path, monkeypatch):
    export_module = sys.modules["chronoledger.chronicle.export"]     # the package's `export` is the function
    out = tmp_path / "out.jsonl"
    out.write_text("the old one")

    def broken(reader, names):
        yield from []
        raise OSError("disk full")
    monkeypatch.setattr(export_module, "iter_blocks", broken)
    with pytest.raises(OSError, match="disk full"):
        export(varied, out, "jsonl", force=True)
    assert out.read_text() == "the old one"
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl", "varied.cmeta"]


def test_a_stream_gets_the_same_bytes(varied, tmp_path):
    buf = io.BytesIO()
    assert export(varied, buf, "csv") == 100
    assert buf.getvalue() == whole_file_rows(varied, "csv")
    with ChronicleReader(varied) as r:                  # an open reader is used, and left open
        buf = io.BytesIO()
        assert export(r, buf, "jsonl") == 100
        assert len(r) == 100
    assert buf.getvalue() == whole_file_rows(varied, "jsonl")


def test_parquet_keeps_the_columns_and_the_runs_header(varied, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    assert export(varied, out, "parquet", row_group_records=20) == 100
    table = pq.read_table(out)
    with Chronicle.open(varied) as ch:
        want = ch.to_numpy()
        meta = ch.metadata
    assert table.column_names == list(want)
    assert table.column("timestamp").to_pylist() == want["timestamp"].tolist()
    assert str(table.schema.field("timestamp").type) == "uint64" and str(table.schema.field("loss_value").type) == "float"
    assert np.array_equal(table.column("loss_value").to_numpy(), want["loss_value"])
    assert np.array_equal(table.column("metrics.big").to_numpy(), want["metrics.big"], equal_nan=True)
    assert table.column("action_code").null_count == int((want["action_code"] < 0).sum())
    assert table.column("phase").to_pylist() == want["phase"].tolist()
    kv = pq.read_schema(out).metadata
    assert json.loads(kv[b"chronoledger.config"]) == {"lr": 0.5, "layers": [3, 2]}
    assert json.loads(kv[b"chronoledger.initial_seed"]) == 99
    assert json.loads(kv[b"chronoledger.schema"]) == "cycle" == meta["schema"]
    assert json.loads(kv[b"chronoledger.created_by"]) == meta["created_by"]
    # the blocks of 7 records are gathered into row groups of at least 20
    assert [pq.ParquetFile(out).metadata.row_group(i).num_rows for i in range(pq.ParquetFile(out).num_row_groups)] \
        == [21, 21, 21, 21, 16]


def test_parquet_to_a_stream_that_cannot_tell_its_position(varied):
    pq = pytest.importorskip("pyarrow.parquet")

    class Pipe(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += bytes(b)
            return len(b)

        def tell(self):
            raise OSError("Illegal seek")

    pipe = Pipe()
    assert export(varied, pipe, "parquet") == 100
    assert pq.read_table(io.BytesIO(bytes(pipe.data))).num_rows == 100


def test_an_unknown_format_is_refused(varied, tmp_path):
    with pytest.raises(ConfigError, match="unknown format 'xml'"):
        export(varied, tmp_path / "x.xml", "xml")
    assert not (tmp_path / "x.xml").exists()


def test_memory_does_not_grow_with_the_file(tmp_path):
    """A weak check that cannot be flaky: the peak of Python allocations while
    exporting stays well below what holding the file's decoded columns (let
    alone its rows) takes.  The measured figures are in the report of issue 15."""
    p = tmp_path / "big.cmeta"
    n = 100_000
    with Chronicle.open(p, "w", block_records=1_000) as ch:
        rng = np.random.default_rng(7)
        ch.extend({"timestamp": np.arange(n, dtype=np.uint64), "phase": np.zeros(n, np.int64),
                   "loss_value": rng.random(n), "coherence": rng.random(n),
                   "tensor_signature": rng.random((n, 3)), "action_code": np.full(n, -1, np.int16),
                   "seed_state": rng.integers(0, 2**63, n, dtype=np.uint64)}, labels={"phase": ["train"]})
    with ChronicleReader(p) as r:
        decoded = sum(v.nbytes for v in r.to_numpy().values()) + 8 * n      # + the phase strings' pointers
    out = tmp_path / "big.csv"
    tracemalloc.start()
    try:
        export(p, out, "csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.stat().st_size > decoded
    assert peak < decoded / 3, (peak, decoded)          # holding the whole file took ten times decoded
