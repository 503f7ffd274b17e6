"""The Probability of Backtest Overfitting, by combinatorially symmetric cross-validation.

Source: D. H. Bailey, J. M. Borwein, M. Lopez de Prado and Q. J. Zhu, "The Probability
of Backtest Overfitting", Journal of Computational Finance 20(4), 2017 (SSRN 2326253),
section 2 (CSCV) and section 3 (the statistics derived from it):

1. M is the T x N matrix of the per-bar returns of N trials (here: every distinct
   parameter set of the ensemble's searches, recomputed from its parameters).
2. Its rows are cut into S disjoint blocks of consecutive bars (S even).
3. Each of the C(S, S/2) ways to pick S/2 blocks is one split: the picked blocks are
   the in-sample set J, the others the out-of-sample set J-bar (16 blocks: 12,870).
4. Per split, each trial's performance on J and on J-bar (here: the Sharpe ratio per
   bar); n* is the trial that performs best in-sample; w is the relative rank of n*
   out of sample, rank / (N + 1), ties at their average rank (1 = worst); the logit is
   ln(w / (1 - w)).
5. PBO is the share of splits whose logit is <= 0: how often the in-sample winner
   ranks at or below the median out of sample. The performance degradation is the
   least-squares line of n*'s out-of-sample performance against its in-sample one
   over the splits (a slope below zero: the better it looked, the worse it did), and
   the probability of loss the share of splits where n* loses out of sample.

Blocks: bar b (0-based, of T returns) is in block floor(b * S / T): sizes differ by at
most one, no bar is dropped. Performance from a block's sums: each trial's per-block
sum of returns and of squared returns (left to right), added over a split's blocks in
block order; a series that never moves (no trades) performs 0.0. Ranks come from
counts (how many trials do worse, how many equally well) rather than a sort: O(N) per
split; n* is the first maximum (trials in the caller's order). The loop over splits
and trials is compiled (numba, no fastmath: the same bits as the plain arithmetic it
reads as), about 12,870 x N x S additions: well under a second for 1,000 trials
(bench/RESULTS.md). Only S sums per trial are kept, never the T x N matrix itself:
`BlockSums.add` takes one trial's returns at a time.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numba
import numpy as np

from cluster.robustness.returns import left_sum

DEFAULT_BLOCKS = 16
SCATTER_POINTS = 500  # splits kept for the in-sample vs out-of-sample picture
HISTOGRAM_BINS = 40


def block_bounds(n_returns: int, blocks: int) -> np.ndarray:
    """The S + 1 boundaries of the blocks of `n_returns` bars: block s is
    [bounds[s], bounds[s + 1])."""
    if blocks < 2 or blocks % 2:
        raise ValueError(f"blocks must be an even number >= 2, got {blocks}")
    if n_returns < 2 * blocks:
        raise ValueError(
            f"{n_returns} returns are too few for {blocks} blocks (at least 2 per block)"
        )
    return np.array([s * n_returns // blocks for s in range(blocks + 1)], dtype=np.int64)


def split_count(blocks: int) -> int:
    """C(S, S/2): 12,870 for 16 blocks."""
    return math.comb(blocks, blocks // 2)


def splits(blocks: int) -> np.ndarray:
    """Every in-sample choice of S/2 of the S blocks, in `itertools.combinations`
    order, as a (C(S, S/2), S/2) array of block indices."""
    return np.array(list(itertools.combinations(range(blocks), blocks // 2)), dtype=np.int64)


class BlockSums:
    """Per trial, the left-to-right sums of its returns and squared returns in each
    block; trials are added one at a time (their returns can then be dropped)."""

    def __init__(self, n_returns: int, blocks: int = DEFAULT_BLOCKS) -> None:
        self.bounds = block_bounds(n_returns, blocks)
        self.n_returns = n_returns
        self.blocks = blocks
        self._sums: list[np.ndarray] = []
        self._squares: list[np.ndarray] = []

    def add(self, returns: np.ndarray) -> None:
        returns = np.asarray(returns, dtype=np.float64)
        if returns.shape != (self.n_returns,):
            raise ValueError(f"expected {self.n_returns} returns, got shape {returns.shape}")
        squared = returns * returns
        sums = np.empty(self.blocks)
        squares = np.empty(self.blocks)
        for s in range(self.blocks):
            start, stop = self.bounds[s], self.bounds[s + 1]
            sums[s] = left_sum(returns[start:stop])
            squares[s] = left_sum(squared[start:stop])
        self._sums.append(sums)
        self._squares.append(squares)

    @property
    def trials(self) -> int:
        return len(self._sums)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sums, squares) as (N, S) arrays and the bars per block (S,)."""
        counts = np.diff(self.bounds).astype(np.float64)
        return np.array(self._sums), np.array(self._squares), counts


@dataclass(frozen=True)
class Pbo:
    """What CSCV found (module docstring). Performances are per-bar Sharpe ratios times
    `annualize` (sqrt(bars per year)), so they read like the trials' Sharpe ratios.

    `histogram` counts the logits in `HISTOGRAM_BINS` equal bins over `edges`;
    `scatter_in` / `scatter_out` are n*'s performances in `SCATTER_POINTS` splits spread
    evenly over all of them (for the picture).
    """

    blocks: int
    splits: int
    trials: int
    n_returns: int
    pbo: float
    probability_of_loss: float
    slope: float | None
    intercept: float | None
    logit_quantiles: dict[str, float]
    edges: list[float]
    histogram: list[int]
    scatter_in: list[float]
    scatter_out: list[float]
    annualize: float


