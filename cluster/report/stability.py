"""Do the seeds agree? Each seed's best trial, how far apart the seeds' best parameters
lie, a consensus parameter set, and the verdict `stable` / `unstable`.

A pure function of the trials (`cluster.report.frame`) and the job's search space.
What it measures is the optimizer's stability in-sample: whether independent searches
of the same data end at the same place. It says nothing about how those parameters do
on data the search never saw.

Definitions (docs/report.md explains them to users):
- **Best trial of a seed**: the highest score; ties go to the lowest trial_index.
- **Position** of a value in its search range, from 0 to 1, as the searchers see the
  space (`search.space`): a float `(v - lower) / (upper - lower)`; an int owns one of
  `upper - lower + 1` equal cells, at its cell's centre, so one step of an int is
  `1 / (upper - lower + 1)` of its range.
- **Spread** of a parameter: the largest minus the smallest position of the seeds' best
  values. 0 when every seed ended at the same value; near 1 when they span the range.
  Parameters fixed by the job (lower = upper) have no spread: nothing was searched.
- **Consensus**: per parameter, the median of the seeds' best values (the mean of the
  two middle ones for an even number of seeds); an int median is rounded to an int,
  halves to the even neighbour (Python's `round`).
- **Trials to near best** of a seed: how many trials (in trial_index order) it took
  until its best so far came within `NEAR_BEST_SHARE` of its final best, measured on the
  seed's own scale: within `NEAR_BEST_SHARE * (best - worst)`, where worst is the
  seed's lowest score other than the penalty (a penalty is a constant of the job, not
  a measured score). Not "1% of the best score" itself: that is no distance for a best
  of 0.0 and means ever less near zero, and it would change if every score moved by a
  constant. When every score is equal (or penalized), the first trial counts.
- **Verdict**: `stable` when there are at least `MIN_SEEDS` seeds and every searched
  parameter's spread is at most `PARAM_SPREAD_LIMIT`; else `unstable`. With fewer seeds,
  or nothing searched, there is no verdict (None).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from search.space import IntRange, Space

# The seeds' best values of a parameter must lie within this share of its search range
# for the optimum to count as stable. A fifth of the range: seeds that converged land
# much closer than that (a search that found one optimum differs only by how finely it
# sampled around it), while seeds whose bests are independent of each other spread far
# wider: the positions of n independent uniform draws span (n - 1) / (n + 1) of the
# range on average (a third for 2 seeds, 5/7 for 6), and all 6 fall within a fifth of
# it with probability 6 * 0.2**5 - 5 * 0.2**6 = 0.16%. For an int, the limit allows
# seeds one step apart when the range has 5 or more values, and none on smaller ranges.
# One seed out of line makes the verdict unstable, by design: a search that lands
# elsewhere once in a few runs does not reliably find its optimum.
PARAM_SPREAD_LIMIT = 0.2
# Agreement needs someone to agree with: one seed can never show scatter.
MIN_SEEDS = 2
# "Near its final best": within 1% of the seed's score range (see the module docstring).
NEAR_BEST_SHARE = 0.01

STABLE = "stable"
UNSTABLE = "unstable"


@dataclass(frozen=True)
class SeedBest:
    """One seed's search: its best trial and how soon it got near it."""

    seed: int
    trials: int
    trial_index: int
    score: float
    params: dict[str, int | float]
    trials_to_near_best: int


@dataclass(frozen=True)
class ParameterSpread:
    """One parameter across the seeds' best trials (values in the order of `seeds`)."""

    name: str
    kind: str  # "int" or "float"
    lower: int | float
    upper: int | float
    values: tuple[int | float, ...]
    positions: tuple[float, ...]
    spread: float | None  # None: fixed by the job, not searched
    consensus: int | float


@dataclass(frozen=True)
class ScoreSpread:
    """The seeds' best scores: lowest, median, highest and highest - lowest."""

    lowest: float
    median: float
    highest: float
    spread: float


@dataclass(frozen=True)
class Verdict:
    """`result` is STABLE, UNSTABLE or None (no verdict), with what decided it."""

    result: str | None
    reason: str
    largest_spread: float | None
    parameter: str | None  # the parameter with the largest spread
    above_limit: tuple[str, ...]  # every parameter whose spread is above the limit
    limit: float = PARAM_SPREAD_LIMIT
    min_seeds: int = MIN_SEEDS


@dataclass(frozen=True)
class Stability:
    seeds: tuple[SeedBest, ...]
    parameters: tuple[ParameterSpread, ...]
    scores: ScoreSpread
    consensus: dict[str, int | float]
    verdict: Verdict


