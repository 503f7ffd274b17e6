"""The Gaussian-process pieces of the Bayesian searcher, made cheap to evaluate.

bayes_opt's acquisition optimizer calls `gp.predict(x, return_std=True)` thousands of
times per suggestion, mostly on one point at a time (L-BFGS-B with finite differences).
scikit-learn's `predict` validates its input and rebuilds the kernel on every call,
which is where most of bayes_opt's out-of-the-box cost goes. `Posterior` computes the
same posterior (Rasmussen & Williams, Algorithm 2.1) directly from a Cholesky factor.

Everything here runs with BLAS/OpenMP pinned to one thread (`single_threaded`), so the
bits do not depend on the core count or on how the driver was launched.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import cdist
from scipy.special import ndtr
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern
from threadpoolctl import ThreadpoolController

# bayes_opt's own GP settings: Matern 5/2, jitter 1e-6 on normalized targets.
NOISE = 1e-6
# A floor on the predictive std (normalized units): an exact 0 makes EI 0/0 = NaN, and
# one NaN would win the acquisition's argmin.
MIN_STD = 1e-9
_SQRT5 = math.sqrt(5.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_controller: ThreadpoolController | None = None


@contextmanager
def single_threaded() -> Iterator[None]:
    """Pin BLAS and OpenMP to one thread for the duration (threadpoolctl)."""
    global _controller
    if _controller is None:  # scanning the loaded libraries costs ~ms: do it once
        _controller = ThreadpoolController()
    with _controller.limit(limits=1):
        yield


def standardize(scores: np.ndarray) -> np.ndarray:
    """`(scores - mean) / std` (population std, 1 when every score is equal), for any
    finite scores.

    The direct formula whenever its std and result are finite and, for distinct scores,
    the std is not 0: ordinary scores keep the bits they always had. Scores near the float
    range's ends break it: a mean or squares past 1e308 (scores of ~1e154 and up) make
    NaN or all-zero targets, and squares below the smallest float make the std of
    distinct tiny scores 0. Then the same formula runs on the scores scaled by a power
    of two that brings the largest magnitude into [0.5, 1) (exact, except for scores
    so much smaller than the largest that they lose bits or vanish; their differences
    are invisible next to it anyway).
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        spread = float(np.std(scores))
        direct = (scores - scores.mean()) / (spread if spread > 0 else 1.0)
    all_equal = bool(np.all(scores == scores[0]))
    if math.isfinite(spread) and np.all(np.isfinite(direct)) and (spread > 0 or all_equal):
        return direct
    exponent = math.frexp(float(np.max(np.abs(scores))))[1]
    scaled = np.ldexp(scores, -exponent)
    spread = float(np.std(scaled))
    return (scaled - scaled.mean()) / (spread if spread > 0 else 1.0)


def matern52(a: np.ndarray, b: np.ndarray, length_scale: float) -> np.ndarray:
    """The isotropic Matern 5/2 kernel matrix k(a_i, b_j), as scikit-learn computes it."""
    r = cdist(a / length_scale, b / length_scale) * _SQRT5
    return (1.0 + r + r * r / 3.0) * np.exp(-r)


# The length scale's likelihood is searched on this grid of log10 values, then refined
# by bounded Brent around the best grid point: a deterministic global search of the
# one-dimensional likelihood (points in the unit cube lie about 0.01 to 3 apart).
LOG10_GRID = np.linspace(-2.0, 2.0, 17)


