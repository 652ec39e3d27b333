"""chronoledger.chronicle.plot and `chronicle plot`: PNG and SVG pictures of
one or several runs, phases shaded, written atomically, matplotlib optional."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from chronoledger.chronicle import Chronicle
from chronoledger.chronicle import plot as cplot
from chronoledger.chronicle import series
from chronoledger.cli import cli
from chronoledger.errors import ConfigError, MissingDependencyError, QueryError

from _chronicle_util import write_cycles
from _cli import invoke

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    a, b = d / "first.cmeta", d / "second.cmeta"
    write_cycles(a, 300)
    write_cycles(b, 200, config={"name": "tuned lr"})
    return a, b


def run(*args):
    return invoke(cli, ["chronicle", "plot", *(str(a) for a in args)])


def svg_keywords(data: bytes) -> list[str]:
    root = ET.fromstring(data)            # the SVG is well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return [li.text for subject in root.iter(f"{DC}subject") for li in subject.iter(f"{RDF}li")]


def test_a_png_is_written(runs, tmp_path):
    out = tmp_path / "one.png"
    result = cplot.plot_runs(runs[0], ["loss_value", "metrics.lr"], out)
    data = out.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    assert result.path == out and result.format == "png" and result.runs == ["first"]
    assert result.metrics == ["loss_value", "metrics.lr"] and result.records == 300
    assert result.points == 600 and result.x == "timestamp"
    assert result.phases == ["train", "validate", "dream"]
    assert [p.name for p in tmp_path.iterdir()] == ["one.png"]           # no temporary file left


def test_an_svg_of_several_runs_is_xml_that_names_each_run(runs, tmp_path):
    out = tmp_path / "two.svg"
    result = cplot.plot_runs(list(runs), ["loss_value", "metrics.grad_norm"], out, title="two runs")
    words = svg_keywords(out.read_bytes())
    # the label of a run: the run config's name, else the file's name
    assert result.runs == ["first", "tuned lr"]
    assert {"first", "tuned lr", "loss_value", "metrics.grad_norm"} <= set(words)
    # grad_norm is present in one record of three: only those are drawn
    assert result.points == 300 + 200 + len(range(0, 300, 3)) + len(range(0, 200, 3))


def test_labels_can_be_given_and_clashing_file_names_are_told_apart(runs, tmp_path):
    out = tmp_path / "l.svg"
    cplot.plot_runs(list(runs), ["coherence"], out, labels=["baseline", "candidate"])
    assert {"baseline", "candidate"} <= set(svg_keywords(out.read_bytes()))
    with pytest.raises(ConfigError, match="1 labels for 2 chronicles"):
        cplot.plot_runs(list(runs), ["coherence"], out, labels=["only one"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_cycles(tmp_path / "a" / "run.cmeta", 20)
    write_cycles(tmp_path / "b" / "run.cmeta", 20)
    result = cplot.plot_runs([tmp_path / "a" / "run.cmeta", tmp_path / "b" / "run.cmeta"], ["coherence"], out)
    assert result.runs == ["a/run", "b/run"]


def test_a_missing_metric_names_itself_and_the_columns_there_are(runs, tmp_path):
    out = tmp_path / "x.png"
    with pytest.raises(QueryError) as err:
        cplot.plot_runs(list(runs), ["loss_value", "metrics.nope"], out)
    text = str(err.value)
    assert "'metrics.nope'" in text and str(runs[0]) in text
    for column in ("loss_value", "coherence", "tensor_signature.0", "metrics.lr", "metrics.grad_norm"):
        assert column in text
    assert "phase" not in text.split("the columns it has:")[1]          # not something to plot
    assert not out.exists()
    r = run(*runs, "-m", "metrics.nope", "-o", out)
    assert r.exit_code == 2 and "'metrics.nope'" in r.stderr and "metrics.lr" in r.stderr
    assert not out.exists()


def test_the_format_comes_from_the_suffix(runs, tmp_path):
    with pytest.raises(ConfigError, match=r"\.png or \.svg"):
        cplot.plot_runs(runs[0], ["loss_value"], tmp_path / "x.jpg")
    r = run(runs[0], "-m", "loss_value", "-o", tmp_path / "x.gif")
    assert r.exit_code == 2 and ".png or .svg" in r.stderr


def test_a_picture_replaces_the_old_one_atomically_and_a_failure_leaves_it(runs, tmp_path):
    out = tmp_path / "p.png"
    out.write_bytes(b"old picture")
    with pytest.raises(QueryError):
        cplot.plot_runs(runs[0], ["metrics.nope"], out)
    assert out.read_bytes() == b"old picture"
    cplot.plot_runs(runs[0], ["loss_value"], out)
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_epoch_ms_timestamps_draw_as_dates_and_event_logs_have_no_phases(tmp_path):
    p = tmp_path / "ms.cmeta"
    with Chronicle.open(p, "w", schema="event") as ch:
        for i in range(50):
            ch.append(timestamp=1_767_225_600_000 + 60_000 * i, event_type="tick", values={"x": float(i % 7)})
    result = cplot.plot_runs(p, ["values.x"], tmp_path / "ms.svg")
    assert result.x == "time" and result.phases == []
    assert cplot.plot_runs(p, ["values.x"], tmp_path / "ms.svg", x="timestamp").x == "timestamp"
    assert cplot.plot_runs(p, ["values.x"], tmp_path / "ms.svg", x="index").x == "index"


def test_the_command_prints_what_it_drew(runs, tmp_path):
    out = tmp_path / "c.png"
    r = run(*runs, "-m", "loss_value", "--metric", "metrics.lr", "-o", out, "--title", "t", "--log-y")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"wrote {out}: loss_value, metrics.lr of 2 runs (first, tuned lr)")
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    doc = json.loads(run(runs[0], "-m", "coherence", "-o", tmp_path / "c.svg", "--json").stdout)
    assert doc["format"] == "svg" and doc["runs"] == ["first"] and doc["metrics"] == ["coherence"]


def test_without_matplotlib_the_error_names_the_extra(runs, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)                # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'chronoledger\[plot\]'"):
        cplot.plot_runs(runs[0], ["loss_value"], tmp_path / "x.png")
    r = run(runs[0], "-m", "loss_value", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "pip install 'chronoledger[plot]'" in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_plotting_leaves_pyplot_and_the_backend_alone(runs, tmp_path):
    """The backend is pyplot's to choose and switch: a plot that never loads pyplot leaves it as it was."""
    code = ("import sys; from chronoledger.chronicle.plot import plot_runs; "
            f"plot_runs({str(runs[0])!r}, ['loss_value'], {str(tmp_path / 'b.png')!r}); "
            f"plot_runs({str(runs[0])!r}, ['loss_value'], {str(tmp_path / 'b.svg')!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('matplotlib.pyplot')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert (tmp_path / "b.png").read_bytes().startswith(PNG_SIGNATURE)


# --- the pieces ------------------------------------------------------------------------------------

def test_thinning_keeps_the_extremes_and_drops_absent_values():
    x = np.arange(100_000, dtype=np.float64)
    y = np.sin(x / 500.0)
    y[12_345] = 40.0                      # a spike
    y[50_000] = -40.0
    y[::7] = np.nan
    tx, ty = series.thin(x, y, 1000)
    assert len(ty) <= 1000 and not np.isnan(ty).any()
    assert 40.0 in ty and -40.0 in ty and np.all(np.diff(tx) > 0)
    sx, sy = series.thin(x[:50], y[:50], 1000)
    assert len(sy) == 50 - len(range(0, 50, 7))


def test_phase_stretches_and_those_runs_share():
    phase = np.array(["train"] * 4 + ["validate"] * 2 + ["train"] * 3, dtype=object)
    x = np.arange(9, dtype=np.float64) * 10
    spans = series.phase_spans(phase, x)
    assert spans == [(0.0, 40.0, "train"), (40.0, 60.0, "validate"), (60.0, 80.0, "train")]
    other = [(0.0, 50.0, "train"), (50.0, 80.0, "validate")]
    assert cplot._shared_spans([spans, other]) == [(0.0, 40.0, "train"), (50.0, 60.0, "validate")]
    assert cplot._shared_spans([spans]) == spans
    assert cplot._shared_spans([spans, []]) == []
