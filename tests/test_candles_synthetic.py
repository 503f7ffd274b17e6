"""The synthetic source: deterministic from its data seed, clean, and market-like."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from cluster.candles.dataset import load_candles
from cluster.candles.sources import SyntheticSource
from cluster.candles.synthetic import ar1, exp, generate

REPO = Path(__file__).resolve().parent.parent
START = 1_704_067_200_000  # 2024-01-01T00:00Z


def test_same_seed_same_bits_other_seed_other_candles() -> None:
    first = generate(SyntheticSource("5m", START, 5_000, 11))
    again = generate(SyntheticSource("5m", START, 5_000, 11))
    other = generate(SyntheticSource("5m", START, 5_000, 12))
    for name in ("timestamp", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.close, other.close)


def test_a_fresh_process_gives_the_same_fingerprint() -> None:
    source = SyntheticSource("1h", START, 20_000, 3)
    here = load_candles(source).manifest.fingerprint
    code = (
        "from cluster.candles.dataset import load_candles\n"
        "from cluster.candles.sources import SyntheticSource\n"
        f"print(load_candles(SyntheticSource('1h', {START}, 20000, 3)).manifest.fingerprint)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "random"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == here


def test_synthetic_candles_pass_every_rule_without_gaps() -> None:
    source = SyntheticSource("15m", START, 30_000, 5)
    dataset = load_candles(source)  # gap policy "reject": any rule break or gap raises
    assert dataset.manifest.rows == 30_000 and dataset.manifest.filled_ranges == ()
    table = dataset.table
    assert np.array_equal(table["open"].to_numpy()[1:], table["close"].to_numpy()[:-1])
    assert (dataset.manifest.exchange, dataset.manifest.pair) == (None, None)


def test_stylized_facts_of_a_market() -> None:
    candles = generate(SyntheticSource("5m", START, 50_000, 1))
    returns = np.diff(np.log(candles.close))
    absolute = np.abs(returns - returns.mean())
    clustering = np.corrcoef(absolute[1:], absolute[:-1])[0, 1]
    kurtosis = np.mean((returns - returns.mean()) ** 4) / np.var(returns) ** 2
    assert clustering > 0.1  # volatility clusters (i.i.d. returns give ~0)
    assert kurtosis > 4  # fat tails (a normal distribution gives 3)
    spikes = np.mean(candles.volume > 4 * np.median(candles.volume))
    assert 0.005 < spikes < 0.1
    assert 0.0008 < np.std(returns) < 0.006  # per 5 minutes, like BTC/USDT


def test_false_breaks_of_recent_extremes_occur() -> None:
    """Counted by a plain loop: a wick below the previous 48 bars' lowest low whose body
    stays above it (and the mirror image above)."""
    candles = generate(SyntheticSource("5m", START, 20_000, 2))
    low, high = candles.low, candles.high
    body_low = np.minimum(candles.open, candles.close)
    body_high = np.maximum(candles.open, candles.close)
    below = above = 0
    for p in range(48, len(low)):
        support, resistance = low[p - 48 : p].min(), high[p - 48 : p].max()
        below += low[p] < support < body_low[p]
        above += body_high[p] < resistance < high[p]
    assert below >= 20 and above >= 20


def test_ar1_matches_the_plain_recursion() -> None:
    innovations = np.random.default_rng(0).standard_normal(3_000)
    for phi in (0.95, 0.995, 1 - 2e-5):
        y, expected = 0.0, []
        for e in innovations:
            y = phi * y + e
            expected.append(y)
        assert np.allclose(ar1(innovations, phi, block=256), expected, rtol=1e-11, atol=1e-11)


def test_exp_is_accurate() -> None:
    x = np.linspace(-40.0, 40.0, 20_001)
    expected = np.array([math.exp(v) for v in x])
    assert np.max(np.abs(exp(x) / expected - 1.0)) < 4.5e-16  # about 2 ulp
