"""`python -m cluster backtest`: one backtest of a candle file, its metrics printed.

    python -m cluster backtest [--candles PATH.parquet] [--timeframe 5m]
        [--set name=value ...] [--fee F] [--slippage S] [--min-trades N] [--json]

Defaults: the committed fixture (5,000 BTC/USDT 5m candles), 5m, the default
parameters (the middle of every default search range). The file must hold the six
candle columns and pass the same checks as a job's data: finite values, prices > 0,
high and low around open and close, timestamps on the timeframe's grid, no gaps. Bad input
(an unknown or mistyped parameter, a missing file, an unsupported timeframe, a table
that is not a candle table, a backtest the kernel rejects) exits with code 2.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.errors import InvalidInput

if TYPE_CHECKING:
    from trainable.backtest import Candles
    from trainable.params import StrategyParams

HELP = "run one backtest of the strategy on a candle file and print its metrics"

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CANDLES = REPO_ROOT / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainable.declaration import DEFAULT_FEE, DEFAULT_MIN_TRADES, DEFAULT_SLIPPAGE

    parser.add_argument(
        "--candles",
        type=Path,
        default=DEFAULT_CANDLES,
        metavar="PATH",
        help="parquet candle file (default: the committed 5,000-candle BTC/USDT 5m fixture)",
    )
    parser.add_argument("--timeframe", default="5m", help="the file's bar size (default 5m)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="overrides",
        help="set a strategy parameter (repeatable); the others keep their defaults",
    )
    parser.add_argument("--fee", type=float, default=DEFAULT_FEE, help="fee per fill, fraction")
    parser.add_argument(
        "--slippage", type=float, default=DEFAULT_SLIPPAGE, help="slippage per fill, fraction"
    )
    parser.add_argument(
        "--min-trades",
        type=int,
        default=DEFAULT_MIN_TRADES,
        help="trades needed for a real score: with fewer, the score is the penalty -100",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from cluster.timeframes import timeframe_minutes
    from trainable.backtest import JobConstants, backtest_metrics

    minutes = timeframe_minutes(args.timeframe)
    params = parse_params(args.overrides)
    try:
        constants = JobConstants(
            timeframe_minutes=minutes,
            fee=args.fee,
            slippage=args.slippage,
            min_trades=args.min_trades,
        )
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    candles = read_candles(args.candles, args.timeframe)
    try:
        metrics = backtest_metrics(candles, params, constants)
    except ValueError as error:
        raise InvalidInput(f"the backtest rejected its input: {error}") from None
    report = {
        "candles": str(args.candles),
        "bars": len(candles),
        "timeframe": args.timeframe,
        "params": params.as_dict(),
        "fee": constants.fee,
        "slippage": constants.slippage,
        "min_trades": constants.min_trades,
        "metrics": metrics,
    }
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def parse_params(overrides: list[str]) -> StrategyParams:
    """Default params with `name=value` overrides; InvalidInput names every problem."""
    from trainable.declaration import PARAMETERS_BY_NAME
    from trainable.params import StrategyParams, default_params

    values: dict[str, object] = dict(default_params().as_dict())
    seen: set[str] = set()
    problems = []
    for item in overrides:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name:
            problems.append(f"--set {item!r} must look like name=value")
        elif name in seen:
            problems.append(f"--set {name} is given twice")
        elif name not in PARAMETERS_BY_NAME:
            close = difflib.get_close_matches(name, PARAMETERS_BY_NAME, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}")
        else:
            values[name] = _number(text, PARAMETERS_BY_NAME[name].kind)
        seen.add(name)
    try:
        params = StrategyParams.from_mapping(values)
    except ValueError as error:
        problems.append(str(error))
    if problems:
        raise InvalidInput(problems)
    return params


def _number(text: str, kind: str) -> object:
    """`text` as the declared kind; the text itself when it is not such a number, so
    that the parameter's own check names the problem."""
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        try:
            return float(text)  # "2.5" for an int: the check says "must be an int"
        except ValueError:
            return text


def read_candles(path: Path, timeframe: str) -> Candles:
    """Candles from a parquet file, through the same checks as every job's data
    (cluster.candles.cleaning: values, order, the timeframe's grid, no gaps)."""
    from cluster.candles.dataset import load_candles
    from cluster.candles.sources import ParquetSource
    from trainable.candle_table import candles_from_table

    dataset = load_candles(ParquetSource(str(path), timeframe))
    return candles_from_table(dataset.table)


def format_report(report: dict[str, Any]) -> str:
    """A readable table of the run and its metrics."""
    metrics = report["metrics"]
    lines = [
        f"candles     {report['candles']}",
        f"            {report['bars']:,} bars of {report['timeframe']}",
        f"costs       fee {report['fee']:g}, slippage {report['slippage']:g} per fill",
        "params      " + ", ".join(f"{k}={v:g}" for k, v in report["params"].items()),
        "",
    ]
    for name, value in metrics.items():
        lines.append(f"{name:<16}{_shown(value):>14}")
    lines.append("")
    lines.append(
        f"{metrics['n_trades']} trades; score is the Sharpe ratio when there are at least "
        f"{report['min_trades']} trades and it is defined, else the penalty -100 (see "
        "docs/strategy.md)."
    )
    return "\n".join(lines)


def _shown(value: object) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)