def analyse(frame: pd.DataFrame, space: Space, penalty: float) -> Stability:
    """The stability of an ensemble from its trials (`frame_of_trials`) and its space.

    `penalty` is the job's score for a trial that trades too little or is invalid.
    Every seed in the frame must have at least one trial.
    """
    if frame.empty:
        raise ValueError("the ensemble has no trials")
    seeds = tuple(_seed_best(int(seed), rows, space, penalty) for seed, rows in _by_seed(frame))
    parameters = tuple(_spread(name, space, seeds) for name in space)
    scores = [s.score for s in seeds]
    score_spread = ScoreSpread(
        min(scores), float(statistics.median(scores)), max(scores), max(scores) - min(scores)
    )
    consensus = {p.name: p.consensus for p in parameters}
    return Stability(seeds, parameters, score_spread, consensus, verdict(seeds, parameters))


def _by_seed(frame: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
    return [(int(seed), rows) for seed, rows in frame.groupby(level="seed", sort=True)]


def _seed_best(seed: int, rows: pd.DataFrame, space: Space, penalty: float) -> SeedBest:
    rows = rows.sort_index(level="trial_index")
    scores = rows["score"].to_numpy(dtype=np.float64)
    indices = rows.index.get_level_values("trial_index").to_numpy()
    position = int(np.argmax(scores))  # the first maximum: the lowest trial_index
    best = rows.iloc[position]
    params = {
        name: int(best[name]) if isinstance(r, IntRange) else float(best[name])
        for name, r in space.items()
    }
    return SeedBest(
        seed=seed,
        trials=len(rows),
        trial_index=int(indices[position]),
        score=float(scores[position]),
        params=params,
        trials_to_near_best=trials_to_near_best(scores, penalty),
    )


def trials_to_near_best(scores: Sequence[float] | np.ndarray, penalty: float) -> int:
    """How many trials, in order, until the best so far is within NEAR_BEST_SHARE of the
    final best, on the scale from the worst measured score to the best (module doc)."""
    values = np.asarray(scores, dtype=np.float64)
    best = float(values.max())
    measured = values[values != penalty]
    worst = float(measured.min()) if measured.size else best
    tolerance = NEAR_BEST_SHARE * max(best - worst, 0.0)
    reached = np.maximum.accumulate(values) >= best - tolerance
    return int(np.argmax(reached)) + 1


def _spread(name: str, space: Space, seeds: Sequence[SeedBest]) -> ParameterSpread:
    range_ = space[name]
    values = tuple(s.params[name] for s in seeds)
    positions = tuple(float(range_.to_unit(v)) for v in values)  # type: ignore[arg-type]
    searched = range_.lower != range_.upper
    return ParameterSpread(
        name=name,
        kind="int" if isinstance(range_, IntRange) else "float",
        lower=range_.lower,
        upper=range_.upper,
        values=values,
        positions=positions,
        spread=max(positions) - min(positions) if searched else None,
        consensus=consensus_value(values, isinstance(range_, IntRange)),
    )


def consensus_value(values: Sequence[int | float], integer: bool) -> int | float:
    """The median of `values`; for an int parameter rounded half to even (module doc)."""
    median = statistics.median(values)
    return round(median) if integer else float(median)


def verdict(seeds: Sequence[SeedBest], parameters: Sequence[ParameterSpread]) -> Verdict:
    """The verdict and what decided it (see the module docstring and the constants)."""
    searched = [p for p in parameters if p.spread is not None]
    if not searched:
        return Verdict(None, "every parameter is fixed by the job: nothing was searched",
                       None, None, ())  # fmt: skip
    widest = max(searched, key=lambda p: p.spread or 0.0)  # the first of equal ones
    largest = widest.spread
    above = tuple(p.name for p in searched if (p.spread or 0.0) > PARAM_SPREAD_LIMIT)
    if len(seeds) < MIN_SEEDS:
        return Verdict(
            None,
            f"{len(seeds)} seed: at least {MIN_SEEDS} are needed to see whether seeds agree",
            largest, widest.name, above,
        )  # fmt: skip
    if above:
        others = f" (and {len(above) - 1} more)" if len(above) > 1 else ""
        reason = (
            f"the seeds' best {widest.name} spread over {largest:.3f} of its range, more "
            f"than the limit {PARAM_SPREAD_LIMIT}{others}"
        )
        return Verdict(UNSTABLE, reason, largest, widest.name, above)
    reason = (
        f"every searched parameter's spread is at most {PARAM_SPREAD_LIMIT} of its range "
        f"(the largest: {widest.name}, {largest:.3f})"
    )
    return Verdict(STABLE, reason, largest, widest.name, above)
