"""`python -m cluster backtest`: runs on the fixture, prints the kernel's metrics, and
turns bad input into exit code 2 with a message naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.cli import main
from trainable.backtest import JobConstants, backtest_metrics
from trainable.candle_table import candles_from_table
from trainable.params import StrategyParams, default_params


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["backtest", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def fixture_table(fixture_candles_path) -> pa.Table:
    return pq.read_table(fixture_candles_path).combine_chunks()


def test_json_output_is_the_kernels_metrics(capsys, fixture_table):
    code, out, _ = run_cli(
        capsys, "--json", "--set", "reversal_candles=2", "--set", "pierce_depth=0.004",
        "--fee", "0.0005", "--slippage", "0.0001", "--min-trades", "3",
    )  # fmt: skip
    assert code == 0
    report = json.loads(out)
    params = {**default_params().as_dict(), "reversal_candles": 2, "pierce_depth": 0.004}
    assert report["params"] == params
    expected = backtest_metrics(
        candles_from_table(fixture_table),
        StrategyParams.from_mapping(params),
        JobConstants(timeframe_minutes=5, fee=0.0005, slippage=0.0001, min_trades=3),
    )
    assert report["metrics"] == expected
    assert report["bars"] == 5000 and report["metrics"]["n_trades"] > 0


def test_the_table_names_every_metric_and_the_trade_count(capsys, fixture_table):
    code, out, _ = run_cli(capsys)
    assert code == 0
    metrics = backtest_metrics(
        candles_from_table(fixture_table), default_params(), JobConstants(timeframe_minutes=5)
    )
    for name in metrics:
        assert f"\n{name} " in out
    assert f"{metrics['n_trades']} trades" in out


def test_module_entry_point_runs_in_a_fresh_interpreter():
    completed = subprocess.run(
        [sys.executable, "-m", "cluster", "backtest", "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["metrics"]["n_trades"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "reversal_candle=2"], "did you mean 'reversal_candles'?"),
        (["--set", "max_holding_periods=2.5"], "max_holding_periods must be an int"),
        (["--set", "pierce_depth=deep"], "pierce_depth must be a number"),
        (["--set", "pierce_depth"], "must look like name=value"),
        (["--set", "pierce_depth=0.1", "--set", "pierce_depth=0.2"], "given twice"),
        (["--timeframe", "7m"], "timeframe '7m' is not supported"),
        (
            ["--timeframe", "1h"],
            "row 1 (2021-09-29T09:05Z): timestamp 1632906300000 is not on the 3600000 ms grid",
        ),
        (["--candles", "/nonexistent/candles.parquet"], "candles.parquet: no such file"),
        (["--fee", "1.5"], "fee must be finite and in [0, 1)"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err
    assert out == ""


def test_a_file_that_is_not_a_candle_table_exits_2(capsys, tmp_path, fixture_table):
    path = tmp_path / "no_volume.parquet"
    pq.write_table(fixture_table.drop_columns(["volume"]), path)
    code, _, err = run_cli(capsys, "--candles", str(path))
    assert code == 2 and "columns ['volume'] are missing" in err

    path = tmp_path / "not_parquet.parquet"
    path.write_text("timestamp,open\n")
    code, _, err = run_cli(capsys, "--candles", str(path))
    assert code == 2 and "unreadable" in err


def test_prices_the_kernel_rejects_exit_2(capsys, tmp_path, fixture_table):
    low = fixture_table.column("low").to_numpy().copy()
    low[100] = 0.0
    path = tmp_path / "zero_low.parquet"
    pq.write_table(fixture_table.set_column(3, "low", pa.array(low)), path)
    code, _, err = run_cli(capsys, "--candles", str(path))
    assert code == 2 and "row 100 (2021-09-29T17:20Z): low 0.0 is not > 0" in err
