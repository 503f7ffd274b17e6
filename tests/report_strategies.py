"""Two objectives whose stability is known, run through the real pipeline by the report
tests (tests/test_report.py explains why each verdict must come out as it does).

Both have a float `x` in [0, 1] and an int `k` in [1, 3]:
- `toy_peak`: `-|x - 0.3| - |k - 2|`, one sharp optimum at x = 0.3, k = 2; it rejects
  k = 3 with x > 0.9 (an `invalid` outcome, scored with the penalty, as a strategy
  rejecting its input would be);
- `toy_noise`: flat, plus noise in [0, 0.01) that is a pure function of the params (a
  hash of their exact text), so every distinct point gets its own independent-looking
  score and the same point always the same one.

Each gives a made-up equity curve (a straight line from 1 to 1 + score / 10 over the
candles), so the report's equity picture can be drawn for them. Ray workers cannot
import tests/: `ship_by_value()` makes Ray pickle this module's functions by value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from cluster.records.exact import canonical_params
from trainable.declaration import ParamDecl
from trainable.strategies import Metrics, Strategy, metrics_with_score, register_strategy

PARAMETERS = (
    ParamDecl("x", "float", 0.0, False, (0.0, 1.0), "a real coordinate"),
    ParamDecl("k", "int", 1, False, (1, 3), "an integer coordinate"),
)


def peak_score(params: Mapping[str, Any]) -> float:
    return -abs(params["x"] - 0.3) - abs(params["k"] - 2)


def noise_score(params: Mapping[str, Any]) -> float:
    digest = hashlib.sha256(canonical_params(dict(params)).encode("ascii")).digest()
    return 0.01 * int.from_bytes(digest[:7], "big") / 2**56


def peak(candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    if params["k"] == 3 and params["x"] > 0.9:
        raise ValueError(f"the toy rejects k=3 with x={params['x']!r} > 0.9")
    return metrics_with_score(peak_score(params))


def noise(candles: Any, params: Mapping[str, Any], constants: Any) -> Metrics:
    return metrics_with_score(noise_score(params))


def _line(score: float, candles: Any) -> np.ndarray:
    return np.linspace(1.0, 1.0 + score / 10, len(candles))


def peak_equity(candles: Any, params: Mapping[str, Any], constants: Any) -> np.ndarray:
    return _line(peak_score(params), candles)


def noise_equity(candles: Any, params: Mapping[str, Any], constants: Any) -> np.ndarray:
    return _line(noise_score(params), candles)


PEAK = Strategy("toy_peak", PARAMETERS, peak, "one sharp optimum", peak_equity)
NOISE = Strategy("toy_noise", PARAMETERS, noise, "flat plus noise", noise_equity)


def register() -> None:
    for strategy in (PEAK, NOISE):
        register_strategy(strategy)


def ship_by_value() -> None:
    import sys

    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
