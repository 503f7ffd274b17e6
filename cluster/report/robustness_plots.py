"""The robustness pictures, drawn from the recorded figures only (nothing is recomputed):

- `pbo_logits.png`: the histogram of the logits of the in-sample best's out-of-sample
  rank over the CSCV splits; mass left of 0 is the PBO.
- `is_vs_oos.png`: the in-sample best's Sharpe in and out of sample over (a spread of)
  the splits, with the degradation line, and each seed's best and the consensus in-sample
  against the holdout when the job has one.
- `monte_carlo_fan.png`: the best seed's equity over its trades in other orders and
  bootstrapped (5%-95% and 25%-75% bands, the median), and its actual trades.
- `sensitivity.png`: for each seed's best, the share of its edge each neighbour keeps,
  one bar per parameter and direction, with the plateau line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cluster.report.robustness_output import PBO_HIGH
from cluster.robustness.montecarlo import TRADE_BOOTSTRAP, TRADE_ORDER
from cluster.robustness.sensitivity import PLATEAU_KEEP


def write_robustness_plots(
    report: Any, directory: Path, figure_of: Any, save: Any
) -> tuple[list[Path], list[str]]:
    """Draw what the recorded figures allow; paths written and notes for the others.
    `figure_of(rows, cols)` and `save(figure, path)` are plots.py's."""
    figures = report.robustness
    paths: list[Path] = []
    notes: list[str] = []
    if figures is None:
        return paths, notes
    if "reason" in figures.pbo:
        notes.append(f"no PBO pictures: {figures.pbo['reason']}")
    else:
        paths.append(_logits(figures.pbo, directory / "pbo_logits.png", figure_of, save))
    if "reason" not in figures.pbo or report.holdout is not None:
        paths.append(_scatter(report, directory / "is_vs_oos.png", figure_of, save))
    seed = int(figures.deflated_sharpe["selected"][0]["seed"])
    fan = {
        k: v for k, v in figures.monte_carlo[seed].items() if k in (TRADE_ORDER, TRADE_BOOTSTRAP)
    }
    if any(v.get("fan") for v in fan.values()):
        paths.append(_fan(seed, fan, directory / "monte_carlo_fan.png", figure_of, save))
    else:
        notes.append(f"no Monte Carlo fan: seed {seed}'s best has no trades to resample")
    if any(f["keeps"] for f in figures.sensitivity.values()):
        paths.append(_sensitivity(figures, directory / "sensitivity.png", figure_of, save))
    else:
        notes.append("no sensitivity bars: no seed's best has an edge over its median trial")
    return paths, notes


def _logits(pbo: dict[str, Any], path: Path, figure_of: Any, save: Any) -> Path:
    figure, axes = figure_of(1, 1)
    axis = axes[0][0]
    edges = np.array(pbo["edges"])
    counts = np.array(pbo["histogram"], dtype=float)
    colours = ["tab:red" if right <= 0.0 else "tab:blue" for right in edges[1:]]
    axis.bar(edges[:-1], counts / pbo["splits"], width=np.diff(edges), align="edge",
             color=colours, edgecolor="white")  # fmt: skip
    axis.axvline(0.0, color="black", linewidth=1)
    axis.set_xlabel("logit of the in-sample best's out-of-sample rank (< 0: bottom half)")
    axis.set_ylabel("share of splits")
    verdict = "no better than chance" if pbo["pbo"] >= PBO_HIGH else "share left of 0"
    axis.set_title(
        f"PBO {pbo['pbo']:.3f} ({verdict}) over {pbo['splits']:,} CSCV splits of "
        f"{pbo['trials']:,} parameter sets"
    )
    axis.grid(alpha=0.3)
    return save(figure, path)


