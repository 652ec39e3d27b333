"""Pictures of runs: metrics of one or several chronicles against time, with
their phases shaded (``chronoledger chronicle plot``).

    from chronoledger.chronicle.plot import plot_runs

    plot_runs(["a.cmeta", "b.cmeta"], ["loss_value", "metrics.lr"], "runs.png")

Needs matplotlib (``pip install 'chronoledger[plot]'``).  The picture is drawn
on a :class:`matplotlib.figure.Figure` of its own and rendered by Agg (PNG) or
the SVG backend: pyplot, its global figure list and the user's backend
choice are never touched, so this is safe in a notebook, a server thread or
a program that has its own plots.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chronoledger._fsutil import atomic_write_bytes
from chronoledger.chronicle import series
from chronoledger.chronicle.timeaxis import looks_like_epoch_ms
from chronoledger.errors import ConfigError, MissingDependencyError

__all__ = ["FORMATS", "X_AXES", "PlotResult", "plot_runs", "render_plot"]

#: the picture formats, chosen by the output's suffix
FORMATS = ("png", "svg")
#: what the x axis shows: "auto" (dates when the timestamps are epoch ms, else
#: the timestamps), "timestamp" (the timestamps as numbers), "index" (the
#: record's position in its chronicle: 0, 1, 2...)
X_AXES = ("auto", "timestamp", "index")

#: background colours of the phases; other phase names take the next free colour
PHASE_COLOURS = {"train": "tab:blue", "validate": "tab:orange", "dream": "tab:purple"}
_MORE_COLOURS = ("tab:green", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
PHASE_ALPHA = 0.18

@dataclass
class PlotResult:
    """What :func:`plot_runs` drew: the file, its format, the run labels (in
    the order of the files), the metrics (one panel each, top to bottom), the
    records read and the points drawn (after thinning), and the x axis used
    ("time", "timestamp" or "index")."""

    path: Path | None
    format: str
    runs: list[str]
    metrics: list[str]
    records: int
    points: int
    x: str
    phases: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": None if self.path is None else str(self.path), "format": self.format, "runs": self.runs,
                "metrics": self.metrics, "records": self.records, "points": self.points, "x": self.x,
                "phases": self.phases}


def _matplotlib() -> tuple[Any, Any, Any, Any]:
    """matplotlib's Figure, PolyCollection, Patch and dates module, or MissingDependencyError."""
    try:
        # optional (the plot extra), and heavy: imported on use
        import matplotlib.dates as mdates
        from matplotlib.collections import PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError:
        raise MissingDependencyError("plotting needs matplotlib, which is not installed: "
                                     "pip install 'chronoledger[plot]'") from None
    return Figure, PolyCollection, Patch, mdates


def _format_of(output: Path, format: str | None) -> str:
    fmt = (format or output.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"{output}: the picture format comes from the suffix and must be "
                          f"{' or '.join('.' + f for f in FORMATS)}, not {output.suffix or '(none)'!r}")
    return fmt


def _labels(paths: list[Path], configs: list[dict[str, Any] | None]) -> list[str]:
    """The run config's "name" (or "run_name"), else the file's name without
    its suffix; names that clash get their folder's name in front, then a number."""
    out = []
    for p, cfg in zip(paths, configs):
        name = (cfg or {}).get("name") or (cfg or {}).get("run_name")
        out.append(name.strip() if isinstance(name, str) and name.strip() else p.stem)
    first = list(out)
    out = [f"{p.parent.name}/{p.stem}" if first.count(name) > 1 and name == p.stem and p.parent.name else name
           for p, name in zip(paths, first)]
    second = list(out)
    seen: dict[str, int] = {}
    for i, name in enumerate(second):
        if second.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            out[i] = f"{name} ({seen[name]})"
    return out


