"""The Bayesian searcher's own promises: its GP math against references, batches made
distinct without the stale-point bug, repeats that never end a run, one-batch rebuilds,
BLAS pinned to one thread."""

from __future__ import annotations

import random

import numpy as np
import pytest
from bayes_opt.acquisition import ExpectedImprovement
from bayes_opt.target_space import TargetSpace
from search_testkit import INVALID_SCORE, TOY_SPACE, build, canonical, drive
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import Matern
from threadpoolctl import threadpool_info

import search.bayesian as bayesian
from search.bayesian import BayesianSearcher, _ExpectedImprovement, _UpperConfidenceBound
from search.core import Outcome, RebuildMismatch, RecordedTrial
from search.gp import Posterior, expected_improvement, fit_length_scale, standardize
from search.space import FloatRange, IntRange, Space


def _data(n: int = 25, dim: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, dim))
    return x, np.sin(3 * x).sum(axis=1) + rng.normal(0, 0.1, n)


def test_posterior_matches_scikit_learn_with_the_same_kernel():
    x, y = _data()
    length_scale = 0.6
    reference = GaussianProcessRegressor(
        kernel=Matern(length_scale=length_scale, nu=2.5, length_scale_bounds="fixed"),
        alpha=1e-6,
        optimizer=None,
    ).fit(x, y)
    posterior = Posterior(x, y, length_scale)
    queries = np.random.default_rng(1).random((50, 4))
    mean, std = posterior.predict(queries, return_std=True)
    ref_mean, ref_std = reference.predict(queries, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(std, ref_std, rtol=1e-7, atol=1e-9)
    for q in queries[:5]:  # the single-point path the optimizer uses
        one_mean, one_std = posterior.predict(q, return_std=True)
        m, s = reference.predict(q[np.newaxis], return_std=True)
        np.testing.assert_allclose([one_mean[0], one_std[0]], [m[0], s[0]], rtol=1e-7)


def test_posterior_gradients_match_central_differences():
    x, y = _data()
    posterior = Posterior(x, y, 0.45)
    h = 1e-6
    for q in np.random.default_rng(2).random((5, 4)):
        mean, std, dmean, dstd = posterior.predict_with_gradient(q)
        m, s = posterior.predict(q, return_std=True)
        assert (mean, std) == pytest.approx((m[0], s[0]), rel=1e-12)
        for j in range(4):
            step = np.zeros(4)
            step[j] = h
            up_m, up_s = posterior.predict(q + step, return_std=True)
            dn_m, dn_s = posterior.predict(q - step, return_std=True)
            assert dmean[j] == pytest.approx((up_m[0] - dn_m[0]) / (2 * h), rel=1e-5, abs=1e-7)
            assert dstd[j] == pytest.approx((up_s[0] - dn_s[0]) / (2 * h), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_length_scale_fit_reaches_the_likelihood_maximum_of_scikit_learns_optimizer(seed):
    # Reference: scikit-learn's own fit (L-BFGS-B with gradients) from 1 + 20 random
    # starts. The deterministic search must find a likelihood at least as high.
    x, y = _data(n=40, dim=6, seed=seed)
    y = (y - y.mean()) / y.std()
    reference = GaussianProcessRegressor(
        kernel=Matern(nu=2.5),
        alpha=1e-6,
        normalize_y=True,
        n_restarts_optimizer=20,
        random_state=0,
    ).fit(x, y)
    ours = fit_length_scale(x, y)
    log_likelihood = reference.log_marginal_likelihood
    assert log_likelihood(np.log([ours])) >= reference.log_marginal_likelihood_value_ - 1e-6


def test_expected_improvement_is_bayes_opts_formula():
    reference = ExpectedImprovement(xi=0.05)
    reference.y_max = 0.3
    mean = np.linspace(-2, 2, 41)
    std = np.linspace(0.01, 1.5, 41)
    np.testing.assert_allclose(
        expected_improvement(mean, std, 0.3, 0.05),
        reference.base_acq(mean, std),
        rtol=1e-12,
        atol=1e-300,
    )


@pytest.mark.parametrize("acquisition", [_ExpectedImprovement(xi=0.01), _UpperConfidenceBound()])
def test_acquisition_gradients_match_central_differences(acquisition):
    x, y = _data(seed=3)
    acquisition._posterior = Posterior(x, y, 0.5)
    acquisition.y_max = float(y.max())
    h = 1e-6
    for q in np.random.default_rng(4).random((5, 4)):
        _, gradient = acquisition._value_and_gradient(q)
        for j in range(4):
            step = np.zeros(4)
            step[j] = h
            up, _ = acquisition._value_and_gradient(q + step)
            down, _ = acquisition._value_and_gradient(q - step)
            assert gradient[j] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-8)


def test_the_gradient_refinement_is_the_one_bayes_opt_runs(monkeypatch):
    calls = []
    refine = bayesian._GradientSmartMinimize._smart_minimize

    def spy(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return refine(self, *args, **kwargs)

    monkeypatch.setattr(bayesian._GradientSmartMinimize, "_smart_minimize", spy)
    drive(build("bayesian"))
    drive(build("bayesian", acquisition="ucb"))
    assert len(calls) == 2 * 16  # 16 model suggestions per run (20 trials, 4 random)
    assert set(calls) == {"_ExpectedImprovement", "_UpperConfidenceBound"}


def test_blas_is_pinned_to_one_thread_while_the_model_computes(monkeypatch):
    seen_threads: list[set[int]] = []
    fit = bayesian.fit_length_scale

    def spy(*args, **kwargs):
        seen_threads.append({lib["num_threads"] for lib in threadpool_info()})
        return fit(*args, **kwargs)

    monkeypatch.setattr(bayesian, "fit_length_scale", spy)
    before = {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()}
    drive(build("bayesian"))
    assert seen_threads and all(threads == {1} for threads in seen_threads)
    assert {lib["filepath"]: lib["num_threads"] for lib in threadpool_info()} == before


def _grid_space(size: int) -> Space:
    return Space([("i", IntRange(0, size - 1)), ("j", IntRange(0, size - 1))])


def test_a_batch_of_int_points_is_distinct_from_each_other_and_the_past():
    # 36 points, 24 trials in batches of 4: the liar and the repeat check must keep
    # every suggestion new (the stale-point bug made rounded batch points collide).
    searcher = BayesianSearcher(
        _grid_space(6),
        seed=3,
        iterations=24,
        invalid_score=INVALID_SCORE,
        n_initial=4,
        batch_size=4,
    )
    sequence = drive(searcher, objective=lambda p: Outcome.ok(-((p["i"] - 4) ** 2) - p["j"]))
    assert len({params for _, params in sequence[4:]}) == 20
    model_points = {params for _, params in sequence[4:]}
    assert not model_points & {params for _, params in sequence[:4]}


def test_an_exhausted_space_repeats_points_but_never_ends_the_run():
    searcher = BayesianSearcher(
        _grid_space(2),
        seed=1,
        iterations=12,
        invalid_score=INVALID_SCORE,
        n_initial=2,
        batch_size=2,
    )
    sequence = drive(searcher, objective=lambda p: Outcome.ok(float(p["i"] + p["j"])))
    assert searcher.finished and len(sequence) == 12
    # Two random points, then a batch of 2 and one more point: all 4 found by trial 4.
    assert len({params for _, params in sequence[:5]}) == 4


def test_every_outcome_invalid_still_runs_to_the_end():
    searcher = build("bayesian")
    drive(searcher, objective=lambda p: Outcome.invalid())
    assert searcher.finished


def test_ucb_and_every_liar_are_deterministic_under_shuffled_completions():
    for options in ({"acquisition": "ucb"}, {"liar": "min"}, {"liar": "mean"}):
        reference = drive(build("bayesian", **options))
        shuffled = drive(build("bayesian", **options), order_rng=random.Random(9), concurrency=6)
        assert shuffled == reference, options


def test_pinned_parameters_stay_pinned():
    space = Space([("p", FloatRange(2.5, 2.5)), ("q", IntRange(3, 3)), ("x", FloatRange(0.0, 1.0))])
    searcher = BayesianSearcher(space, seed=0, iterations=10, invalid_score=0.0, n_initial=3)
    drive(searcher, objective=lambda p: Outcome.ok(-((p["x"] - 0.3) ** 2)))
    for k in range(10):
        params = searcher.suggestion(k)
        assert (params["p"], params["q"]) == (2.5, 3)


def _records_after(completions: int) -> tuple[BayesianSearcher, dict[int, RecordedTrial]]:
    searcher = build("bayesian")
    drive(searcher, stop_after=completions)
    return searcher, {
        k: RecordedTrial(searcher.suggestion(k), o) for k, o in searcher.outcomes().items()
    }


def _rebuild(recorded):
    return BayesianSearcher.rebuild(
        TOY_SPACE,
        seed=7,
        iterations=20,
        invalid_score=INVALID_SCORE,
        recorded=recorded,
        n_initial=4,
        batch_size=3,
    )


def test_rebuild_computes_only_the_current_batch(monkeypatch):
    _, recorded = _records_after(12)  # batches [4..6], [7..9] done; [10..12] current
    computed: list[int] = []
    original = BayesianSearcher._compute_batch

    def counting(self, batch):
        computed.append(batch)
        return original(self, batch)

    monkeypatch.setattr(BayesianSearcher, "_compute_batch", counting)
    rebuilt = _rebuild(recorded)
    rebuilt.ask()
    assert computed == [3]


def test_rebuild_checks_the_params_it_recomputes():
    _, recorded = _records_after(12)  # trials 10, 11 of batch 3 are recorded
    tampered = dict(recorded)
    params = dict(recorded[11].params)
    params["b"] = np.nextafter(params["b"], 0.0).item()  # one ulp off
    tampered[11] = RecordedTrial(params, recorded[11].outcome)
    with pytest.raises(RebuildMismatch, match="seed 7 trial 11: recorded params"):
        _rebuild(tampered)
    initial = dict(recorded)
    initial[2] = RecordedTrial(
        {**recorded[2].params, "c": 1 - recorded[2].params["c"]}, recorded[2].outcome
    )
    with pytest.raises(RebuildMismatch, match="trial 2"):
        _rebuild(initial)


def test_rebuild_takes_finished_batches_as_history():
    # A finished model batch is not recomputed: its records are the model's input.
    _, recorded = _records_after(12)
    rebuilt = _rebuild(recorded)
    assert canonical(rebuilt.suggestion(5)) == canonical(recorded[5].params)


def test_rebuild_accepts_recorded_params_in_any_key_order():
    _, recorded = _records_after(12)
    shuffled = {
        k: RecordedTrial(dict(reversed(list(r.params.items()))), r.outcome)
        for k, r in recorded.items()
    }
    rebuilt = _rebuild(shuffled)
    assert list(rebuilt.suggestion(5)) == list(TOY_SPACE)  # history kept in space order
    assert [canonical(s.params) for s in rebuilt.ask()] == [
        canonical(s.params) for s in _rebuild(recorded).ask()
    ]


def test_rebuild_refuses_records_that_could_not_exist():
    _, recorded = _records_after(12)
    gap = {k: r for k, r in recorded.items() if k != 8}  # batch [7..9] incomplete ...
    with pytest.raises(ValueError, match="recorded trial 10 could not have been suggested"):
        _rebuild(gap)  # ... yet trial 10 of the next batch was recorded
    bad = dict(recorded)
    bad[3] = RecordedTrial({**recorded[3].params, "a": 99}, recorded[3].outcome)
    with pytest.raises(ValueError, match="recorded trial 3: a must be an int in"):
        _rebuild(bad)
    with pytest.raises(ValueError, match="outside"):
        _rebuild({**recorded, 20: recorded[0]})


def test_equally_good_refinements_keep_the_first_start_like_bayes_opt():
    # On a flat acquisition every L-BFGS-B run stops at its start with the same value:
    # bayes_opt 3.4 keeps the first (a later run must be strictly better), and so must
    # the gradient refinement that replaces it.
    class Flat(_ExpectedImprovement):
        def _value_and_gradient(self, x):
            return 1.0, np.zeros(len(x))

    space = TargetSpace(None, {"a": (0.0, 1.0), "b": (0.0, 1.0)})
    starts = np.array([[0.25, 0.5], [0.75, 0.125], [0.5, 0.5]])
    x, value = Flat(xi=0.01)._smart_minimize(None, space, starts, None)
    reference, _ = ExpectedImprovement(xi=0.01)._smart_minimize(
        lambda point: 1.0, space, x_seeds=starts, random_state=None
    )
    assert (x.tolist(), value) == ([0.25, 0.5], 1.0)
    assert reference.tolist() == x.tolist()


def test_rebuilding_a_finished_run_computes_no_batch(monkeypatch):
    # Every trial recorded: every batch is finished history, none is recomputed.
    _, recorded = _records_after(20)
    computed: list[int] = []
    original = BayesianSearcher._compute_batch

    def counting(self, batch):
        computed.append(batch)
        return original(self, batch)

    monkeypatch.setattr(BayesianSearcher, "_compute_batch", counting)
    rebuilt = _rebuild(recorded)
    assert rebuilt.finished and rebuilt.ask() == [] and computed == []


HUGE_SCORES = [1e308, -1e308, 1e200, -3e200, 1.5e154, 7.0, -1e-310]


@pytest.mark.parametrize("scale", [1e308, 1e200, 1e-305])
def test_any_finite_scores_give_finite_distinct_targets(monkeypatch, scale):
    # Standardizing overflowed (the mean or the squares past 1e308: NaN or all-zero
    # targets) or underflowed (a std of 0 for distinct tiny scores).
    targets: list[np.ndarray] = []
    fit = bayesian.fit_length_scale

    def spy(x, y):
        targets.append(np.array(y))
        return fit(x, y)

    monkeypatch.setattr(bayesian, "fit_length_scale", spy)
    scores = {}

    def huge(params):
        score = scale * float(np.tanh(params["b"] - 1.5 + 0.1 * params["a"]))
        scores[len(scores)] = score
        return Outcome.ok(score)

    searcher = build("bayesian")
    drive(searcher, objective=huge)
    assert searcher.finished and targets
    for y in targets:
        assert np.all(np.isfinite(y))
        assert np.std(y) == pytest.approx(1.0)
    # The model still finds the better region: the best score after the random points
    # beats the best of them.
    assert max(list(scores.values())[4:]) > max(list(scores.values())[:4])


def test_mixed_huge_and_ordinary_scores_are_standardized_like_scaled_ones():
    scores = np.array(HUGE_SCORES)
    y = standardize(scores)
    scaled = scores / 1e300  # the same targets, computed another way
    reference = (scaled - scaled.mean()) / np.std(scaled)
    np.testing.assert_allclose(y, reference, rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(standardize(np.array([1e308, 1e308]))))
    assert np.all(standardize(np.array([1e308, 1e308])) == 0.0)  # equal scores: all 0


def test_ordinary_scores_are_standardized_bit_for_bit_as_before():
    rng = np.random.default_rng(5)
    for scores in (rng.normal(0, 3, 50), rng.normal(-100, 1e-3, 7), np.full(5, 2.5)):
        spread = float(np.std(scores))
        before = (scores - scores.mean()) / (spread if spread > 0 else 1.0)
        assert standardize(scores).tobytes() == before.tobytes()
