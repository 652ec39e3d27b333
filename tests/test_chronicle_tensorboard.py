"""chronoledger.chronicle.tensorboard and `chronicle tensorboard export|import`:
event files TensorBoard's own reader reads back scalar for scalar, and
TensorBoard's scalars (TF1 simple values, TF2 tensors) read into an event log."""

import json
import logging
import sys
import time

import numpy as np
import pytest

from chronoledger.chronicle import Chronicle
from chronoledger.chronicle import tensorboard as ctb
from chronoledger.cli import cli
from chronoledger.errors import MissingDependencyError, QueryError, ValidationError

from _chronicle_util import PHASES, write_cycles
from _cli import invoke

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402
from tensorboard.plugins.histogram import summary_v2 as histogram_summary  # noqa: E402
from tensorboard.plugins.scalar import metadata as scalar_metadata  # noqa: E402
from tensorboard.plugins.scalar import summary_v2 as scalar_summary  # noqa: E402
from tensorboard.plugins.text import summary_v2 as text_summary  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

FIXED = ["loss_value", "coherence", "tensor_signature.0", "tensor_signature.1", "tensor_signature.2"]


def tb_scalars(logdir) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar TensorBoard's own EventAccumulator reads from a log folder: tag -> [(step, value, wall time)]."""
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0})         # 0: keep every one
    acc.Reload()
    return {tag: [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def cli_run(*args):
    return invoke(cli, ["chronicle", "tensorboard", *(str(a) for a in args)])


@pytest.fixture(scope="module")
def cycles(tmp_path_factory):
    p = tmp_path_factory.mktemp("tb") / "run.cmeta"
    write_cycles(p, 500, block_records=64)
    with Chronicle.open(p) as ch:
        return p, ch.to_numpy()


# --- export ----------------------------------------------------------------------------------------

def test_every_scalar_comes_back_at_its_step_with_its_float32_value(cycles, tmp_path):
    path, cols = cycles
    before = time.time()
    report = ctb.export_tensorboard(path, tmp_path / "logs")
    after = time.time()
    got = tb_scalars(tmp_path / "logs")
    metrics = [c for c in cols if c.startswith("metrics.")]
    assert sorted(metrics) == ["metrics.grad_norm", "metrics.lr"]
    expected: dict[str, list[tuple[int, float]]] = {}
    for i, ts in enumerate(cols["timestamp"].tolist()):
        for column in FIXED + metrics:
            v = cols[column][i]
            if not np.isnan(v):
                expected.setdefault(f"{cols['phase'][i]}/{column}", []).append((ts, float(np.float32(v))))
    assert set(got) == set(expected) == {f"{p}/{c}" for p in PHASES for c in FIXED + metrics}
    for tag, points in expected.items():
        assert [(step, value) for step, value, _ in got[tag]] == points, tag
    # timestamps 0..499 are not epoch ms: every wall time is the time of the export
    walls = {w for points in got.values() for _, _, w in points}
    assert len(walls) == 1 and before - 1 <= walls.pop() <= after + 1
    assert report.records == report.events == 500 and report.wall_time == "export time"
    assert report.scalars == sum(len(p) for p in expected.values()) and set(report.tags) == set(expected)
    assert (report.first_step, report.last_step) == (0, 499)
    assert report.event_file.parent == tmp_path / "logs" and "tfevents" in report.event_file.name
    assert [p.name for p in (tmp_path / "logs").iterdir()] == [report.event_file.name]


def test_without_the_phase_prefix_the_tags_are_the_column_names(cycles, tmp_path):
    path, cols = cycles
    ctb.export_tensorboard(path, tmp_path / "plain", phase_prefix=False)
    got = tb_scalars(tmp_path / "plain")
    assert set(got) == set(FIXED) | {"metrics.lr", "metrics.grad_norm"}
    assert [(s, v) for s, v, _ in got["loss_value"]] == \
        [(int(t), float(np.float32(v))) for t, v in zip(cols["timestamp"], cols["loss_value"])]
    grad = ~np.isnan(cols["metrics.grad_norm"])
    assert [s for s, _, _ in got["metrics.grad_norm"]] == cols["timestamp"][grad].tolist()


def test_epoch_ms_timestamps_are_the_wall_times_and_event_values_are_exported(tmp_path):
    p = tmp_path / "events.cmeta"
    base = 1_767_225_600_000
    with Chronicle.open(p, "w", schema="event") as ch:
        for i in range(40):
            ch.append(timestamp=base + 250 * i, event_type="fast" if i % 4 else "slow",
                      values={"latency": 0.5 + i / 64} if i % 5 else {})
    report = ctb.export_tensorboard(p, tmp_path / "ev")
    got = tb_scalars(tmp_path / "ev")
    assert report.wall_time == "timestamps" and set(got) == {"fast/values.latency", "slow/values.latency"}
    points = sorted(pt for pts in got.values() for pt in pts)
    want = [(base + 250 * i, float(np.float32(0.5 + i / 64)), (base + 250 * i) / 1000) for i in range(40) if i % 5]
    assert [(s, v) for s, v, _ in points] == [(s, v) for s, v, _ in want]
    assert all(w == pytest.approx(ww, abs=1e-6) for (_, _, w), (_, _, ww) in zip(points, want))
    # events without a value are no events
    assert report.records == 40 and report.events == len(want)
    ctb.export_tensorboard(p, tmp_path / "now", wall_time="now")
    assert all(abs(w - time.time()) < 60 for pts in tb_scalars(tmp_path / "now").values() for _, _, w in pts)


def test_a_folder_with_event_files_is_refused_unless_forced(cycles, tmp_path):
    path, _ = cycles
    logs = tmp_path / "logs"
    first = ctb.export_tensorboard(path, logs).event_file
    (logs / "sub").mkdir()
    other = logs / "sub" / "events.out.tfevents.1.other"
    other.write_bytes(b"")
    (logs / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds TensorBoard event files already"):
        ctb.export_tensorboard(path, logs)
    r = cli_run("export", path, "-o", logs)
    assert r.exit_code == 2 and "--force" in r.stderr
    report = ctb.export_tensorboard(path, logs, force=True)          # in the same second, too
    assert report.replaced == [first.name] and not first.exists() and report.event_file.exists()
    assert sorted(p.name for p in logs.iterdir()) == sorted([report.event_file.name, "notes.txt", "sub"])
    assert other.exists()                 # a subfolder is another run: left alone
    train = sum(1 for p in cycles[1]["phase"] if p == "train")
    assert len(tb_scalars(logs)["train/loss_value"]) == train        # one copy of each scalar


def test_a_timestamp_beyond_tensorboards_steps_is_refused(tmp_path):
    p = tmp_path / "big.cmeta"
    with Chronicle.open(p, "w", schema="event") as ch:
        ch.append(timestamp=5, event_type="a", values={"x": 1.0})
        ch.append(timestamp=2**63, event_type="a", values={"x": 2.0})
    with pytest.raises(ValidationError, match="record 1 has timestamp 9223372036854775808"):
        ctb.export_tensorboard(p, tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_the_export_command(cycles, tmp_path):
    path, _ = cycles
    r = cli_run("export", path, "-o", tmp_path / "logs", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["records"] == 500 and "train/loss_value" in doc["tags"] and doc["wall_time"] == "export time"
    r = cli_run("export", path, "-o", tmp_path / "plain", "--no-phase-prefix")
    assert r.exit_code == 0 and r.stdout.startswith(f"wrote {tmp_path / 'plain'}/events.out.tfevents.")
    assert "loss_value" in tb_scalars(tmp_path / "plain")


# --- import ----------------------------------------------------------------------------------------

def _event(step, wall, *values):
    return event_pb2.Event(step=step, wall_time=wall, summary=summary_pb2.Summary(value=list(values)))


def write_tf1(logdir, scalars, wall=1000.0):
    """TF1 (and PyTorch's) simple values, through tensorboard's own event-file writer."""
    w = EventFileWriter(str(logdir))
    for step, tag, value in scalars:
        w.add_event(_event(step, wall + step, summary_pb2.Summary.Value(tag=tag, simple_value=value)))
    w.close()


def write_tf2(logdir, scalars, wall=2000.0):
    """TF2's form: tensor summaries of the scalars plugin, the metadata on each tag's first value only;
    a histogram and a text summary beside them, which are not scalars."""
    w = EventFileWriter(str(logdir))
    seen = set()
    for step, tag, value in scalars:
        v = summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(value)))
        if tag not in seen:
            v.metadata.CopyFrom(scalar_metadata.create_summary_metadata(display_name=tag, description=""))
            seen.add(tag)
        w.add_event(_event(step, wall + step, v))
    w.add_event(event_pb2.Event(step=1, wall_time=wall, summary=histogram_summary.histogram_pb("h", [1.0, 2.0])))
    w.add_event(event_pb2.Event(step=1, wall_time=wall, summary=text_summary.text_pb("notes", "hello")))
    w.add_event(event_pb2.Event(step=2, wall_time=wall, summary=scalar_summary.scalar_pb("v2/pb", 0.75)))
    w.close()


@pytest.fixture
def logdir(tmp_path):
    d = tmp_path / "logs"
    write_tf1(d / "run1", [(s, "loss", 1.0 / (s + 1)) for s in range(0, 20, 2)] + [(3, "lr", 0.125)])
    write_tf2(d / "run2" / "train", [(s, "loss", 2.0 - s / 8) for s in range(5)] + [(4, "acc", 0.5)])
    return d


def test_scalars_of_both_forms_become_an_event_log(logdir, tmp_path):
    out = tmp_path / "tb.cmeta"
    report = ctb.import_tensorboard([logdir], out)
    assert report.runs == ["run1", "run2/train"] and report.files == 2
    assert set(report.tags) == {"loss", "lr", "acc", "v2/pb"}
    with Chronicle.open(out) as ch:
        assert ch.schema == "event"
        records = list(ch)
        cols = ch.to_numpy()
    ts = cols["timestamp"].tolist()
    assert ts == sorted(ts) and report.records == len(records)
    by = {(r.timestamp, r.event_type): r for r in records}
    for s in range(0, 20, 2):
        r = by[(s, "run1")]
        assert r.values["loss"] == float(np.float32(1.0 / (s + 1))) and r.payload == {"wall_time": 1000.0 + s}
    assert by[(3, "run1")].values == {"lr": 0.125}
    for s in range(5):
        assert by[(s, "run2/train")].values["loss"] == float(np.float32(2.0 - s / 8))
    assert by[(4, "run2/train")].values["acc"] == 0.5 and by[(2, "run2/train")].values["v2/pb"] == 0.75
    assert "h" not in report.tags and "notes" not in report.tags           # not scalars
    assert report.scalars == 10 + 1 + 5 + 1 + 1 == sum(len(r.values) for r in records)
    assert set(cols) >= {"values.loss", "values.lr", "values.acc", "values.v2/pb"}
    assert report.first_step == 0 and report.last_step == 18 and report.incomplete_files == []


def test_runs_are_named_as_tensorboard_names_them(logdir, tmp_path):
    one = ctb.import_tensorboard(logdir / "run2" / "train", tmp_path / "a.cmeta")
    assert one.runs == ["."]
    files = sorted((logdir / "run1").iterdir()) + sorted((logdir / "run2" / "train").iterdir())
    two = ctb.import_tensorboard(files, tmp_path / "b.cmeta")
    assert two.runs == ["run1", "run2/train"]


def test_tags_pick_scalars_by_name_or_pattern(logdir, tmp_path):
    report = ctb.import_tensorboard([logdir], tmp_path / "t.cmeta", tags=["lo*", "acc"])
    assert set(report.tags) == {"loss", "acc"}
    with Chronicle.open(tmp_path / "t.cmeta") as ch:
        assert not any(c in ch.to_numpy() for c in ("values.lr", "values.v2/pb"))
    with pytest.raises(QueryError) as err:
        ctb.import_tensorboard([logdir], tmp_path / "u.cmeta", tags=["loss", "nothing*"])
    assert "'nothing*'" in str(err.value) and "acc, loss, lr, v2/pb" in str(err.value)
    assert not (tmp_path / "u.cmeta").exists()


def test_an_existing_output_is_refused_unless_forced(logdir, tmp_path):
    out = tmp_path / "o.cmeta"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="exists already"):
        ctb.import_tensorboard([logdir], out)
    assert out.read_bytes() == b"keep me"
    r = cli_run("import", logdir, "-o", out)
    assert r.exit_code == 2 and "--force" in r.stderr and out.read_bytes() == b"keep me"
    r = cli_run("import", logdir, "-o", out, "--force", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["runs"] == ["run1", "run2/train"]
    with Chronicle.open(out) as ch:
        assert len(ch) == json.loads(r.stdout)["records"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "o.cmeta"]        # no temporary left


def test_a_torn_event_file_is_read_as_far_as_tensorboard_reads_it(tmp_path, caplog):
    d = tmp_path / "torn"
    write_tf1(d, [(s, "loss", float(s)) for s in range(10)])
    (f,) = d.iterdir()
    data = f.read_bytes()
    f.write_bytes(data[:-7])              # the last record cut short
    with caplog.at_level(logging.WARNING, logger="chronoledger.chronicle"):
        report = ctb.import_tensorboard(d, tmp_path / "t.cmeta")
    assert report.records == 9 and report.incomplete_files == [f.name]
    assert "the rest of the file is not imported" in caplog.text
    r = cli_run("import", d, "-o", tmp_path / "t2.cmeta")
    assert r.exit_code == 0 and f"incomplete: {f.name}" in r.stdout


def test_non_finite_scalars_are_skipped_and_negative_steps_refused(tmp_path):
    write_tf1(tmp_path / "nan", [(0, "loss", 1.0), (1, "loss", float("nan")), (2, "loss", float("inf"))])
    report = ctb.import_tensorboard(tmp_path / "nan", tmp_path / "n.cmeta")
    assert report.records == 1 and report.non_finite == 2
    write_tf1(tmp_path / "neg", [(-1, "loss", 1.0)])
    with pytest.raises(ValidationError, match="step -1"):
        ctb.import_tensorboard(tmp_path / "neg", tmp_path / "g.cmeta")
    assert not (tmp_path / "g.cmeta").exists()


def test_a_folder_without_event_files_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli_run("import", tmp_path / "empty", "-o", tmp_path / "x.cmeta")
    assert r.exit_code == 3 and "no TensorBoard event files" in r.stderr


def test_export_then_import_gives_back_every_value(cycles, tmp_path):
    path, cols = cycles
    ctb.export_tensorboard(path, tmp_path / "logs" / "run")
    report = ctb.import_tensorboard(tmp_path / "logs", tmp_path / "back.cmeta", tags=["*/loss_value"])
    with Chronicle.open(tmp_path / "back.cmeta") as ch:
        back = ch.to_numpy()
    assert report.runs == ["run"] and back["timestamp"].tolist() == cols["timestamp"].tolist()
    for phase in PHASES:
        mine = cols["phase"] == phase
        got = back[f"values.{phase}/loss_value"]
        assert np.array_equal(got[mine], cols["loss_value"][mine].astype(np.float64))
        assert np.isnan(got[~mine]).all()


# --- without the package ---------------------------------------------------------------------------

def test_without_tensorboard_the_error_names_the_extra(cycles, tmp_path, monkeypatch):
    path, _ = cycles
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")] + ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)                # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'chronoledger\[tensorboard\]'"):
        ctb.export_tensorboard(path, tmp_path / "logs")
    with pytest.raises(MissingDependencyError, match=r"pip install 'chronoledger\[tensorboard\]'"):
        ctb.import_tensorboard(tmp_path, tmp_path / "x.cmeta")
    for args in (["export", path, "-o", tmp_path / "logs"], ["import", tmp_path, "-o", tmp_path / "x.cmeta"]):
        r = cli_run(*args)
        assert r.exit_code == 2 and "pip install 'chronoledger[tensorboard]'" in r.stderr
    assert not (tmp_path / "logs").exists() and not (tmp_path / "x.cmeta").exists()
