"""`walk_forward.png`: each seed's stitched out-of-sample equity over the test windows,
against its whole-range best on the same candles (in sample), one panel per seed (up to
MAX_PANELS), with the report's sentence on what it means beneath.

The curves are backtested again here from the recorded figure's parameters (like
`equity.png`, they only draw what the records already say: the recorded figure holds
their metrics); the x axis is the test candles' open times, with a gap wherever
`step > test` left candles untested.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from cluster.report.backtests import EnsembleData
from cluster.report.walk_forward import WalkForward, stitched_curve
from cluster.report.walk_forward_output import walk_forward_sentence
from cluster.robustness.walk_forward import rows

MAX_PANELS = 4


def write_walk_forward_plot(
    found: WalkForward, data: EnsembleData, path: Path, figure_of: Any, save: Any
) -> tuple[list[Path], list[str]]:
    """The picture (its path), or a note why there is none."""
    spec, candles, timestamps = data.load()
    strategy, constants = spec.strategy_object(), spec.constants()
    if strategy.equity is None:
        return [], [f"no walk-forward picture: the strategy {strategy.name} has no equity curve"]
    seeds = found.seeds[:MAX_PANELS]
    figure, axes = figure_of(len(seeds), 1)
    for axis, seed in zip(axes[:, 0], seeds, strict=True):
        windows = seed.result["windows"]
        tests = [rows(candles, *entry["test_rows"]) for entry in windows]
        times = np.concatenate([timestamps[slice(*entry["test_rows"])] for entry in windows])
        when = times.astype("datetime64[ms]")
        try:
            outside = stitched_curve(
                strategy, constants, [(e["params"], t) for e, t in zip(windows, tests, strict=True)]
            )
            inside = stitched_curve(
                strategy, constants, [(seed.result["in_sample"]["params"], t) for t in tests]
            )
        except ValueError as error:
            axis.set_title(f"seed {seed.seed}: no curve ({error})")
            continue
        axis.plot(
            when, outside, color="tab:blue", label="walk-forward: each window's best, out of sample"
        )
        axis.plot(when, inside, color="tab:grey", linestyle="--",
                  label="whole-range best on the same candles (in sample)")  # fmt: skip
        for entry in windows[1:]:
            axis.axvline(np.datetime64(entry["test_from"], "ms"), color="black", alpha=0.15)
        axis.axhline(1.0, color="black", linewidth=1)
        axis.set_ylabel(f"seed {seed.seed}: equity")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small", loc="upper left")
    shown = "" if len(found.seeds) <= MAX_PANELS else f" (first {MAX_PANELS} seeds)"
    figure.suptitle(
        "Walk-forward: the test windows stitched, each traded with the parameters its own "
        f"training window chose{shown}"
    )
    sentence = textwrap.fill(walk_forward_sentence(found), 150, break_on_hyphens=False)
    figure.supxlabel(sentence, fontsize="small")
    return [save(figure, path)], []
