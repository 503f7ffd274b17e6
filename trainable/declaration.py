"""What the strategy declares, as plain data: its parameters and the metrics it reports.

This is the single declaration STRATEGY.md asks for. Search spaces, job validation and
the docs are built from `PARAMETERS`; the records' metric columns follow `METRICS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ParamKind = Literal["int", "float"]


@dataclass(frozen=True)
class ParamDecl:
    """One strategy parameter.

    Valid values are finite numbers `>= minimum` (or `> minimum` when
    `minimum_exclusive`); ints must be integers. `search` is the default search range,
    inclusive at both ends, and lies inside the valid values.
    """

    name: str
    kind: ParamKind
    minimum: float
    minimum_exclusive: bool
    search: tuple[float, float]
    role: str

    def problem(self, value: object) -> str | None:
        """Why `value` is not a valid value of this parameter, or None when it is.

        Type rules: an int parameter takes a Python/NumPy integer (never a bool or a
        float, even 3.0); a float parameter takes any real number but a bool.
        """
        if isinstance(value, bool) or not _is_number(value):
            return f"{self.name} must be a number ({self.kind}), got {value!r}"
        if self.kind == "int" and not _is_integer(value):
            return f"{self.name} must be an int, got {type(value).__name__} {value!r}"
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            return f"{self.name} must be finite, got {value!r}"
        if self.minimum_exclusive and not number > self.minimum:
            return f"{self.name} must be > {_plain(self.minimum)}, got {value!r}"
        if not self.minimum_exclusive and not number >= self.minimum:
            return f"{self.name} must be >= {_plain(self.minimum)}, got {value!r}"
        return None

    @property
    def valid_text(self) -> str:
        operator = ">" if self.minimum_exclusive else ">="
        return f"{operator} {_plain(self.minimum)}"


def _is_number(value: object) -> bool:
    import numbers

    return isinstance(value, numbers.Real)


def _is_integer(value: object) -> bool:
    import numbers

    return isinstance(value, numbers.Integral)


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else repr(number)


# STRATEGY.md, "Parameters": name, type, valid values, default search range, role.
PARAMETERS: tuple[ParamDecl, ...] = (
    ParamDecl(
        "key_level_lookback",
        "int",
        1,
        False,
        (50, 300),
        "bars of history in which key levels are found",
    ),
    ParamDecl(
        "min_level_touches",
        "int",
        1,
        False,
        (2, 5),
        "pivots needed in one zone for it to count as a key level",
    ),
    ParamDecl(
        "min_distance_from_level",
        "float",
        0.0,
        False,
        (0.0005, 0.005),
        "zone width, relative: pivots within this fraction of each other are one level",
    ),
    ParamDecl(
        "pierce_depth",
        "float",
        0.0,
        True,
        (0.001, 0.005),
        "how far, relative, a wick may pierce a level and still count as a false break",
    ),
    ParamDecl(
        "reversal_candles",
        "int",
        1,
        False,
        (1, 5),
        "consecutive closes back on the right side of the level that confirm the reversal",
    ),
    ParamDecl(
        "volume_spike_threshold",
        "float",
        0.0,
        False,
        (1.0, 3.0),
        "pierce-bar volume / mean volume of the 20 bars before it",
    ),
    ParamDecl(
        "atr_multiplier_sl", "float", 0.0, True, (1.0, 3.0), "stop distance in ATR(14) units"
    ),
    ParamDecl(
        "risk_reward_ratio", "float", 0.0, True, (1.0, 4.0), "take-profit distance / stop distance"
    ),
    ParamDecl(
        "max_holding_periods",
        "int",
        1,
        False,
        (10, 200),
        "bars after entry at which an open trade is closed at the bar's close",
    ),
)

PARAMETERS_BY_NAME: dict[str, ParamDecl] = {p.name: p for p in PARAMETERS}


@dataclass(frozen=True)
class MetricDecl:
    """One reported metric. `kind` is the Python type when defined; None means undefined."""

    name: str
    kind: Literal["int", "float"]
    meaning: str


# STRATEGY.md, "Results" and C16-C18. Every float metric may be None (undefined, C18);
# n_trades is always an int. `score` is C17's optimization target and is never None.
METRICS: tuple[MetricDecl, ...] = (
    MetricDecl(
        "score",
        "float",
        "Sharpe when n_trades >= min_trades and Sharpe is defined, else SCORE_PENALTY (C17)",
    ),
    MetricDecl("sharpe", "float", "mean / std (ddof=1) of per-bar returns * sqrt(bars_per_year)"),
    MetricDecl("sortino", "float", "mean / downside deviation of per-bar returns (C16)"),
    MetricDecl("calmar", "float", "CAGR / max drawdown (C16)"),
    MetricDecl("total_return", "float", "final equity / initial equity - 1"),
    MetricDecl(
        "max_drawdown", "float", "largest peak-to-trough fall of marked equity, a positive fraction"
    ),
    MetricDecl("n_trades", "int", "number of closed trades"),
    MetricDecl("win_rate", "float", "share of trades with return > 0"),
    MetricDecl("profit_factor", "float", "sum of winning / |sum of losing| trade returns"),
    MetricDecl("exposure", "float", "sum of (exit_bar - entry_bar + 1) / n bars"),
    MetricDecl("mean_bars_held", "float", "mean of exit_bar - entry_bar over trades (C13)"),
)

METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)

# C17: the score of a configuration that trades too little, or whose backtest is invalid.
SCORE_PENALTY = -100.0

# Job constants' defaults (STRATEGY.md, rule 6 and "Results"). They reach the kernel as
# arguments and the trainable through tune.with_parameters, never through a trial config.
DEFAULT_FEE = 0.001
DEFAULT_SLIPPAGE = 0.0
DEFAULT_MIN_TRADES = 5
