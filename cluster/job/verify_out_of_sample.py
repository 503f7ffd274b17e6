"""What `verify` compares beyond the ensembles' trials: the walk-forward windows and
their searches' trials, and the records made after the search (the holdout's
backtests, the windows' tests and the stitched walk-forward figures).

Over the seeds both ensembles have, like the trials:
- the windows (their deterministic part) and every window trial (`walk_forward_trials`,
  deterministic part): a record missing on one side is a difference, as for trials;
- the evaluations of kinds "holdout" and "walk_forward" and the "walk_forward" figures:
  these are made once the search is complete (by the driver, `resume` or a report), so
  one that only one side has yet is noted, not a difference; one both have must be equal
  bit for bit. The consensus's holdout backtest is compared only when both ensembles
  have the same seeds (the consensus is a function of all of them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.records.recorder import Recorder

AFTER_SEARCH_KINDS = ("holdout", "walk_forward")
FIGURES = ("walk_forward",)


@dataclass(frozen=True)
class Comparison:
    """The first difference (None: none), how many records agreed, what was not compared."""

    difference: str | None
    compared: int
    notes: list[str] = field(default_factory=list)


def compare_out_of_sample(
    recorder: Recorder, a: uuid.UUID, b: uuid.UUID, seeds: Sequence[int], same_seeds: bool
) -> Comparison:
    """Compare A's and B's out-of-sample records on `seeds` (module docstring)."""
    compared = 0
    notes: list[str] = []
    for what, read, required in _sources(recorder, seeds, same_seeds):
        left, right = read(a), read(b)
        keys = sorted(set(left) | set(right), key=str)
        for key in keys:
            if key not in left or key not in right:
                side = "A" if key not in left else "B"
                if required:
                    return Comparison(f"first difference at {what} {key}: not recorded in "
                                      f"{side}", compared, notes)  # fmt: skip
                notes.append(f"{what} {key} is recorded in one ensemble only (not in {side})")
                continue
            difference = _first_column(left[key], right[key])
            if difference is not None:
                return Comparison(
                    f"first difference at {what} {key}, {difference}", compared, notes
                )
            compared += 1
    return Comparison(None, compared, notes)


def _sources(recorder: Recorder, seeds: Sequence[int], same_seeds: bool) -> list[Any]:
    wanted = set(seeds)

    def windows(ensemble: uuid.UUID) -> dict[str, Any]:
        return {f"seed {w.seed} window {w.window_index}": w.deterministic()
                for w in recorder.windows(ensemble) if w.seed in wanted}  # fmt: skip

    def window_trials(ensemble: uuid.UUID) -> dict[str, Any]:
        return {
            f"seed {seed} window {window} trial {t.trial_index}": t.deterministic()
            for (seed, window), trials in recorder.window_trials(ensemble).items()
            if seed in wanted
            for t in trials
        }

    def evaluations(ensemble: uuid.UUID) -> dict[str, Any]:
        return {
            f"{e.kind} evaluation '{e.label}'": e.deterministic()
            for kind in AFTER_SEARCH_KINDS
            for e in recorder.evaluations(ensemble, kind)
            if _of_seeds(e.label, wanted, same_seeds)
        }

    def figures(ensemble: uuid.UUID) -> dict[str, Any]:
        return {
            f"{f.analysis} figure '{f.label}'": {"result": f.exact, "settings": f.settings}
            for analysis in FIGURES
            for f in recorder.figures(ensemble, analysis)
            if _of_seeds(f.label, wanted, same_seeds)
        }

    return [
        ("walk-forward", windows, True),
        ("walk-forward", window_trials, True),
        ("the", evaluations, False),
        ("the", figures, False),
    ]


def _of_seeds(label: str, seeds: set[int], same_seeds: bool) -> bool:
    """Whether a label ("seed N", "seed N window W", or another) belongs to `seeds`."""
    words = label.split()
    if len(words) >= 2 and words[0] == "seed" and words[1].lstrip("-").isdigit():
        return int(words[1]) in seeds
    return same_seeds


def _first_column(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    for column in sorted(set(a) | set(b)):
        if a.get(column) != b.get(column):
            return f"column {column}: A {a.get(column)!r}, B {b.get(column)!r}"
    return None
