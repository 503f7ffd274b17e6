"""Golden values: the kernel and the reference reproduce tests/data/golden_backtest.json.

The file holds the reference's trades and metrics on the committed BTC/USDT 5m fixture
for five parameter sets, every float as float.hex() (see tests/make_golden.py for how
it was made). Both implementations must match it bit for bit: a change in either
shows up here even when they change together.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from tests.backtest_compare import assert_same_metrics, assert_same_trades
from tests.backtest_strategies import load_candles
from tests.implementations import IMPLEMENTATION_NAMES, implementation
from tests.make_golden import FIXTURE, GOLDEN, REPO_ROOT, decode
from trainable.backtest import JobConstants, Trade
from trainable.params import StrategyParams

GOLDEN_DATA = json.loads(GOLDEN.read_text())
CASE_NAMES = [case["name"] for case in GOLDEN_DATA["cases"]]


def golden_trades(case) -> list[Trade]:
    fields = GOLDEN_DATA["trade_fields"]
    return [Trade(**dict(zip(fields, map(decode, row), strict=True))) for row in case["trades"]]


def test_the_fixture_is_the_one_the_golden_values_were_made_from():
    fixture = GOLDEN_DATA["fixture"]
    assert fixture["path"] == str(FIXTURE.relative_to(REPO_ROOT))
    assert hashlib.sha256(FIXTURE.read_bytes()).hexdigest() == fixture["sha256"]


@pytest.mark.parametrize("implementation_name", IMPLEMENTATION_NAMES)
@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_backtest_reproduces_the_golden_values(implementation_name, case_name):
    backtest = implementation(implementation_name)
    case = GOLDEN_DATA["cases"][CASE_NAMES.index(case_name)]
    result = backtest(
        load_candles(FIXTURE),
        StrategyParams.from_mapping(case["params"]),
        JobConstants(**case["constants"]),
    )
    labels = (implementation_name, "golden")
    assert_same_trades(result.trades, golden_trades(case), labels)
    want = {name: decode(value) for name, value in case["metrics"].items()}
    assert_same_metrics(result.metrics, want, labels)


def test_golden_cases_exercise_every_exit_but_end_and_both_sides():
    # Agreement on runs that do not trade would prove little; the summaries are the
    # reference's own counts, so check them against the trades too.
    reasons = set()
    for case in GOLDEN_DATA["cases"]:
        trades = golden_trades(case)
        assert case["summary"]["n_trades"] == len(trades) >= 15
        assert {t.side for t in trades} == {1, -1}
        reasons |= {t.exit_reason for t in trades}
    assert reasons >= {"stop", "target", "time"}


def test_a_fresh_process_regenerates_the_golden_file_exactly():
    # Another interpreter with another hash seed: the reference depends on neither.
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    completed = subprocess.run(
        [sys.executable, "-m", "tests.make_golden", "--check"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