def _grid_then_brent(
    objective: Any, initial_theta: np.ndarray, bounds: np.ndarray
) -> tuple[np.ndarray, float]:
    """A scikit-learn GP `optimizer`: minimize the negative log-likelihood over log(l)."""

    def negative_log_likelihood(theta: float) -> float:
        return float(objective(np.array([theta]), eval_gradient=False))

    lower, upper = bounds[0]
    grid = LOG10_GRID * math.log(10.0)
    values = [negative_log_likelihood(theta) for theta in grid]
    best = int(np.argmin(values))
    step = grid[1] - grid[0]
    refined = minimize_scalar(
        negative_log_likelihood,
        bounds=(max(grid[best] - step, lower), min(grid[best] + step, upper)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    if refined.success and refined.fun < values[best]:
        return np.array([refined.x]), float(refined.fun)
    return np.array([grid[best]]), values[best]


def fit_length_scale(x: np.ndarray, y: np.ndarray) -> float:
    """Maximum-likelihood length scale of bayes_opt's GP (isotropic Matern 5/2, jitter
    1e-6, normalized targets), found by `_grid_then_brent`: deterministic, no restarts.

    scikit-learn's default (L-BFGS-B with gradients from 1 + 5 random starts, as in
    bayes_opt) costs 6-36 ms at 50 observations and 50-190 ms at 200 here, because
    every gradient evaluation inverts the kernel matrix; this search evaluates the
    likelihood ~30 times without gradients (3 ms and 10 ms) and, on the quality
    benchmark, finds models as good (bench/RESULTS.md, "Searchers"). Convergence
    warnings on tiny data sets are silenced, as bayes_opt does.
    """
    gp = GaussianProcessRegressor(
        kernel=Matern(nu=2.5), alpha=NOISE, normalize_y=True, optimizer=_grid_then_brent
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp.fit(x, y)
    return float(gp.kernel_.length_scale)


class Posterior:
    """The GP posterior on targets `y` at points `x` (rows in the unit cube).

    `y` is used as given (callers standardize it); `predict` returns mean and std in the
    same units. Quacks like a fitted `GaussianProcessRegressor` as far as bayes_opt's
    acquisition functions look (`X_train_`, `predict(x, return_std=True)`).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, length_scale: float) -> None:
        self.X_train_ = np.asarray(x, dtype=float)
        self.y_train_ = np.asarray(y, dtype=float)
        self.length_scale = length_scale
        k = matern52(self.X_train_, self.X_train_, length_scale)
        k[np.diag_indices_from(k)] += NOISE
        chol = cholesky(k, lower=True, check_finite=False)
        self._alpha = cho_solve((chol, True), self.y_train_, check_finite=False)
        # v = L^-1 k(x, X)^T as one matrix product: a triangular solve per call costs
        # more in wrappers than in arithmetic at these sizes.
        self._chol_inv_t = solve_triangular(
            chol, np.eye(len(chol)), lower=True, check_finite=False
        ).T
        self._scaled_train = self.X_train_ / length_scale

    def with_points(self, x: np.ndarray, y: float) -> Posterior:
        """The posterior with one more observation (a constant lie), same length scale."""
        return Posterior(
            np.vstack([self.X_train_, x]), np.append(self.y_train_, y), self.length_scale
        )

    def predict(self, x: np.ndarray, return_std: bool = False) -> Any:
        x = np.asarray(x, dtype=float).reshape(-1, self.X_train_.shape[1]) / self.length_scale
        if len(x) == 1:  # the optimizer's common case: skip cdist's dispatch
            diff = self._scaled_train - x
            r = np.sqrt(np.einsum("ij,ij->i", diff, diff))[np.newaxis, :] * _SQRT5
        else:
            r = cdist(x, self._scaled_train) * _SQRT5
        cross = (1.0 + r + r * r / 3.0) * np.exp(-r)
        mean = cross @ self._alpha
        if not return_std:
            return mean
        v = cross @ self._chol_inv_t
        variance = 1.0 - np.einsum("ij,ij->i", v, v)
        return mean, np.sqrt(np.maximum(variance, MIN_STD * MIN_STD))

    def predict_with_gradient(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Mean, std and their gradients with respect to one point `x` (unit cube).

        With scaled offsets t_i = (x - x_i) / l, s_i = sqrt(5) |t_i| and
        k_i = (1 + s_i + s_i^2 / 3) exp(-s_i): dk_i/dx = -(5 / 3)(1 + s_i) exp(-s_i) t_i / l;
        dmean = alpha . dk; dvar = -2 (K^-1 k) . dk; dstd = dvar / (2 std), 0 where the
        std sits on its floor.
        """
        offsets = np.asarray(x, dtype=float) / self.length_scale - self._scaled_train
        s = np.sqrt(np.einsum("ij,ij->i", offsets, offsets)) * _SQRT5
        decay = np.exp(-s)
        k = (1.0 + s + s * s / 3.0) * decay
        dk = ((-5.0 / 3.0) * (1.0 + s) * decay)[:, np.newaxis] * offsets / self.length_scale
        v = k @ self._chol_inv_t
        variance = 1.0 - float(v @ v)
        if variance <= MIN_STD * MIN_STD:
            return float(k @ self._alpha), MIN_STD, self._alpha @ dk, np.zeros(len(offsets[0]))
        std = math.sqrt(variance)
        dvariance = -2.0 * ((self._chol_inv_t @ v) @ dk)
        return float(k @ self._alpha), std, self._alpha @ dk, dvariance / (2.0 * std)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float) -> np.ndarray:
    """EI = a * Phi(a / std) + std * phi(a / std) with a = mean - best - xi.

    The formula of bayes_opt's ExpectedImprovement.base_acq, computed with
    `scipy.special.ndtr` and `exp` instead of `scipy.stats.norm` (whose per-call
    overhead dominates single-point evaluations).
    """
    a = mean - best - xi
    z = a / std
    return a * ndtr(z) + std * (np.exp(-0.5 * z * z) * INV_SQRT_2PI)
