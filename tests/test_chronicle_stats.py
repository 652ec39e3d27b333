"""chronoledger.chronicle.stats and `chronicle stats`: per-column figures, and
for each metric (or event value) its count, min, max and last value with its timestamp."""

import json

import numpy as np

from chronoledger.chronicle import Chronicle
from chronoledger.chronicle.stats import column_stats
from chronoledger.cli import cli

from _chronicle_util import write_cycles
from _cli import invoke


def _sparse(path):
    """lr at every record, grad_norm at every 3rd (the last at 297), a rare metric at 5 and 50 only."""
    with Chronicle.open(path, "w") as ch:
        for i in range(300):
            metrics = {"lr": 0.5 - i / 1024}
            if i % 3 == 0:
                metrics["grad_norm"] = float((i * 7) % 11)
            if i in (5, 50):
                metrics["rare"] = 2.0 if i == 5 else -1.5
            ch.append(timestamp=1000 + 2 * i, phase="train", loss_value=1.0, coherence=0.5, seed_state=i,
                      metrics=metrics)


def test_each_metric_has_its_count_min_max_and_last_value_with_its_timestamp(tmp_path):
    p = tmp_path / "s.cmeta"
    _sparse(p)
    with Chronicle.open(p) as ch:
        cols = ch.to_numpy()
    stats = column_stats(cols)
    lr, gn, rare = stats["metrics.lr"], stats["metrics.grad_norm"], stats["metrics.rare"]
    stored = cols["metrics.lr"]                  # as the chronicle stores floats (exact, or at a scale)
    assert lr["count"] == 300 and lr["max"] == 0.5 and lr["min"] == float(stored.min()) < 0.21
    assert lr["last"] == float(stored[-1]) == lr["min"] and lr["last_timestamp"] == 1000 + 2 * 299
    expected = [float((i * 7) % 11) for i in range(0, 300, 3)]
    assert gn["count"] == 100 and gn["min"] == min(expected) and gn["max"] == max(expected)
    assert gn["last"] == expected[-1] and gn["last_timestamp"] == 1000 + 2 * 297
    assert rare == {"count": 2, "min": -1.5, "max": 2.0, "mean": 0.25, "last": -1.5, "last_timestamp": 1100}
    # the fixed columns keep their figures, without a last value
    assert set(stats["loss_value"]) == {"count", "min", "max", "mean"}
    assert stats["phase"] == {"distinct": 1, "counts": {"train": 300}}


def test_event_values_have_them_too_and_plain_numbers_for_json(tmp_path):
    p = tmp_path / "e.cmeta"
    with Chronicle.open(p, "w", schema="event") as ch:
        ch.append(timestamp=3, event_type="a", values={"x": 1.0})
        ch.append(timestamp=4, event_type="b")
        ch.append(timestamp=9, event_type="a", values={"x": 0.25, "y": 7.0})
    with Chronicle.open(p) as ch:
        stats = column_stats(ch.to_numpy())
    assert stats["values.x"] == {"count": 2, "min": 0.25, "max": 1.0, "mean": 0.625, "last": 0.25,
                                 "last_timestamp": 9}
    assert stats["values.y"]["last"] == 7.0 and stats["values.y"]["last_timestamp"] == 9
    json.dumps(stats)                                       # plain ints and floats only
    assert all(type(v) in (int, float) for s in stats.values() for k, v in s.items() if k != "counts")


def test_a_metric_column_without_values_has_count_zero():
    cols = {"timestamp": np.array([1, 2], dtype=np.uint64), "metrics.never": np.array([np.nan, np.nan])}
    assert column_stats(cols)["metrics.never"] == {"count": 0}


def test_the_command_prints_the_last_value_and_when(tmp_path):
    p = tmp_path / "s.cmeta"
    _sparse(p)
    r = invoke(cli, ["chronicle", "stats", str(p)])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("metrics.rare:"))
    assert line.strip() == "metrics.rare: count 2, min -1.5, max 2.0, mean 0.25, last -1.5 at timestamp 1100"
    doc = json.loads(invoke(cli, ["chronicle", "stats", str(p), "--json"]).stdout)
    assert doc["columns"]["metrics.grad_norm"]["last_timestamp"] == 1594
    assert abs(doc["columns"]["metrics.lr"]["last"] - (0.5 - 299 / 1024)) < 1e-6


def test_the_standard_test_chronicle(tmp_path):
    p = tmp_path / "c.cmeta"
    write_cycles(p, 250)
    with Chronicle.open(p) as ch:
        cols = ch.to_numpy()
    stats = column_stats(cols)
    present = np.flatnonzero(~np.isnan(cols["metrics.grad_norm"]))
    assert stats["metrics.grad_norm"]["count"] == present.size
    assert stats["metrics.grad_norm"]["last_timestamp"] == int(cols["timestamp"][present[-1]])
    assert stats["metrics.grad_norm"]["last"] == float(cols["metrics.grad_norm"][present[-1]])
