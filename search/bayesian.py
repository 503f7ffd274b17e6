"""Bayesian optimization on bayesian-optimization 3.4, seeded and batch-deterministic.

Trials come in fixed batches. Batch 0 is `n_initial` random points (the random
searcher's points for the same seed). Batch b >= 1 holds the next `batch_size` trials
and is computed once every trial before it has an outcome, from exactly those outcomes
(registered in trial_index order): suggestion k is a pure function of (space, seed,
options, outcomes of the trials before its batch), whatever the completion order.

How a batch is computed (DESIGN.md, "measured facts on bayesian-optimization 3.4"):
- every parameter lives in the unit cube; an int owns an equal cell and is rounded by
  us (bayes_opt's experimental int support switches its optimizer to differential
  evolution, ~1-4 s per suggestion);
- the observed points are registered at the point actually evaluated (ints at their
  cell's centre), deduplicated (first trial kept), scores standardized so that `xi`
  is in units of the observed scores' standard deviation (`gp.standardize`: any finite
  scores, even near 1e308, give finite targets);
- the GP is bayes_opt's (Matern 5/2, jitter 1e-6); scikit-learn fits its length scale
  by a deterministic search of the likelihood (`gp.fit_length_scale`), and
  `gp.Posterior` evaluates mean/std directly for bayes_opt's acquisition `suggest`
  (Expected Improvement; 2,000 random samples, then L-BFGS-B from the best 3, with the
  acquisition's exact gradient instead of finite differences);
- within a batch, a constant liar on a private copy of the space: each pending point,
  rounded as it will be evaluated, is added with the lie (by default the best
  standardized score) as its target before the next point is chosen; bayes_opt's
  ConstantLiar keeps stale unrounded points with ints;
- a point equal to one observed or pending is replaced by a random point from the
  batch's generator (up to 100 tries; in an exhausted all-int space the repeat is kept):
  a repeat never ends the run and never raises "data point not unique";
- the batch's randomness comes from a generator seeded by (seed, batch), so a rebuild
  computes only the current batch; BLAS/OpenMP run on one thread meanwhile.

Where a batch is computed: everything it depends on is one `BatchRequest` (space, seed,
options, the params and counted scores of every earlier trial, the batch), and
`BatchRequest.compute()` is the whole computation. Without a pool the searcher calls it
in its own process (unit tests, tools; the bits then depend on that process's CPU
dispatch, see `search.pinned`). With a `search.pool.SuggestionPool` (the driver, for
every Bayesian ensemble) a due batch is submitted there and `ask()` returns nothing
until it arrives; the pool's processes run with pinned numerics, so the bits depend on
the library builds and the architecture only, and many seeds' batches compute at once.

Defaults (`DEFAULTS`; the job defaults, the quality test and the benchmark use them),
checked on the quality benchmark (16 seeds x 60 trials, bench/RESULTS.md): 10 random
points (about one per dimension for 9 parameters; 5 did worse, 20 no better); batches
of 4 (a seed alone keeps 4 workers busy, and the median best stays close to batch
size 1); EI with xi = 0.01 (UCB with kappa 2.576 and xi = 0.1 did worse); the liar
"max", bayes_opt's ConstantLiar default ("mean" and "min" scored the same within noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from bayes_opt.acquisition import AcquisitionFunction, ExpectedImprovement, UpperConfidenceBound
from bayes_opt.target_space import TargetSpace
from scipy.optimize import minimize
from scipy.special import ndtr

from search.core import ComputePool, SeededSearcher, seeded_random_state
from search.gp import (
    INV_SQRT_2PI,
    Posterior,
    expected_improvement,
    fit_length_scale,
    single_threaded,
    standardize,
)
from search.random_search import random_point
from search.space import Params, Space

BAYES_STREAM = 2
DISTINCT_TRIES = 100

# One configuration for the job defaults, the quality test and the benchmark (see the
# module docstring for why).
DEFAULTS: dict[str, Any] = {
    "n_initial": 10,
    "batch_size": 4,
    "acquisition": "ei",
    "xi": 0.01,
    "kappa": 2.576,
    "liar": "max",
    "n_random": 2000,
    "n_smart": 3,
}


_INT_MINIMUMS = {"n_initial": 1, "batch_size": 1, "n_random": 1, "n_smart": 0}
_CHOICES = {"acquisition": ("ei", "ucb"), "liar": ("min", "mean", "max")}


def option_problems(options: dict[str, Any]) -> list[str]:
    """Every option value of the Bayesian searcher that is out of range or of a wrong type."""
    problems = []
    for name, minimum in _INT_MINIMUMS.items():
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            problems.append(f"{name} must be an int >= {minimum}, got {value!r}")
    for name, choices in _CHOICES.items():
        if options[name] not in choices:
            problems.append(
                f"{name} must be one of {', '.join(map(repr, choices))}, got {options[name]!r}"
            )
    for name in ("xi", "kappa"):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
            problems.append(f"{name} must be a finite number >= 0, got {value!r}")
    return problems


class _GradientSmartMinimize:
    """bayes_opt's acquisition optimizer, with the acquisition's analytic gradient.

    bayes_opt 3.4 refines its best random samples with L-BFGS-B on finite differences:
    ten acquisition calls per iteration, most of a suggestion's cost. This replaces
    only that refinement (`_smart_minimize`, same contract: the best successful run,
    clipped to the bounds, or (NaN, inf) when none succeeds) by L-BFGS-B with the exact
    gradient from `gp.Posterior.predict_with_gradient`. The random stage, the choice
    between random and refined points, and the acquisition formula stay bayes_opt's.
    `_get_acq` and `_smart_minimize` are bayes_opt 3.4's private hooks (the lock pins
    the version; a test checks that this refinement is the one that runs).
    """

    _posterior: Posterior

    def _get_acq(self, gp: Any, constraint: Any = None) -> Any:
        self._posterior = gp
        return super()._get_acq(gp, constraint)  # type: ignore[misc]

    def _value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def _smart_minimize(
        self, acq: Any, space: TargetSpace, x_seeds: np.ndarray, random_state: Any
    ) -> tuple[np.ndarray, float]:
        bounds = space.bounds
        best_x, best_value = np.full(len(bounds), np.nan), np.inf
        for start in x_seeds:
            result = minimize(
                self._value_and_gradient, start, jac=True, bounds=bounds, method="L-BFGS-B"
            )
            if result.success and float(result.fun) < best_value:
                best_x, best_value = result.x, float(result.fun)
        return np.clip(best_x, bounds[:, 0], bounds[:, 1]), best_value


class _ExpectedImprovement(_GradientSmartMinimize, ExpectedImprovement):
    """bayes_opt's EI; its formula evaluated by `gp.expected_improvement` (same math)."""

    def base_acq(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        if self.y_max is None:
            raise ValueError("y_max is not set")
        return expected_improvement(mean, std, self.y_max, self.xi)

    def _value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        # dEI/dmean = Phi(z), dEI/dstd = phi(z), z = (mean - y_max - xi) / std.
        mean, std, dmean, dstd = self._posterior.predict_with_gradient(x)
        value = float(self.base_acq(np.array([mean]), np.array([std]))[0])
        z = (mean - float(self.y_max) - self.xi) / std  # type: ignore[arg-type]
        gradient = float(ndtr(z)) * dmean + math.exp(-0.5 * z * z) * INV_SQRT_2PI * dstd
        return -value, -gradient


class _UpperConfidenceBound(_GradientSmartMinimize, UpperConfidenceBound):
    """bayes_opt's UCB (mean + kappa * std) with its gradient."""

    def _value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        mean, std, dmean, dstd = self._posterior.predict_with_gradient(x)
        return -(mean + self.kappa * std), -(dmean + self.kappa * dstd)


@dataclass(frozen=True)
class BatchRequest:
    """Everything model batch `batch` of a seed depends on; `compute()` gives its params.

    `history[k]` and `scores[k]` are trial k's params and counted score, for every trial
    before the batch (`trials.start`). Picklable: a pool process computes it alone.
    """

    space: Space
    seed: int
    batch: int
    trials: range
    options: Mapping[str, Any]
    history: tuple[Params, ...]
    scores: tuple[float, ...]

    def compute(self) -> list[Params]:
        """The params of `trials`, in order (see the module docstring for how)."""
        x, scores = self._observations()
        y = standardize(scores)
        lie = {"min": float(y.min()), "mean": float(y.mean()), "max": float(y.max())}[
            self.options["liar"]
        ]
        draw_state = seeded_random_state(self.seed, BAYES_STREAM, self.batch)
        private = TargetSpace(None, {name: (0.0, 1.0) for name in self.space})
        for row, target in zip(x, y, strict=True):
            private.register(row, float(target))
        seen = {tuple(row.tolist()) for row in x}
        suggested: list[Params] = []
        with single_threaded():
            posterior = Posterior(x, y, fit_length_scale(x, y))
            for _ in self.trials:
                unit = self._make_acquisition().suggest(
                    gp=posterior,  # duck-typed: bayes_opt reads X_train_ and predict()
                    target_space=private,
                    n_random=self.options["n_random"],
                    n_smart=self.options["n_smart"],
                    fit_gp=False,
                    random_state=draw_state,
                )
                params = self._distinct(self.space.from_unit(unit), seen, draw_state)
                suggested.append(params)
                evaluated = self.space.to_unit(params)
                key = tuple(evaluated.tolist())
                if key not in seen:  # a kept repeat adds nothing to the model
                    seen.add(key)
                    private.register(evaluated, float(lie))
                    posterior = posterior.with_points(evaluated, float(lie))
        return suggested

    def _observations(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit-cube points and counted scores of the history, repeats dropped."""
        rows: dict[tuple[float, ...], float] = {}
        for params, score in zip(self.history, self.scores, strict=True):
            unit = tuple(self.space.to_unit(params).tolist())
            rows.setdefault(unit, score)  # a repeat keeps the first trial's score
        return np.array(list(rows)), np.array(list(rows.values()))

    def _make_acquisition(self) -> AcquisitionFunction:
        # A fresh one per suggestion: no state (counters, decay) carries across batches.
        if self.options["acquisition"] == "ucb":
            return _UpperConfidenceBound(kappa=self.options["kappa"])
        return _ExpectedImprovement(xi=self.options["xi"])

    def _distinct(
        self, params: Params, seen: set[tuple[float, ...]], state: np.random.RandomState
    ) -> Params:
        """`params`, or a random unseen point when it repeats an observed/pending one."""
        if tuple(self.space.to_unit(params).tolist()) not in seen:
            return params
        for _ in range(DISTINCT_TRIES):
            candidate = self.space.from_unit(state.uniform(size=len(self.space)))
            if tuple(self.space.to_unit(candidate).tolist()) not in seen:
                return candidate
        return params


class BayesianSearcher(SeededSearcher):
    """Gaussian-process Bayesian optimization in fixed-size batches (see module doc).

    With `pool`, model batches are computed there, asynchronously (see module doc).
    """

    kind = "bayesian"

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        iterations: int,
        invalid_score: float,
        n_initial: int = DEFAULTS["n_initial"],
        batch_size: int = DEFAULTS["batch_size"],
        acquisition: Literal["ei", "ucb"] = DEFAULTS["acquisition"],
        xi: float = DEFAULTS["xi"],
        kappa: float = DEFAULTS["kappa"],
        liar: Literal["min", "mean", "max"] = DEFAULTS["liar"],
        n_random: int = DEFAULTS["n_random"],
        n_smart: int = DEFAULTS["n_smart"],
        pool: ComputePool | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "n_initial": n_initial,
            "batch_size": batch_size,
            "acquisition": acquisition,
            "xi": xi,
            "kappa": kappa,
            "liar": liar,
            "n_random": n_random,
            "n_smart": n_smart,
        }
        problems = option_problems(options)
        if problems:
            raise ValueError("; ".join(problems))
        super().__init__(
            space, seed=seed, iterations=iterations, invalid_score=invalid_score, pool=pool,
            **options,
        )  # fmt: skip
        self.n_initial = n_initial
        self.batch_size = batch_size
        self._in_flight: tuple[int, Future[list[Params]]] | None = None

    # -- batches --------------------------------------------------------------------
    def batch_of(self, trial_index: int) -> int:
        if trial_index < self.n_initial:
            return 0
        return 1 + (trial_index - self.n_initial) // self.batch_size

    def batch_range(self, batch: int) -> range:
        if batch == 0:
            return range(min(self.n_initial, self.iterations))
        start = self.n_initial + (batch - 1) * self.batch_size
        return range(start, min(start + self.batch_size, self.iterations))

    def _due_end(self) -> int:
        if self._prefix >= self.iterations:
            return self.iterations
        return self.batch_range(self.batch_of(self._prefix)).stop

    def _must_replay(self, trial_index: int) -> bool:
        # Random points are cheap to check; of the model's batches, only the current one
        # is recomputed (the finished ones are the history it is computed from).
        return trial_index < self.n_initial or (
            self._prefix < self.iterations
            and self.batch_of(trial_index) == self.batch_of(self._prefix)
        )

    def _suggest(self, trial_index: int) -> Params:
        if trial_index < self.n_initial:
            return random_point(self.space, self.seed, trial_index)
        self._compute_batch(self.batch_of(trial_index))
        return self._params[trial_index]

    # -- the model, here or in the pool ----------------------------------------------
    def _request(self, batch: int) -> BatchRequest:
        trials = self.batch_range(batch)
        return BatchRequest(
            space=self.space,
            seed=self.seed,
            batch=batch,
            trials=trials,
            options=dict(self.options),
            history=tuple(self._params[k] for k in range(trials.start)),
            scores=tuple(self._score(k) for k in range(trials.start)),
        )

    def _compute_batch(self, batch: int) -> None:
        """Compute `batch` now: in this process, or in the pool (waiting for it)."""
        if self.pool is None:
            self._store(batch, self._request(batch).compute())
        else:
            self._collect(batch, wait=True)

    def _store(self, batch: int, params: list[Params]) -> None:
        for k, p in zip(self.batch_range(batch), params, strict=True):
            self._params[k] = p

    def _due_model_batch(self) -> int | None:
        """The due model batch whose params are not known yet, if any."""
        due = self._due_end()
        if due <= self.n_initial or (due - 1) in self._params:
            return None
        return self.batch_of(due - 1)

    def _ready_end(self) -> int:
        due = self._due_end()
        batch = self._due_model_batch()
        if self.pool is None or batch is None or self._collect(batch, wait=False):
            return due
        return self.batch_range(batch).start

    def _prefetch(self) -> None:
        batch = self._due_model_batch()
        if self.pool is not None and batch is not None:
            for k in range(self.n_initial):  # a rebuild recomputes the random points
                self._params_of(k)
            self._collect(batch, wait=False)

    def _collect(self, batch: int, wait: bool) -> bool:
        """Submit `batch` to the pool unless it is in flight; store its params once they
        have arrived (waiting for them if `wait`). True when they are stored. Raises the
        pool's error when the computation failed."""
        assert self.pool is not None
        if self._in_flight is None or self._in_flight[0] != batch:
            future = self.pool.submit(self._request(batch))
            self._in_flight = (batch, future)
            future.add_done_callback(lambda _: self._wake())
        future = self._in_flight[1]
        if not wait and not future.done():
            return False
        params = future.result()
        self._in_flight = None
        self._store(batch, params)
        return True

    @property
    def computing(self) -> bool:
        return self._in_flight is not None

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_in_flight"] = None  # submitted again when asked (same request, same bits)
        return state
