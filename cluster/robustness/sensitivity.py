"""The neighbourhood of an optimum: a plateau, or a spike?

An optimum worth trading sits on a plateau: parameters a little off still score
nearly as well. A spike, where a small change loses most of the edge, is what a search
finds when it fits noise. For one parameter set (a seed's best), each searched
parameter is moved down and up by a stated share of its search range (a float by
`share` x (upper - lower), an int by 1), the others kept, and each neighbour is
backtested on the same candles; a neighbour outside the range is left out (the
optimum sits at that end).

Verdict, on the seed's own scale: the *edge* of the optimum is its score minus the
median score of the seed's trials (penalized trials left out: the penalty is a
constant, not a measured score); a neighbour *keeps* (score - median) / edge of it.
`plateau` when every neighbour keeps at least `PLATEAU_KEEP` (half) of the edge,
`spike` otherwise; none when the optimum has no edge over the median (every trial
scored alike). An invalid neighbour scores the penalty, so it is a spike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from search.space import IntRange, Space

DEFAULT_SHARE = 0.1
PLATEAU_KEEP = 0.5
PLATEAU, SPIKE = "plateau", "spike"


@dataclass(frozen=True)
class Neighbour:
    parameter: str
    direction: int  # -1 down, +1 up
    value: int | float
    params: dict[str, int | float]


def neighbours(
    params: Mapping[str, int | float], space: Space, share: float = DEFAULT_SHARE
) -> list[Neighbour]:
    """The neighbours of `params` in `space`, by parameter (space order), down first."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    found = []
    for name, range_ in space.items():
        if range_.lower == range_.upper:
            continue  # fixed by the job: nothing was searched
        value = params[name]
        for direction in (-1, 1):
            moved: int | float
            if isinstance(range_, IntRange):
                moved = int(value) + direction
            else:
                moved = float(value) + direction * share * (range_.upper - range_.lower)
            if not range_.lower <= moved <= range_.upper:
                continue
            found.append(Neighbour(name, direction, moved, {**params, name: moved}))
    return found


@dataclass(frozen=True)
class Sensitivity:
    """A parameter set's neighbourhood: each neighbour's score and what it keeps."""

    score: float
    median: float | None  # the seed's median measured score
    scores: dict[str, dict[str, float]]  # parameter -> {"-1"/"+1": score}
    keeps: dict[str, dict[str, float]]  # parameter -> {"-1"/"+1": share of the edge kept}
    worst: str | None  # the parameter whose neighbour keeps least
    verdict: str | None


def summarize(
    score: float,
    scored: list[tuple[Neighbour, float]],
    measured_scores: list[float],
) -> Sensitivity:
    """The verdict of the module docstring from the neighbours' scores and the seed's
    measured (non-penalty) scores."""
    median = _median(measured_scores)
    scores: dict[str, dict[str, float]] = {}
    for neighbour, value in scored:
        scores.setdefault(neighbour.parameter, {})[f"{neighbour.direction:+d}"] = value
    edge = None if median is None else score - median
    if edge is None or not edge > 0.0 or not scored:
        return Sensitivity(score, median, scores, {}, None, None)
    assert median is not None
    keeps = {
        name: {d: (value - median) / edge for d, value in sides.items()}
        for name, sides in scores.items()
    }
    worst = min(keeps, key=lambda name: min(keeps[name].values()))
    least = min(keeps[worst].values())
    verdict = PLATEAU if least >= PLATEAU_KEEP else SPIKE
    return Sensitivity(score, median, scores, keeps, worst, verdict)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
