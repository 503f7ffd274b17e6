"""The report's pictures: PNG files of WIDTH x HEIGHT pixels, drawn with matplotlib's
non-interactive Agg canvas (no display, no pyplot state).

- `best_score_by_trial.png`: each seed's best score so far against the number of trials;
  a dot where the seed came within 1% of its final best.
- `best_params.png`: each seed's best parameters at their positions in the search ranges
  (0 = lower end, 1 = upper end), one line per seed (parallel coordinates), the
  consensus dashed: lines on top of each other mean the seeds agree.
- `score_by_parameter.png`: every trial's score against each searched parameter,
  coloured by seed; penalized trials are left out (their score is a constant).
- `equity.png`: the equity curve of each seed's best parameters and of the consensus on
  the job's candles (only for strategies that give one).
- `walk_forward.png` (a job with walk_forward): each seed's stitched out-of-sample
  equity against its whole-range best on the same candles
  (`cluster.report.walk_forward_plots`);
- the robustness pictures (PBO logits, in-sample vs out-of-sample, Monte Carlo fan,
  sensitivity): `cluster.report.robustness_plots`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cluster.report.backtests import EnsembleData, equity_curves
from cluster.report.report import Report
from cluster.report.stability import PARAM_SPREAD_LIMIT

WIDTH, HEIGHT, DPI = 1200, 750, 100
MAX_LEGEND = 12  # seeds named in a legend; more are drawn without one


def write_plots(
    report: Report, directory: Path, data: EnsembleData
) -> tuple[list[Path], list[str]]:
    """Draw the pictures into `directory` (created if missing; files of the same names
    are replaced); the paths written and a note for each picture left out."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [
        _best_score_by_trial(report, directory / "best_score_by_trial.png"),
        _best_params(report, directory / "best_params.png"),
        _score_by_parameter(report, directory / "score_by_parameter.png"),
    ]
    notes: list[str] = []
    sets = {f"seed {s.seed}": s.params for s in report.stability.seeds}
    sets["consensus"] = report.stability.consensus
    timestamps, curves, missing = equity_curves(data, sets)
    if curves:
        paths.append(_equity(report, timestamps, curves, directory / "equity.png"))
    for name, why in missing.items():
        notes.append(f"no equity curve for {name}: {why}")
    if report.walk_forward is not None:
        from cluster.report.walk_forward_plots import write_walk_forward_plot

        drawn, left_out = write_walk_forward_plot(
            report.walk_forward, data, directory / "walk_forward.png", _figure, _save
        )
        paths += drawn
        notes += left_out
    from cluster.report.robustness_plots import write_robustness_plots

    more, more_notes = write_robustness_plots(report, directory, _figure, _save)
    return paths + more, notes + more_notes