def _scatter(report: Any, path: Path, figure_of: Any, save: Any) -> Path:
    figure, axes = figure_of(1, 1)
    axis = axes[0][0]
    pbo = report.robustness.pbo
    if "reason" not in pbo:
        x, y = np.array(pbo["scatter_in"]), np.array(pbo["scatter_out"])
        axis.plot(x, y, ".", alpha=0.3, color="tab:blue",
                  label="CSCV splits: in-sample best, its Sharpe in and out")  # fmt: skip
        if pbo["slope"] is not None:
            line = np.array([x.min(), x.max()])
            axis.plot(line, pbo["intercept"] + pbo["slope"] * line, color="tab:blue",
                      label=f"degradation, slope {pbo['slope']:.3g}")  # fmt: skip
    if report.holdout is not None:
        for row in report.holdout.sets:
            inside = row.in_sample.get("sharpe")
            outside = row.holdout.metrics.get("sharpe")
            if inside is None or outside is None:
                continue
            marker = "*" if row.label == "consensus" else "o"
            axis.plot([inside], [outside], marker, markersize=10,
                      label=f"{row.label}: in-sample vs holdout")  # fmt: skip
    axis.axhline(0.0, color="black", linewidth=1)
    axis.axline((0.0, 0.0), slope=1.0, color="grey", linestyle=":", label="out = in")
    axis.set_xlabel("Sharpe ratio in sample (annualized)")
    axis.set_ylabel("Sharpe ratio out of sample (annualized)")
    axis.set_title("In sample against out of sample: points far below the diagonal lost their edge")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    return save(figure, path)


def _fan(seed: int, fan: dict[str, Any], path: Path, figure_of: Any, save: Any) -> Path:
    figure, axes = figure_of(1, 2)
    for axis, (scenario, found) in zip(axes[0], fan.items(), strict=False):
        curve = found.get("fan") or {}
        if not curve:
            axis.set_visible(False)
            continue
        trades = np.array(curve["trades"])
        axis.fill_between(trades, curve["0.05"], curve["0.95"], alpha=0.2, color="tab:blue",
                          label="5%-95% of paths")  # fmt: skip
        axis.fill_between(trades, curve["0.25"], curve["0.75"], alpha=0.35, color="tab:blue",
                          label="25%-75%")  # fmt: skip
        axis.plot(trades, curve["0.5"], color="tab:blue", label="median")
        axis.set_title(f"{scenario.replace('_', ' ')} ({found['paths']:,} paths)")
        axis.set_xlabel("trades")
        axis.set_ylabel("equity (1.0 before the first trade)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(f"Monte Carlo of seed {seed}'s best parameters: compounded trade returns")
    return save(figure, path)


def _sensitivity(figures: Any, path: Path, figure_of: Any, save: Any) -> Path:
    figure, axes = figure_of(1, 1)
    axis = axes[0][0]
    seeds = [seed for seed, f in figures.sensitivity.items() if f["keeps"]]
    names = sorted({n for seed in seeds for n in figures.sensitivity[seed]["keeps"]})
    bars = [(name, side) for name in names for side in ("-1", "+1")]
    width = 0.8 / max(1, len(seeds))
    for k, seed in enumerate(seeds):
        keeps = figures.sensitivity[seed]["keeps"]
        values = [keeps.get(name, {}).get(side, np.nan) for name, side in bars]
        axis.bar(np.arange(len(bars)) + k * width, values, width=width, label=f"seed {seed}")
    axis.axhline(PLATEAU_KEEP, color="tab:red", linestyle="--",
                 label=f"plateau: every bar above {PLATEAU_KEEP:.0%}")  # fmt: skip
    axis.axhline(1.0, color="black", linewidth=1)
    axis.set_xticks(np.arange(len(bars)) + 0.4 - width / 2,
                    [f"{name} {'down' if side == '-1' else 'up'}" for name, side in bars],
                    rotation=60, ha="right", fontsize="x-small")  # fmt: skip
    axis.set_ylabel("share of the best's edge over the median trial kept")
    axis.set_title(
        f"Sensitivity: each parameter moved by {figures.settings['share']:.0%} of its range "
        "(ints by 1)"
    )
    axis.grid(alpha=0.3, axis="y")
    if len(seeds) <= 12:
        axis.legend(fontsize="small")
    return save(figure, path)
