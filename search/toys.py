"""Toy objectives for the searchers' quality test and benchmark (strategy-agnostic).

`MIXED9_SPACE` / `mixed9`: 9 parameters, 4 int + 5 float, maximized. It is the
Hartmann-6 function (Dixon & Szego 1978; constants as in Surjanovic & Bingham's Virtual
Library of Simulation Experiments) on shifted domains, with its sixth coordinate an int
(x6 = h6 / 50), plus a quadratic bowl in three more ints. Its maximum is about
3.3224 (H6 at its optimum, h6 = 33, the bowl at its centre); a uniformly random point
scores about -0.15 on average, and the best of 60 random points 0.7 to 2.6.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from search.space import FloatRange, IntRange, Space

_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_A = np.array(
    [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
HARTMANN6_MAX = 3.32237  # -min of the Hartmann-6 function on [0, 1]^6

# The float coordinates live on [shift, shift + 1]: the mapping to the unit cube must
# undo arbitrary offsets (and the optimum is nowhere special in the declared ranges).
_SHIFTS = (10.0, -3.0, 0.5, 100.0, -0.25)
# Integer bowl: (name, lower, upper, centre).
_BOWL = (("k1", 0, 20, 13), ("k2", 1, 8, 3), ("k3", -5, 5, -2))

MIXED9_SPACE = Space(
    [
        *((f"x{i + 1}", FloatRange(s, s + 1.0)) for i, s in enumerate(_SHIFTS)),
        ("h6", IntRange(0, 50)),
        *((name, IntRange(lower, upper)) for name, lower, upper, _ in _BOWL),
    ]
)


def hartmann6(x: np.ndarray) -> float:
    """Hartmann-6 (to be minimized; minimum -3.32237 at ~(0.2017, 0.1500, 0.4769,
    0.2753, 0.3117, 0.6573))."""
    inner = np.sum(_A * (np.asarray(x, dtype=float) - _P) ** 2, axis=1)
    return float(-np.sum(_ALPHA * np.exp(-inner)))


def mixed9(params: Mapping[str, int | float]) -> float:
    """The 9-parameter mixed objective (maximized); deterministic."""
    floats = [params[f"x{i + 1}"] - s for i, s in enumerate(_SHIFTS)]
    x = np.array([*floats, params["h6"] / 50.0])
    bowl = sum(
        ((params[name] - centre) / (upper - lower)) ** 2 for name, lower, upper, centre in _BOWL
    )
    return -hartmann6(x) - bowl
