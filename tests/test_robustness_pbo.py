"""The Probability of Backtest Overfitting (CSCV) on series whose truth is known.

- Pure noise: every trial is unskilled, so the in-sample winner is just the luckiest
  half and its out-of-sample rank is uniform at best; and because a split's two halves
  add up to the whole series, a trial that was lucky in one half tends to be unlucky
  in the other: PBO comes out near or above 0.5, and the degradation slope negative.
- One real edge among noise: the same trial wins in-sample in almost every split and
  ranks near the top out of sample: PBO near 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster.robustness.pbo import BlockSums, block_bounds, cscv, split_count, split_sharpe, splits


def test_sixteen_blocks_make_12870_splits():
    assert split_count(16) == 12870 == math.comb(16, 8)
    chosen = splits(16)
    assert chosen.shape == (12870, 8)
    assert len({tuple(row) for row in chosen}) == 12870


def test_blocks_cover_every_bar_once():
    bounds = block_bounds(1003, 16)
    assert bounds[0] == 0 and bounds[-1] == 1003
    sizes = np.diff(bounds)
    assert sizes.min() >= 62 and sizes.max() <= 63
    with pytest.raises(ValueError, match="even"):
        block_bounds(1000, 15)
    with pytest.raises(ValueError, match="too few"):
        block_bounds(20, 16)


def _noise(trials: int, bars: int, seed: int, edge: dict[int, float] | None = None) -> BlockSums:
    rng = np.random.default_rng(seed)
    sums = BlockSums(bars, 16)
    for trial in range(trials):
        returns = rng.standard_normal(bars) * 0.01
        if edge and trial in edge:
            returns += edge[trial] * 0.01
        sums.add(returns)
    return sums


def test_pure_noise_overfits():
    """One noise matrix gives a PBO anywhere from ~0.1 to ~0.9 (its 12,870 splits reuse
    the same few lucky trials, so they are far from independent); over 20 independent
    matrices of 50 trials the mean is within 0.1 of 0.5 (its standard error is ~0.05)."""
    results = [cscv(_noise(50, 800, seed=seed)) for seed in range(20)]
    assert all(r.splits == 12870 and r.trials == 50 for r in results)
    assert all(sum(r.histogram) == 12870 for r in results)
    assert float(np.mean([r.pbo for r in results])) >= 0.4
    slopes = [r.slope for r in results]
    assert sum(s is not None and s < 0 for s in slopes) >= 15


def test_a_real_edge_does_not():
    """One trial of 50 with a true Sharpe ratio of 0.3 per bar: over the 400 bars of an
    in-sample half that is 6 standard errors, so it wins nearly every split, and ranks
    at the top out of sample."""
    results = [cscv(_noise(50, 800, seed=100 + seed, edge={17: 0.3})) for seed in range(5)]
    assert all(r.pbo <= 0.05 for r in results)
    assert all(r.logit_quantiles["0.5"] > 2.0 for r in results)
    assert all(r.probability_of_loss <= 0.05 for r in results)


def test_the_same_input_gives_the_same_bits():
    first, second = cscv(_noise(30, 600, seed=3)), cscv(_noise(30, 600, seed=3))
    assert first == second  # dataclass equality: every float equal (and none NaN)


def test_flat_trials_perform_zero_and_rank_in_the_middle():
    """A trial that never trades (returns all 0) has no Sharpe ratio: it performs 0.0."""
    assert split_sharpe(0.0, 0.0, 10.0) == 0.0
    assert split_sharpe(0.5, 0.125, 2.0) == 0.0  # returns 0.25 and 0.25: no deviation
    # returns 0.1 and 0.2: mean 0.15, std 0.05 * sqrt(2)
    assert split_sharpe(0.3, 0.05, 2.0) == pytest.approx(0.15 / (0.05 * math.sqrt(2)), rel=1e-12)
    sums = BlockSums(64, 4)
    for _ in range(3):
        sums.add(np.zeros(64))
    result = cscv(sums)
    # all equal: n* is the first, at the average rank 2 of 3: w = 0.5, logit 0, PBO 1
    assert result.pbo == 1.0 and result.logit_quantiles["0.5"] == 0.0