def _shared_spans(per_run: list[list[tuple[float, float, str]]]) -> list[tuple[float, float, str]]:
    """The stretches where every run is in the same phase (one run: its own)."""
    if len(per_run) == 1:
        return per_run[0]
    if any(not spans for spans in per_run):
        return []
    bounds = np.unique(np.array([v for spans in per_run for s in spans for v in s[:2]], dtype=np.float64))
    found: list[tuple[float, float, str]] = []
    lookups = [(np.array([s[0] for s in spans]), np.array([s[1] for s in spans]), [s[2] for s in spans])
               for spans in per_run]
    for a, b in zip(bounds[:-1], bounds[1:]):
        names: set[str | None] = set()
        for starts, ends, phases in lookups:
            i = int(np.searchsorted(starts, a, "right")) - 1
            names.add(phases[i] if i >= 0 and a < ends[i] else None)
        name = names.pop() if len(names) == 1 else None
        if name is not None:
            if found and found[-1][2] == name and found[-1][1] == a:
                found[-1] = (found[-1][0], float(b), name)
            else:
                found.append((float(a), float(b), name))
    return found


def _phase_colours(names: list[str]) -> dict[str, str]:
    colours = {}
    spare = iter(c for c in _MORE_COLOURS)
    for name in names:
        colours[name] = PHASE_COLOURS.get(name) or next(spare, "tab:gray")
    return colours


def render_plot(paths: Sequence[str | os.PathLike[str]], metrics: Sequence[str], format: str = "png", *,
                labels: Sequence[str] | None = None, x: str = "auto", title: str | None = None,
                log_y: bool = False, size: tuple[float, float] | None = None, dpi: int = 100,
                max_points: int = 10_000) -> tuple[bytes, PlotResult]:
    """The picture :func:`plot_runs` writes, as bytes (and what it shows), without writing a file."""
    Figure, PolyCollection, Patch, mdates = _matplotlib()
    files = [Path(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    metric_names = list(dict.fromkeys(metrics))
    if not files:
        raise ConfigError("plot: name at least one chronicle")
    if not metric_names:
        raise ConfigError("plot: name at least one metric (a column such as loss_value or metrics.lr)")
    if x not in X_AXES:
        raise ConfigError(f"plot: x must be one of {', '.join(X_AXES)}, not {x!r}")
    if format not in FORMATS:
        raise ConfigError(f"plot: format must be one of {', '.join(FORMATS)}, not {format!r}")
    if max_points < 2:
        raise ConfigError(f"plot: max_points must be at least 2, not {max_points}")
    if labels is not None and len(labels) != len(files):
        raise ConfigError(f"plot: {len(labels)} labels for {len(files)} chronicles; give one label per chronicle")

    runs = [series.read_values(path, metric_names) for path in files]
    names = list(labels) if labels is not None else _labels(files, [r.config for r in runs])

    axis = x
    if x == "auto":
        dated = all(looks_like_epoch_ms(int(r.timestamps[0]), int(r.timestamps[-1])) if len(r.timestamps)
                    else True for r in runs) and any(len(r.timestamps) for r in runs)
        axis = "time" if dated else "timestamp"
    xs = []
    for run in runs:
        if axis == "index":
            xs.append(np.arange(len(run.timestamps), dtype=np.float64))
        elif axis == "time":
            xs.append(np.asarray(mdates.date2num(run.timestamps.astype("datetime64[ms]")), dtype=np.float64))
        else:
            xs.append(run.timestamps.astype(np.float64))

    cycle_runs = [(run, xv) for run, xv in zip(runs, xs) if run.phase is not None]
    spans = _shared_spans([series.phase_spans(run.phase, xv) for run, xv in cycle_runs
                           if run.phase is not None]) if cycle_runs else []
    phase_names = list(dict.fromkeys(s[2] for s in spans))
    colours = _phase_colours(phase_names)

    width, height = size or (10.0, 1.2 + 2.6 * len(metric_names))
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(metric_names), 1, sharex=True, squeeze=False)[:, 0]
    points = 0
    lines = []
    for ax, metric in zip(axes, metric_names):
        for name in phase_names:
            rects = [[(a, 0.0), (a, 1.0), (b, 1.0), (b, 0.0)] for a, b, p in spans if p == name]
            coll = PolyCollection(rects, facecolors=colours[name], alpha=PHASE_ALPHA, linewidths=0,
                                  transform=ax.get_xaxis_transform(), zorder=0)
            ax.add_collection(coll, autolim=False)
        for run, xv, name in zip(runs, xs, names):
            tx, ty = series.thin(xv, run.values[metric], max_points)
            points += len(ty)
            (line,) = ax.plot(tx, ty, linewidth=1.2, label=name)
            if ax is axes[0]:
                lines.append(line)
        ax.set_ylabel(metric)
        if log_y:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3, linewidth=0.6)
        if axis == "time":
            ax.xaxis_date()
    axes[-1].set_xlabel({"time": "time (UTC)", "timestamp": "timestamp", "index": "record index"}[axis])
    handles = lines + [Patch(facecolor=colours[p], alpha=min(1.0, PHASE_ALPHA * 2.5), label=p) for p in phase_names]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6), frameon=False)
    if title:
        fig.suptitle(title)

    heading = title or f"{', '.join(metric_names)} of {', '.join(names)}"
    description = f"runs: {', '.join(names)}; metrics: {', '.join(metric_names)}"
    meta: dict[str, Any] = {"Title": heading, "Description": description}
    if format == "svg":
        meta.update({"Keywords": [*names, *metric_names], "Date": None})
    buf = io.BytesIO()
    fig.savefig(buf, format=format, metadata=meta)
    result = PlotResult(path=None, format=format, runs=names, metrics=metric_names,
                        records=sum(len(r.timestamps) for r in runs), points=points, x=axis, phases=phase_names)
    return buf.getvalue(), result


