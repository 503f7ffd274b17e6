"""Walk-forward's pure parts, without Ray or a database: whose search a searcher key is,
the windows' records, and the stitched equity, against hand-computed values."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cluster.job.out_of_sample import WalkForward, window_seed
from cluster.job.windows import SearchKey, WindowPlan, by_seed, search_key
from cluster.robustness.walk_forward import stitch, stitched_metrics


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 - 1])
def test_a_searcher_key_names_its_seed_and_window(seed):
    assert search_key(seed) == SearchKey(seed)
    for window in (0, 1, 999):
        assert search_key(window_seed(seed, window)) == SearchKey(seed, window)


def test_keys_group_by_their_job_seed_in_order():
    keys = [123, 42, window_seed(123, 0), window_seed(42, 0), window_seed(123, 1)]
    assert by_seed(keys) == {
        123: [123, window_seed(123, 0), window_seed(123, 1)],
        42: [42, window_seed(42, 0)],
    }


def test_the_window_records_of_a_plan():
    plan = WindowPlan(tuple(WalkForward(train=4, test=2, step=3).windows(11)))
    # (11 - 4 - 2) // 3 + 1 = 2 windows: rows [0, 4) then [4, 6); [3, 7) then [7, 9).
    times = np.arange(11, dtype=np.int64) * 300_000 + 1_000
    records = plan.records([5], times, "5m", budget=7)
    assert [(r.train_start, r.train_stop, r.test_start, r.test_stop) for r in records] == [
        (0, 4, 4, 6),
        (3, 7, 7, 9),
    ]
    assert [(r.train_from, r.test_from, r.test_until) for r in records] == [
        (1_000, 1_000 + 4 * 300_000, 1_000 + 6 * 300_000),
        (1_000 + 3 * 300_000, 1_000 + 7 * 300_000, 1_000 + 9 * 300_000),
    ]
    assert [r.search_seed for r in records] == [5 + 2**32, 5 + 2 * 2**32]
    assert {r.budget for r in records} == {7}
    assert plan.rows([5, window_seed(5, 1)]) == {window_seed(5, 1): (3, 7)}
    # A test window that ends with the candles: its end is the open time after the last.
    last = WindowPlan(tuple(WalkForward(train=4, test=2, step=2).windows(6)))
    assert last.records([5], times[:6], "5m", budget=1)[0].test_until == 1_000 + 6 * 300_000


def test_no_walk_forward_is_no_window():
    assert WindowPlan(()).keys([1, 2]) == [] and WindowPlan(()).rows([1, 2]) == {}


def test_stitched_windows_compound():
    first = np.array([1.0, 1.1, 1.21])
    second = np.array([1.0, 0.9, 0.99])
    stitched = stitch([first, second])
    expected = [1.0, 1.1, 1.21, 1.21, 1.21 * 0.9, 1.21 * 0.99]
    assert stitched.tolist() == pytest.approx(expected, rel=1e-15)
    # The step into the second window is flat: a return of exactly 0.
    assert stitched[3] / stitched[2] - 1.0 == 0.0
    assert stitch([]).size == 0


def test_the_stitched_metrics_are_the_kernels_definitions_by_hand():
    equity = stitch([np.array([1.0, 1.1, 1.21]), np.array([1.0, 0.9, 0.99])])
    returns = [b / a - 1 for a, b in itertools.pairwise(equity)]
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    found = stitched_metrics(equity, bars_per_year=100.0)
    assert found["n_returns"] == 5
    assert found["sharpe"] == pytest.approx(mean / std * 10.0, rel=1e-12)
    assert found["total_return"] == pytest.approx(1.21 * 0.99 - 1.0, rel=1e-12)
    assert found["max_drawdown"] == pytest.approx((1.21 - 1.21 * 0.9) / 1.21, rel=1e-12)


def test_the_example_job_has_four_windows_over_the_bundled_candles():
    from conftest import REPO_ROOT

    from cluster.job.parse import load_job_file

    spec = load_job_file(REPO_ROOT / "examples" / "walk_forward.toml")
    plan = WindowPlan.of(spec, 5000)  # the bundled file's candles
    assert [(w.train_start, w.test_start, w.test_stop) for w in plan.windows] == [
        (0, 2000, 2750), (750, 2750, 3500), (1500, 3500, 4250), (2250, 4250, 5000),
    ]  # fmt: skip


def test_a_window_trial_is_named_by_its_seed_and_window_in_the_dashboard():
    from types import SimpleNamespace

    from cluster.job.experiment import _trial_name

    def name(key: int, *indices: int) -> str:
        trials = [{"trial_index": i, "params": {}} for i in indices]
        return _trial_name(SimpleNamespace(config={"seed": key, "trials": trials}))

    assert name(42, 3) == "seed42_trials3"
    assert name(42 + 3 * 2**32, 0, 1, 2) == "seed42_window2_trials0-2"
