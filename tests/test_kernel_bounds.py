"""The kernel never reads or writes outside an array.

numba does not check indexes in the compiled kernel: an off-by-one there reads a
neighbouring value (or writes over one) and carries on, and no result needs to show
it. Here the kernel runs again in a fresh process compiled with NUMBA_BOUNDSCHECK=1,
where such an index raises IndexError, on series chosen to reach the ends of its
arrays: every length from 1 to 40 bars (the ATR needs 15, an entry 22), pivots that
all leave a short lookback window while the scan goes on, a volume spike with no pivot
at all or with every pivot gone (the pivot scans reach the arrays' ends), and the
5,000-bar fixture.
It must give the bits the unchecked kernel gives in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.backtest_strategies import load_candles
from tests.micro_candles import (
    HITS_104,
    NO_COSTS,
    PIERCE_LOW,
    params,
    series,
    support_at_98_5,
)
from trainable.backtest import Candles, JobConstants, backtest
from trainable.params import StrategyParams, default_params

REPO = Path(__file__).resolve().parent.parent
# A filler bar (no pivot, tests/micro_candles.py) with 3x the filler's volume: a spike.
VOLUME_ONLY = (100.0, 101.0, 99.0, 100.0, 3.0)
FIXTURE = REPO / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"


def _cases() -> list[tuple[str, Candles, StrategyParams, JobConstants]]:
    common = {**support_at_98_5(), 25: PIERCE_LOW, 30: HITS_104}
    cases = [(f"{n} bars", series(n, common), params(), NO_COSTS) for n in range(1, 41)]
    # Pivots at 6 and 12 leave a 5-bar window long before the later pierce bars.
    late = {**common, 45: PIERCE_LOW, 60: PIERCE_LOW, 75: PIERCE_LOW}
    cases.append(("lookback 5", series(80, late), params(key_level_lookback=5), NO_COSTS))
    # A volume spike on a bar that is no pivot, so that the window's scans run to the end
    # of the pivot arrays: with no pivot at all, and with every pivot (6 and 12) older
    # than the 5-bar lookback and none after them.
    spike = {25: VOLUME_ONLY}
    cases.append(("no pivots", series(40, spike), params(), NO_COSTS))
    gone = {**support_at_98_5(), 30: VOLUME_ONLY}
    cases.append(("pivots all gone", series(40, gone), params(key_level_lookback=5), NO_COSTS))
    fixture = load_candles(FIXTURE)
    busy = {**default_params().as_dict(), "key_level_lookback": 30, "min_level_touches": 1}
    five = JobConstants(timeframe_minutes=5, fee=0.001, slippage=0.0005, min_trades=5)
    cases.append(("fixture, defaults", fixture, default_params(), five))
    cases.append(("fixture, busy", fixture, StrategyParams.from_mapping(busy), five))
    return cases


def _hex(value: object) -> object:
    return value.hex() if isinstance(value, float) else value


def results() -> dict[str, object]:
    """Every case's trades and metrics, floats as hex (or the error's text)."""
    out: dict[str, object] = {}
    for name, candles, strategy, constants in _cases():
        try:
            result = backtest(candles, strategy, constants)
        except ValueError as error:  # a rejected input (1 bar is fine, 0 is not)
            out[name] = f"ValueError: {error}"
            continue
        trades = [[_hex(v) for v in vars(t).values()] for t in result.trades]
        out[name] = {"trades": trades, "metrics": {k: _hex(v) for k, v in result.metrics.items()}}
    return out


def test_the_kernel_stays_inside_its_arrays():
    unchecked = results()
    assert any(isinstance(r, dict) and r["trades"] for r in unchecked.values())
    with tempfile.TemporaryDirectory(prefix="numba-boundscheck-") as cache:
        env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": cache}
        done = subprocess.run(
            [sys.executable, "-c", "import json, tests.test_kernel_bounds as t; "
             "print(json.dumps(t.results()))"],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == json.loads(json.dumps(unchecked))