def _figure(rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    return figure, axes


def _save(figure: Any, path: Path) -> Path:
    # A fixed size (no tight bounding box) and no software stamp: the same report gives
    # the same picture size on every machine.
    figure.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return path


def _legend(axis: Any, count: int) -> None:
    if 0 < count <= MAX_LEGEND:
        axis.legend(fontsize="small", ncols=2 if count > 6 else 1)


def _best_score_by_trial(report: Report, path: Path) -> Path:
    figure, axes = _figure()
    axis = axes[0][0]
    penalty = report.penalty
    for best in report.stability.seeds:
        scores = report.frame.xs(best.seed, level="seed")["score"].to_numpy(np.float64)
        running = np.maximum.accumulate(scores)
        trials = np.arange(1, len(scores) + 1)
        shown = running != penalty  # a penalty is a constant, not a measured score
        line = axis.step(trials[shown], running[shown], where="post", label=f"seed {best.seed}")
        near = best.trials_to_near_best
        if running[near - 1] != penalty:
            axis.plot([near], [running[near - 1]], "o", color=line[0].get_color())
    axis.set_xlabel("trials")
    axis.set_ylabel("best score so far")
    axis.set_title("Best score so far, per seed (dot: within 1% of its final best)")
    axis.grid(alpha=0.3)
    _legend(axis, len(report.stability.seeds))
    return _save(figure, path)


def _best_params(report: Report, path: Path) -> Path:
    figure, axes = _figure()
    axis = axes[0][0]
    searched = [p for p in report.stability.parameters if p.spread is not None]
    x = np.arange(len(searched))
    for i, best in enumerate(report.stability.seeds):
        axis.plot(x, [p.positions[i] for p in searched], "o-", alpha=0.8, label=f"seed {best.seed}")
    from search.space import Space

    space = Space.from_dict({p.name: _range_dict(p) for p in searched}) if searched else None
    if space is not None:
        consensus = [space[p.name].to_unit(p.consensus) for p in searched]  # type: ignore[arg-type]
        axis.plot(x, consensus, "k--", linewidth=2, label="consensus")
    axis.set_xticks(x, [f"{p.name}\nspread {p.spread:.3f}" for p in searched], fontsize="small")
    for label, p in zip(axis.get_xticklabels(), searched, strict=True):
        label.set_rotation(20)
        label.set_horizontalalignment("right")
        if (p.spread or 0.0) > PARAM_SPREAD_LIMIT:
            label.set_color("tab:red")  # the parameters that make the verdict unstable
    axis.set_ylim(-0.02, 1.02)
    axis.set_ylabel("position in the search range (0 = lower end, 1 = upper end)")
    verdict = report.stability.verdict
    axis.set_title(
        f"The seeds' best parameters: {verdict.result or 'no verdict'} "
        f"(stable when every spread is at most {PARAM_SPREAD_LIMIT})"
    )
    axis.grid(alpha=0.3)
    _legend(axis, len(report.stability.seeds) + 1)
    return _save(figure, path)


def _range_dict(p: Any) -> dict[str, Any]:
    return {"type": p.kind, "lower": p.lower, "upper": p.upper}


def _score_by_parameter(report: Report, path: Path) -> Path:
    searched = [p for p in report.stability.parameters if p.spread is not None]
    cols = max(1, math.ceil(math.sqrt(len(searched))))
    rows = max(1, math.ceil(len(searched) / cols))
    figure, axes = _figure(rows, cols)
    frame = report.frame
    measured = frame[frame["score"] != report.penalty]
    left_out = len(frame) - len(measured)
    for k, axis in enumerate(axes.flat):
        if k >= len(searched):
            axis.set_visible(False)
            continue
        name = searched[k].name
        for best in report.stability.seeds:
            rows_of_seed = _rows_of(measured, best.seed)
            axis.plot(rows_of_seed[name], rows_of_seed["score"], ".", alpha=0.5, markersize=4,
                      label=f"seed {best.seed}")  # fmt: skip
        axis.set_xlabel(name, fontsize="small")
        axis.tick_params(labelsize="small")
        axis.grid(alpha=0.3)
    figure.suptitle(
        f"Score of every trial against each parameter ({left_out} penalized trial(s) left out)"
    )
    if searched:
        _legend(axes.flat[0], len(report.stability.seeds))
    return _save(figure, path)


def _rows_of(frame: Any, seed: int) -> Any:
    seeds = frame.index.get_level_values("seed")
    return frame[seeds == seed]


def _equity(
    report: Report, timestamps: np.ndarray, curves: dict[str, np.ndarray], path: Path
) -> Path:
    figure, axes = _figure()
    axis = axes[0][0]
    times = timestamps.astype("datetime64[ms]")
    for name, curve in curves.items():
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if name == "consensus" else {}
        axis.plot(times[: len(curve)], curve, label=name, **style)
    axis.set_ylabel("equity (1.0 at the first candle)")
    axis.set_title("Equity of each seed's best parameters and of the consensus on the job's data")
    axis.grid(alpha=0.3)
    _legend(axis, len(curves))
    return _save(figure, path)
