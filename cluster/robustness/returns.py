"""Per-bar returns of an equity curve and their moments, summed in a fixed order.

`numpy.sum` may add in an order that depends on the CPU (pairwise, SIMD lanes), so its
last bits can differ between machines; `left_sum` adds left to right with
`numpy.add.accumulate`, which is sequential by definition (each partial sum depends on
the previous one), the same order as the kernel's metrics (STRATEGY.md C19).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def left_sum(values: np.ndarray) -> float:
    """The left-to-right float64 sum of `values` (0.0 when empty)."""
    if values.size == 0:
        return 0.0
    return float(np.add.accumulate(np.asarray(values, dtype=np.float64).ravel())[-1])


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """r_t = E_t / E_{t-1} - 1 for t = 1..n-1, as the kernel's metrics define them."""
    equity = np.asarray(equity, dtype=np.float64)
    return equity[1:] / equity[:-1] - 1.0


@dataclass(frozen=True)
class Moments:
    """Of a series of returns: its length, mean, standard deviation (ddof 1), skewness
    and kurtosis (not excess: 3 for a normal distribution), and the per-bar Sharpe
    ratio mean / std. Skewness and kurtosis are the sample's own central moments,
    m3 / m2**1.5 and m4 / m2**2 with m_k = sum((r - mean)**k) / n, as Bailey and Lopez
    de Prado use them. Undefined values (fewer than 2 returns, a constant series) are
    None."""

    n: int
    mean: float | None
    std: float | None
    skewness: float | None
    kurtosis: float | None
    sharpe: float | None


def moments(returns: np.ndarray) -> Moments:
    """The moments of `returns` (see `Moments`); every sum left to right."""
    r = np.asarray(returns, dtype=np.float64)
    n = int(r.size)
    if n == 0:
        return Moments(0, None, None, None, None, None)
    mean = left_sum(r) / n
    if n < 2:
        return Moments(n, mean, None, None, None, None)
    d = r - mean
    d2 = d * d
    m2_sum = left_sum(d2)
    std = math.sqrt(m2_sum / (n - 1))
    if not std > 0.0:
        return Moments(n, mean, std, None, None, None)
    m2 = m2_sum / n
    m3 = left_sum(d2 * d) / n
    m4 = left_sum(d2 * d2) / n
    return Moments(
        n=n,
        mean=mean,
        std=std,
        skewness=m3 / (m2 * math.sqrt(m2)),
        kurtosis=m4 / (m2 * m2),
        sharpe=mean / std,
    )