def cscv(sums: BlockSums, *, annualize: float = 1.0) -> Pbo:
    """PBO and its companions over the trials added to `sums` (at least 2)."""
    if sums.trials < 2:
        raise ValueError(f"PBO needs at least 2 trials, got {sums.trials}")
    block_sum, block_square, counts = sums.arrays()
    chosen = splits(sums.blocks)
    outside = np.ones((len(chosen), sums.blocks), dtype=bool)
    outside[np.arange(len(chosen))[:, None], chosen] = False
    others = np.nonzero(outside)[1].reshape(len(chosen), -1)  # ascending, like `chosen`
    n = sums.trials
    doubled, in_sample, out_sample = _cscv_splits(block_sum, block_square, counts, chosen, others)
    in_sample *= annualize
    out_sample *= annualize
    logits = _logits(doubled, n)
    slope, intercept = _least_squares(in_sample, out_sample)
    edges = np.linspace(-_logit_limit(n), _logit_limit(n), HISTOGRAM_BINS + 1)
    histogram = np.histogram(logits, bins=edges)[0]
    keep = np.unique(np.linspace(0, len(chosen) - 1, min(SCATTER_POINTS, len(chosen))).astype(int))
    return Pbo(
        blocks=sums.blocks,
        splits=len(chosen),
        trials=n,
        n_returns=sums.n_returns,
        # logit <= 0 <=> rank <= (N + 1) / 2, decided on integers
        pbo=int(np.count_nonzero(doubled <= n + 1)) / len(chosen),
        probability_of_loss=int(np.count_nonzero(out_sample < 0.0)) / len(chosen),
        slope=slope,
        intercept=intercept,
        logit_quantiles={
            q: float(np.quantile(logits, float(q))) for q in ("0.05", "0.25", "0.5", "0.75", "0.95")
        },
        edges=[float(e) for e in edges],
        histogram=[int(c) for c in histogram],
        scatter_in=[float(v) for v in in_sample[keep]],
        scatter_out=[float(v) for v in out_sample[keep]],
        annualize=annualize,
    )


@numba.njit(cache=True)
def split_sharpe(total: float, squares: float, bars: float) -> float:
    """Per-bar Sharpe ratio mean / std (ddof 1) from the sums of returns and of squared
    returns over `bars` bars; 0.0 when the deviation is 0 (a trial that never trades).

    The one-pass variance (squares - total * mean) / (bars - 1) loses a few digits
    against a two-pass one when the mean is large against the deviation; per-bar
    returns of a strategy are the opposite case, and rankings need no more.
    """
    mean = total / bars
    variance = (squares - total * mean) / (bars - 1.0)
    if variance > 0.0:
        return mean / math.sqrt(variance)
    return 0.0


@numba.njit(cache=True)
def _cscv_splits(
    block_sum: np.ndarray,
    block_square: np.ndarray,
    counts: np.ndarray,
    chosen: np.ndarray,
    others: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per split: 2 x n*'s average out-of-sample rank (1-based), and n*'s in-sample and
    out-of-sample performance. `block_sum` and `block_square` are (N, S)."""
    n_splits, half = chosen.shape
    n = block_sum.shape[0]
    doubled = np.empty(n_splits, np.int64)
    perf_in = np.empty(n_splits)
    perf_out = np.empty(n_splits)
    outside = np.empty(n)
    for c in range(n_splits):
        bars_in = 0.0
        bars_out = 0.0
        for j in range(half):
            bars_in += counts[chosen[c, j]]
            bars_out += counts[others[c, j]]
        best = 0
        best_perf = 0.0
        for trial in range(n):
            total_in = 0.0
            squares_in = 0.0
            total_out = 0.0
            squares_out = 0.0
            for j in range(half):  # blocks in ascending order: left to right
                total_in += block_sum[trial, chosen[c, j]]
                squares_in += block_square[trial, chosen[c, j]]
                total_out += block_sum[trial, others[c, j]]
                squares_out += block_square[trial, others[c, j]]
            perf = split_sharpe(total_in, squares_in, bars_in)
            if trial == 0 or perf > best_perf:  # the first maximum
                best, best_perf = trial, perf
            outside[trial] = split_sharpe(total_out, squares_out, bars_out)
        target = outside[best]
        below = 0
        equal = 0
        for trial in range(n):
            if outside[trial] < target:
                below += 1
            elif outside[trial] == target:
                equal += 1  # n* itself included
        doubled[c] = 2 * below + equal + 1
        perf_in[c] = best_perf
        perf_out[c] = target
    return doubled, perf_in, perf_out


def _logits(doubled_ranks: np.ndarray, n: int) -> np.ndarray:
    """ln(w / (1 - w)) with w = rank / (N + 1), from a table over the 2N - 1 possible
    doubled ranks (math.log: one libm call per value, not numpy's vectorized log)."""
    table = np.array(
        [math.log(k / (2 * (n + 1) - k)) if 0 < k < 2 * (n + 1) else 0.0 for k in range(2 * n + 2)]
    )
    return table[doubled_ranks]


def _logit_limit(n: int) -> float:
    """The largest |logit| N trials can give (rank 1 or N), rounded up to a half."""
    return math.ceil(2 * math.log(n)) / 2 if n > 1 else 1.0


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """Slope and intercept of y on x (None when x does not vary); sums left to right."""
    n = x.size
    mean_x, mean_y = left_sum(x) / n, left_sum(y) / n
    dx = x - mean_x
    spread = left_sum(dx * dx)
    if not spread > 0.0:
        return None, None
    slope = left_sum(dx * (y - mean_y)) / spread
    return slope, mean_y - slope * mean_x
