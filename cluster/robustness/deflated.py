"""The Probabilistic and the Deflated Sharpe Ratio.

Sources:
- PSR: D. H. Bailey and M. Lopez de Prado, "The Sharpe Ratio Efficient Frontier",
  Journal of Risk 15(2), 2012, eq. (8):
      PSR(SR*) = Z[(SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)]
  with SR the observed Sharpe ratio *per observation* (not annualized), T the number
  of returns, g3 their skewness and g4 their kurtosis (3 for a normal distribution),
  and Z the standard normal CDF: the probability that the true Sharpe ratio exceeds
  the benchmark SR*.
- DSR: D. H. Bailey and M. Lopez de Prado, "The Deflated Sharpe Ratio: Correcting for
  Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
  Management 40(5), 2014, eq. (2)-(3): the PSR against
      SR0 = sqrt(V[SR_n]) ((1 - gamma) Z^-1[1 - 1/N] + gamma Z^-1[1 - 1/(N e)])
  the expected maximum Sharpe ratio of N trials of zero true skill whose estimated
  Sharpe ratios have variance V[SR_n] (gamma: the Euler-Mascheroni constant).
  Their numerical example (N = 100, V = 1/2 annualized, T = 1250 daily returns, an
  annualized SR of 2.5, skewness -3, kurtosis 10) gives SR0 = 0.1132 per day and
  DSR = 0.9004; tests/test_robustness_deflated.py checks it.

What the report feeds it (cluster.report.robustness): N is the exact number of
distinct parameter sets the ensemble's searches tried (the records hold every one);
V[SR_n] the sample variance (ddof 1) of those parameter sets' recorded Sharpe ratios,
converted to per-bar units; SR, T, g3 and g4 come from the best trial's per-bar returns,
recomputed from its parameters. With N = 1 there was no selection: SR0 = 0 and the DSR
is the PSR against zero.

The normal CDF and its inverse are the standard library's (`statistics.NormalDist`):
pure Python over `math.erf`, the same bits everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

EULER_GAMMA = 0.5772156649015329
CONFIDENCE = 0.95  # a DSR or PSR above this passes

_NORMAL = NormalDist()


def expected_max_sharpe(trials: int, variance: float) -> float:
    """SR0: the expected maximum Sharpe ratio of `trials` unskilled trials whose Sharpe
    ratios have `variance` (units of the variance's square root). 0.0 for one trial."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not variance >= 0.0:
        raise ValueError(f"variance must be >= 0, got {variance}")
    if trials == 1:
        return 0.0
    first = _NORMAL.inv_cdf(1.0 - 1.0 / trials)
    second = _NORMAL.inv_cdf(1.0 - 1.0 / (trials * math.e))
    return math.sqrt(variance) * ((1.0 - EULER_GAMMA) * first + EULER_GAMMA * second)


def probabilistic_sharpe(
    sharpe: float, benchmark: float, n_returns: int, skewness: float, kurtosis: float
) -> float | None:
    """PSR(benchmark) of a per-observation Sharpe ratio (module docstring); None when
    undefined (fewer than 2 returns, or moments that make the variance term <= 0)."""
    if n_returns < 2:
        return None
    radicand = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not radicand > 0.0 or not math.isfinite(radicand):
        return None
    z = (sharpe - benchmark) * math.sqrt(n_returns - 1) / math.sqrt(radicand)
    return _NORMAL.cdf(z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """The DSR of a selected trial and what went into it, per-bar units unless said.

    `annualize` is sqrt(bars per year): multiply a per-bar Sharpe ratio by it to get the
    annualized one the trials record.
    """

    trials: int  # N: distinct parameter sets tried
    sharpe_variance: float  # V[SR_n], per bar
    expected_max: float  # SR0, per bar
    sharpe: float  # the selected trial's SR, per bar
    n_returns: int  # T
    skewness: float
    kurtosis: float
    psr: float | None  # PSR against 0
    dsr: float | None  # PSR against SR0
    annualize: float

    @property
    def passes(self) -> bool:
        return self.dsr is not None and self.dsr > CONFIDENCE

    @property
    def psr_passes(self) -> bool:
        return self.psr is not None and self.psr > CONFIDENCE


def deflated_sharpe(
    *,
    trials: int,
    sharpe_variance: float,
    sharpe: float,
    n_returns: int,
    skewness: float,
    kurtosis: float,
    annualize: float = 1.0,
) -> DeflatedSharpe:
    """The DSR (and the PSR against zero) of the selected trial (module docstring)."""
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    return DeflatedSharpe(
        trials=trials,
        sharpe_variance=sharpe_variance,
        expected_max=benchmark,
        sharpe=sharpe,
        n_returns=n_returns,
        skewness=skewness,
        kurtosis=kurtosis,
        psr=probabilistic_sharpe(sharpe, 0.0, n_returns, skewness, kurtosis),
        dsr=probabilistic_sharpe(sharpe, benchmark, n_returns, skewness, kurtosis),
        annualize=annualize,
    )


def sample_variance(values: list[float]) -> float:
    """Variance with ddof 1 (0.0 for fewer than 2 values); sums are exact (`math.fsum`),
    so the order of `values` does not change a bit."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = math.fsum(values) / n
    return math.fsum((v - mean) * (v - mean) for v in values) / (n - 1)
