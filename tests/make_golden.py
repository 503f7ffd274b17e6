"""Regenerate tests/data/golden_backtest.json from the slow reference backtest.

    python -m tests.make_golden            # rewrite the file
    python -m tests.make_golden --check    # exit 1 unless a fresh run reproduces it

The golden values are the reference's trades and metrics on the committed 5,000-row
BTC/USDT 5m fixture for a few parameter sets (the default parameters and four chosen
to trade in different ways), with every float written as float.hex() so that the
comparison is bit for bit. Regenerate only after a deliberate change of STRATEGY.md's
semantics (which also bumps RECORDS_VERSION), and say why in the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from tests.backtest_strategies import load_candles
from tests.reference_backtest import reference_backtest
from trainable.backtest import JobConstants, Trade
from trainable.params import StrategyParams, default_params

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = REPO_ROOT / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet"
GOLDEN = REPO_ROOT / "tests" / "data" / "golden_backtest.json"
TRADE_FIELDS = tuple(Trade.__dataclass_fields__)

# name -> (parameters, job constants, why this set)
CASES: dict[str, tuple[dict[str, int | float], dict[str, int | float], str]] = {
    "default": (
        default_params().as_dict(),
        {"timeframe_minutes": 5, "fee": 0.001, "slippage": 0.0, "min_trades": 5},
        "the middle of every default search range, default costs",
    ),
    "tight": (
        {
            "key_level_lookback": 50,
            "min_level_touches": 2,
            "min_distance_from_level": 0.0005,
            "pierce_depth": 0.001,
            "reversal_candles": 1,
            "volume_spike_threshold": 1.0,
            "atr_multiplier_sl": 1.0,
            "risk_reward_ratio": 1.0,
            "max_holding_periods": 10,
        },
        {"timeframe_minutes": 5, "fee": 0.001, "slippage": 0.0, "min_trades": 5},
        "the low end of every range: many short trades",
    ),
    "wide": (
        {
            "key_level_lookback": 300,
            "min_level_touches": 5,
            "min_distance_from_level": 0.005,
            "pierce_depth": 0.005,
            "reversal_candles": 5,
            "volume_spike_threshold": 3.0,
            "atr_multiplier_sl": 3.0,
            "risk_reward_ratio": 4.0,
            "max_holding_periods": 200,
        },
        {"timeframe_minutes": 5, "fee": 0.001, "slippage": 0.0, "min_trades": 5},
        "the high end of every range: few long trades",
    ),
    "costs": (
        {
            "key_level_lookback": 120,
            "min_level_touches": 3,
            "min_distance_from_level": 0.0015,
            "pierce_depth": 0.002,
            "reversal_candles": 2,
            "volume_spike_threshold": 1.5,
            "atr_multiplier_sl": 1.5,
            "risk_reward_ratio": 2.0,
            "max_holding_periods": 48,
        },
        {"timeframe_minutes": 5, "fee": 0.00075, "slippage": 0.0005, "min_trades": 5},
        "a maker-like fee and slippage (C14)",
    ),
    "edge": (
        {
            "key_level_lookback": 20,
            "min_level_touches": 1,
            "min_distance_from_level": 0.0,
            "pierce_depth": 0.0005,
            "reversal_candles": 1,
            "volume_spike_threshold": 2.0,
            "atr_multiplier_sl": 0.5,
            "risk_reward_ratio": 3.0,
            "max_holding_periods": 1,
        },
        {"timeframe_minutes": 5, "fee": 0.0, "slippage": 0.0, "min_trades": 0},
        "outside the default ranges: single-pivot levels, zero zone width, 1-bar holds, no fee",
    ),
}


def encode(value: object) -> object:
    """float -> float.hex() string; ints, strings and None unchanged."""
    return value.hex() if isinstance(value, float) else value


def decode(value: object) -> object:
    """The inverse of encode for the golden file's values."""
    if isinstance(value, str) and value.startswith(("0x", "-0x")):
        return float.fromhex(value)
    return value


def golden_case(name: str) -> dict[str, object]:
    params, constants, why = CASES[name]
    result = reference_backtest(
        load_candles(FIXTURE),
        StrategyParams.from_mapping(params),
        JobConstants(**constants),  # type: ignore[arg-type]
    )
    trades = result.trades
    return {
        "name": name,
        "why": why,
        "params": params,
        "constants": constants,
        "summary": {
            "n_trades": len(trades),
            "long": sum(1 for t in trades if t.side == 1),
            "short": sum(1 for t in trades if t.side == -1),
            "exit_reasons": {
                reason: sum(1 for t in trades if t.exit_reason == reason)
                for reason in ("stop", "target", "time", "end")
            },
        },
        "metrics": {key: encode(value) for key, value in result.metrics.items()},
        "metrics_readable": dict(result.metrics),  # for people; the hex values decide
        "trades": [[encode(getattr(t, field)) for field in TRADE_FIELDS] for t in trades],
    }


def build() -> dict[str, object]:
    return {
        "about": (
            "Golden trades and metrics of the reference backtest (tests/reference_backtest.py) "
            "on the committed fixture. Floats are float.hex() strings; compare bit for bit. "
            "Regenerate with `python -m tests.make_golden` (see its docstring)."
        ),
        "fixture": {
            "path": str(FIXTURE.relative_to(REPO_ROOT)),
            "sha256": hashlib.sha256(FIXTURE.read_bytes()).hexdigest(),
            "rows": len(load_candles(FIXTURE)),
        },
        "trade_fields": list(TRADE_FIELDS),
        "cases": [golden_case(name) for name in CASES],
    }


def render(golden: dict[str, object]) -> str:
    """One trade per line keeps the file reviewable in a diff."""
    text = json.dumps(golden, indent=1)
    return _one_trade_per_line(text) + "\n"


def _one_trade_per_line(text: str) -> str:
    out: list[str] = []
    buffer: list[str] | None = None
    lines = text.split("\n")
    for line in lines:
        stripped = line.strip()
        if buffer is None and stripped == "[" and out and out[-1].rstrip().endswith(("[", ",")):
            buffer = [line.rstrip()]
        elif buffer is not None:
            buffer.append(stripped)
            if stripped.startswith("]"):
                out.append(buffer[0] + " ".join(buffer[1:-1]) + stripped)
                buffer = None
        else:
            out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        same = GOLDEN.read_text() == text
        print("golden file reproduced" if same else "golden file differs from a fresh run")
        return 0 if same else 1
    GOLDEN.write_text(text)
    print(f"wrote {GOLDEN.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
