"""The report's statistics on hand-made trials (no Ray, no database): each seed's best, the
spread on the searchers' scale, the consensus, trials to within 1% and the verdict's
edges; and the kernel's equity curve that the report draws."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
from conftest import FIXTURE_CANDLES

from cluster.records.types import TrialRecord
from cluster.report.frame import frame_of_trials
from cluster.report.stability import (
    MIN_SEEDS,
    PARAM_SPREAD_LIMIT,
    analyse,
    consensus_value,
    trials_to_near_best,
)
from search.space import FloatRange, IntRange, Space
from trainable.strategies import metrics_with_score

SPEC_ID = hashlib.sha256(b"a spec").hexdigest()
SPACE = Space([("x", FloatRange(0.0, 1.0)), ("k", IntRange(1, 5)), ("fixed", FloatRange(2.0, 2.0))])
PENALTY = -100.0


def trial(seed: int, index: int, score: float, x: float, k: int) -> TrialRecord:
    metrics = {name: v for name, v in metrics_with_score(score).items() if name != "score"}
    params = {"x": x, "k": k, "fixed": 2.0}
    return TrialRecord(SPEC_ID, seed, index, params, "ok", score, metrics)


def test_ties_go_to_the_lowest_trial_index_and_the_spread_is_on_the_searchers_scale():
    trials = [
        trial(1, 0, 0.5, 0.10, 1), trial(1, 1, 0.9, 0.20, 2), trial(1, 2, 0.9, 0.90, 5),
        trial(2, 0, 0.7, 0.25, 3), trial(2, 1, 0.1, 0.99, 5),
    ]  # fmt: skip
    stability = analyse(frame_of_trials(trials, ["x", "k", "fixed"]), SPACE, PENALTY)
    one, two = stability.seeds
    assert (one.trial_index, one.params) == (1, {"x": 0.20, "k": 2, "fixed": 2.0})
    assert (two.trial_index, two.score) == (0, 0.7)
    spreads = {p.name: p.spread for p in stability.parameters}
    # k = 2 and k = 3 on [1, 5]: one of five equal cells apart.
    assert spreads == {"x": 0.25 - 0.20, "k": 1 / 5, "fixed": None}
    assert stability.verdict.result == "stable"  # 0.2 is at the limit, not above it
    assert stability.verdict.parameter == "k" and stability.verdict.largest_spread == 0.2
    assert stability.consensus == {"x": (0.20 + 0.25) / 2, "k": 2, "fixed": 2.0}
    assert (stability.scores.lowest, stability.scores.highest) == (0.7, 0.9)


def test_one_seed_out_of_line_makes_it_unstable_and_one_seed_gives_no_verdict():
    agreeing = [trial(s, 0, 1.0, 0.5, 3) for s in (1, 2, 3)]
    stray = trial(4, 0, 1.0, 0.5 + PARAM_SPREAD_LIMIT + 0.01, 3)
    verdict = analyse(frame_of_trials([*agreeing, stray]), SPACE, PENALTY).verdict
    assert verdict.result == "unstable" and verdict.above_limit == ("x",)
    assert "more than the limit 0.2" in verdict.reason
    alone = analyse(frame_of_trials(agreeing[:1]), SPACE, PENALTY).verdict
    assert MIN_SEEDS == 2 and alone.result is None and "at least 2" in alone.reason


def test_nothing_searched_gives_no_verdict():
    space = Space(
        [("x", FloatRange(0.5, 0.5)), ("k", IntRange(3, 3)), ("fixed", FloatRange(2.0, 2.0))]
    )
    verdict = analyse(
        frame_of_trials([trial(s, 0, 1.0, 0.5, 3) for s in (1, 2)]), space, PENALTY
    ).verdict
    assert verdict.result is None and "nothing was searched" in verdict.reason


@pytest.mark.parametrize(
    ("values", "integer", "expected"),
    [
        ([1, 2], True, 2),  # 1.5 rounds half to even: 2
        ([2, 3], True, 2),  # 2.5 rounds half to even: 2
        ([2, 3, 9], True, 3),
        ([0.1, 0.2], False, (0.1 + 0.2) / 2),
        ([0.3, -0.0, 7.0], False, 0.3),
    ],
)
def test_the_consensus_is_the_median_with_ints_rounded_half_to_even(values, integer, expected):
    value = consensus_value(values, integer)
    assert value == expected and type(value) is (int if integer else float)


@pytest.mark.parametrize(
    ("scores", "expected", "why"),
    [
        ([1.0, 5.0, 9.95, 10.0], 3, "range 9: within 0.09 of 10 from 9.95 on"),
        ([-10.0, -2.0, -1.01, -1.0], 3, "a negative best: range 9, -1.01 is within 0.09"),
        ([-1.0, 0.0, -0.005, 0.0], 2, "a best of exactly 0: 1% of the range 1, reached at 0.0"),
        ([-1e-12, 1e-12, 0.0], 2, "near zero: the range is 2e-12, not 1% of 1e-12"),
        ([3.0, 3.0, 3.0], 1, "every score equal: the first trial"),
        ([PENALTY, -5.0, PENALTY, 5.0], 4, "penalties are no measured score: range 10"),
        ([PENALTY, PENALTY], 1, "only penalties"),
        ([5.0, 1.0, 4.96, 4.99], 1, "the first trial was the best"),
    ],
)
def test_trials_to_within_one_percent(scores, expected, why):
    assert trials_to_near_best(scores, PENALTY) == expected, why


def test_the_equity_curve_is_the_one_the_metrics_come_from():
    import pyarrow.parquet as pq

    from trainable.backtest import JobConstants
    from trainable.candle_table import candles_from_table
    from trainable.strategies import get_strategy, outcome

    candles = candles_from_table(pq.read_table(FIXTURE_CANDLES).combine_chunks())
    strategy = get_strategy("key_level_reversal")
    params = {
        **{"key_level_lookback": 120, "min_level_touches": 2, "reversal_candles": 1},
        **{"min_distance_from_level": 0.002, "pierce_depth": 0.003, "max_holding_periods": 50},
        **{"volume_spike_threshold": 1.0, "atr_multiplier_sl": 2.0, "risk_reward_ratio": 2.0},
    }
    constants = JobConstants(timeframe_minutes=5)
    metrics, message = outcome(strategy, candles, params, constants)
    assert message is None and metrics["n_trades"] > 0
    equity = strategy.equity(candles, params, constants)
    assert equity.shape == (len(candles),) and equity[0] == 1.0
    assert equity[-1] - 1.0 == metrics["total_return"]  # bit for bit: E_0 is 1.0
    assert math.isfinite(float(np.min(equity)))


def test_the_commands_help_states_the_rule_the_report_applies():
    from cluster.report.command import EPILOG
    from cluster.report.stability import NEAR_BEST_SHARE

    text = " ".join(EPILOG.split())
    assert f"spread is at most {PARAM_SPREAD_LIMIT}, with at least {MIN_SEEDS} seeds" in text
    assert f"within {NEAR_BEST_SHARE:.0%} of it" in text