def plot_runs(paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str], metrics: Sequence[str],
              output: str | os.PathLike[str], *, labels: Sequence[str] | None = None, x: str = "auto",
              title: str | None = None, log_y: bool = False, format: str | None = None,
              size: tuple[float, float] | None = None, dpi: int = 100, max_points: int = 10_000) -> PlotResult:
    """Draw ``metrics`` of each chronicle in ``paths`` and write the picture to ``output``.

    - One panel per metric, top to bottom, sharing the x axis; in each, one
      line per chronicle (a run), labelled by the run config's ``name`` (or
      ``run_name``), else by the file's name; ``labels`` gives them instead.
    - Metrics are column names as :meth:`Chronicle.to_numpy` gives them:
      ``loss_value``, ``coherence``, ``tensor_signature.0``..``2``,
      ``action_code``, ``metrics.NAME``, ``values.NAME``.  A column a
      chronicle lacks raises :class:`~chronoledger.errors.QueryError`
      naming it and the columns the chronicle has.  Records that lack a
      metric (NaN) are skipped, so a metric logged every 100 cycles draws as
      one line through its points.
    - Phases of cycle chronicles (train, validate, dream, ...) shade the
      background of every panel, each phase its own colour, in the legend;
      a stretch runs from its first record to the first record of the next.
      With several runs, only the stretches where all of them are in the same
      phase are shaded.  Event logs have no phases.
    - ``x``: "auto" (dates in UTC when every run's timestamps are epoch
      milliseconds, else the timestamps), "timestamp" or "index" (each
      record's position in its file).
    - A run longer than ``max_points`` records is thinned to the lowest and
      highest value of each of ``max_points/2`` buckets, so spikes stay.
    - ``format``: "png" or "svg", by default from the suffix of ``output``.
      The file is replaced atomically (a crash leaves the old picture or the
      new one).  The run labels and metric names are also in the file's
      metadata (the SVG's title, description and keywords; PNG text chunks).

    Needs matplotlib (``pip install 'chronoledger[plot]'``): without it,
    :class:`~chronoledger.errors.MissingDependencyError`.
    """
    out = Path(output)
    fmt = _format_of(out, format)
    data, result = render_plot(paths if not isinstance(paths, (str, os.PathLike)) else [paths], metrics, fmt,
                               labels=labels, x=x, title=title, log_y=log_y, size=size, dpi=dpi,
                               max_points=max_points)
    atomic_write_bytes(out, data)
    result.path = out
    return result
