"""Monte Carlo of a parameter set and the sensitivity of an optimum: pure functions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cluster.records.exact import same_value
from cluster.robustness.montecarlo import (
    CANDLE_BOOTSTRAP,
    TRADE_BOOTSTRAP,
    TRADE_ORDER,
    block_bootstrap,
    candle_scenario,
    max_drawdown,
    path_generator,
    permuted,
    trade_equity,
    trade_scenario,
)
from cluster.robustness.sensitivity import PLATEAU, SPIKE, neighbours, summarize
from search.space import FloatRange, IntRange, Space
from trainable.types import Candles

TRADES = np.array([0.02, -0.01, 0.03, -0.02, 0.01, 0.015, -0.005])


def test_a_permutation_of_a_single_trade_is_that_trade():
    rng = path_generator(42, 7, TRADE_ORDER, 0)
    assert list(permuted(np.array([0.0123]), rng)) == [0.0123]
    result = trade_scenario(np.array([0.0123]), TRADE_ORDER, seed=42, candidate=7, paths=50,
                            trades_per_year=100.0)  # fmt: skip
    compounded = (1.0 + 0.0123) - 1.0  # every path: the one trade's equity, 1 + r
    assert result.total_return == dict.fromkeys(result.total_return, compounded)
    assert result.actual["total_return"] == compounded


def test_trades_compound_their_return_fractions():
    equity = trade_equity(np.array([0.1, -0.5, 0.2]))
    assert list(equity) == [1.0, 1.1, 1.1 * 0.5, 1.1 * 0.5 * 1.2]
    assert max_drawdown(equity) == (1.1 - 0.55) / 1.1


def test_reordering_keeps_the_product_and_moves_the_drawdown():
    result = trade_scenario(TRADES, TRADE_ORDER, seed=1, candidate=3, paths=400,
                            trades_per_year=50.0)  # fmt: skip
    product = float(np.prod(1.0 + TRADES)) - 1.0
    assert all(v == pytest.approx(product, rel=1e-12) for v in result.total_return.values())
    drawdowns = result.max_drawdown
    assert drawdowns["0.05"] < drawdowns["0.95"]


def test_same_seeds_give_the_same_distribution_bit_for_bit():
    for scenario in (TRADE_ORDER, TRADE_BOOTSTRAP):
        first = trade_scenario(
            TRADES, scenario, seed=5, candidate=9, paths=200, trades_per_year=80.0
        )
        again = trade_scenario(
            TRADES, scenario, seed=5, candidate=9, paths=200, trades_per_year=80.0
        )
        assert same_value(dataclasses.asdict(first), dataclasses.asdict(again))
        other = trade_scenario(
            TRADES, scenario, seed=6, candidate=9, paths=200, trades_per_year=80.0
        )
        if scenario == TRADE_BOOTSTRAP:
            assert not same_value(dataclasses.asdict(first), dataclasses.asdict(other))


def test_a_path_does_not_depend_on_how_many_were_drawn():
    few = trade_scenario(TRADES, TRADE_BOOTSTRAP, seed=5, candidate=1, paths=1, trades_per_year=1.0)
    path0 = TRADES[path_generator(5, 1, TRADE_BOOTSTRAP, 0).integers(0, 7, 7)]
    assert few.total_return["0.5"] == float(trade_equity(path0)[-1]) - 1.0


def _candles(n: int = 300) -> Candles:
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.standard_normal(n) * 0.01))
    open_ = np.concatenate(([100.0], close[:-1]))
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    return Candles(np.arange(n, dtype=np.int64) * 300_000, open_, high, low, close,
                   rng.uniform(1, 2, n))  # fmt: skip


def test_block_bootstrap_keeps_the_candles_shape():
    candles = _candles()
    drawn = block_bootstrap(candles, 20, path_generator(1, 2, CANDLE_BOOTSTRAP, 3))
    assert (drawn.timestamp == candles.timestamp).all()
    assert (drawn.high >= np.maximum(drawn.open, drawn.close)).all()
    assert (drawn.low <= np.minimum(drawn.open, drawn.close)).all()
    assert drawn.close[0] == candles.close[0]
    # every bar's move against the previous close is one of the original moves
    original = np.sort(candles.close[1:] / candles.close[:-1])
    moves = drawn.close[1:] / drawn.close[:-1]
    nearest = original[np.clip(np.searchsorted(original, moves), 0, len(original) - 1)]
    lower = original[np.clip(np.searchsorted(original, moves) - 1, 0, len(original) - 1)]
    gap = np.minimum(abs(nearest - moves), abs(lower - moves))
    assert gap.max() < 1e-12
    again = block_bootstrap(candles, 20, path_generator(1, 2, CANDLE_BOOTSTRAP, 3))
    assert (again.close == drawn.close).all() and (again.volume == drawn.volume).all()


def test_candle_scenario_counts_invalid_paths():
    candles = _candles()
    calls = []

    def evaluate(drawn: Candles):
        calls.append(drawn)
        if len(calls) % 2:
            return {"sharpe": None, "max_drawdown": None, "total_return": None}, "ValueError: no"
        return {"sharpe": 1.0, "max_drawdown": 0.1, "total_return": 0.2}, None

    result = candle_scenario(candles, evaluate, seed=1, candidate=0, paths=10, block=25,
                             actual={"sharpe": 2.0})  # fmt: skip
    assert len(calls) == 10 and result.undefined == 5
    assert result.sharpe == dict.fromkeys(result.sharpe, 1.0)
    assert result.actual == {"sharpe": 2.0, "max_drawdown": None, "total_return": None}


SPACE = Space({"x": FloatRange(0.0, 1.0), "k": IntRange(1, 5), "fixed": IntRange(3, 3)})


def test_neighbours_move_floats_by_a_share_and_ints_by_one():
    found = neighbours({"x": 0.5, "k": 1, "fixed": 3}, SPACE, share=0.1)
    moved = {(n.parameter, n.direction): n.value for n in found}
    assert moved == {("x", -1): 0.4, ("x", 1): 0.6, ("k", 1): 2}  # k = 0 is out of range
    assert all(n.params["fixed"] == 3 for n in found)


def test_plateau_and_spike():
    found = neighbours({"x": 0.5, "k": 3, "fixed": 3}, SPACE)
    measured = [0.0, 0.5, 1.0, 1.5, 2.0]  # median 1.0
    flat = summarize(3.0, [(n, 2.5) for n in found], measured)  # keeps 0.75 of the edge
    assert flat.verdict == PLATEAU and flat.keeps["x"]["-1"] == 0.75
    sharp = summarize(3.0, [(n, 2.5 if n.parameter == "x" else 1.2) for n in found], measured)
    assert sharp.verdict == SPIKE and sharp.worst == "k"
    assert summarize(1.0, [(n, 1.0) for n in found], [1.0, 1.0]).verdict is None
