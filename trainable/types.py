"""The types the backtest's parts share: candles in, job constants, trades and results out.

`trainable.backtest` runs the strategy over these; `trainable.engine` and
`trainable.features` (compiled code) and the Tune adapter read them. Keeping them here,
apart from the code that uses them, leaves no import cycle among the kernel modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

ExitReason = Literal["stop", "target", "time", "end"]
# Exit reasons by the code the engine uses: `EXIT_REASONS[code]` is a Trade's reason.
EXIT_REASONS: tuple[ExitReason, ...] = ("stop", "target", "time", "end")
CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# Where `trainable.features` keeps a Candles' derived features (dropped when pickled).
FEATURES_ATTRIBUTE = "_kernel_features"


@dataclass(frozen=True)
class Candles:
    """One market's bars: `timestamp` int64 ms UTC (strictly increasing), the rest float64.

    Construction checks equal lengths, dtypes, finiteness and increasing timestamps and
    raises a ValueError naming the column and the first bad row. Arrays are used as
    given (read-only shared memory is fine); they are never written to.
    """

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.timestamp)
        for name in CANDLE_COLUMNS:
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.ndim != 1:
                raise ValueError(f"candles column {name!r} must be a 1-D numpy array")
            if len(array) != n:
                raise ValueError(
                    f"candles columns have unequal lengths: timestamp has {n}, "
                    f"{name} has {len(array)}"
                )
            expected = np.int64 if name == "timestamp" else np.float64
            if array.dtype != expected:
                raise ValueError(
                    f"candles column {name!r} must be {expected.__name__}, got {array.dtype}"
                )
            if name != "timestamp":
                bad = np.flatnonzero(~np.isfinite(array))
                if bad.size:
                    raise ValueError(
                        f"candles column {name!r} has a non-finite value at row {bad[0]} "
                        f"({array[bad[0]]!r})"
                    )
        if n >= 2:
            bad = np.flatnonzero(np.diff(self.timestamp) <= 0)
            if bad.size:
                row = int(bad[0]) + 1
                raise ValueError(
                    f"candles timestamps must be strictly increasing: row {row} "
                    f"({self.timestamp[row]}) <= row {row - 1} ({self.timestamp[row - 1]})"
                )

    def __len__(self) -> int:
        return len(self.timestamp)

    def __getstate__(self) -> dict[str, object]:
        # The kernel keeps derived features in __dict__ (trainable.features): not data.
        return {k: v for k, v in self.__dict__.items() if k != FEATURES_ATTRIBUTE}

    def head(self, k: int) -> Candles:
        """The first `k` bars (views, no copy)."""
        return Candles(*(getattr(self, name)[:k] for name in CANDLE_COLUMNS))


@dataclass(frozen=True)
class JobConstants:
    """The job's constants that reach every trial (never through a trial's config).

    `fee` is a fraction of notional per fill, `slippage` a fraction of price, adverse on
    every fill (C14). `min_trades` is C17's threshold for a real score.
    """

    timeframe_minutes: int
    fee: float = 0.001
    slippage: float = 0.0
    min_trades: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.timeframe_minutes, bool) or not isinstance(self.timeframe_minutes, int):
            raise ValueError(f"timeframe_minutes must be an int, got {self.timeframe_minutes!r}")
        if self.timeframe_minutes < 1:
            raise ValueError(f"timeframe_minutes must be >= 1, got {self.timeframe_minutes}")
        for name in ("fee", "slippage"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} must be finite and in [0, 1), got {value!r}")
            object.__setattr__(self, name, float(value))
        if isinstance(self.min_trades, bool) or not isinstance(self.min_trades, int):
            raise ValueError(f"min_trades must be an int, got {self.min_trades!r}")
        if self.min_trades < 0:
            raise ValueError(f"min_trades must be >= 0, got {self.min_trades}")

    @property
    def bars_per_year(self) -> float:
        """365 * 24 * 60 / timeframe_minutes: crypto trades every day."""
        return 365 * 24 * 60 / self.timeframe_minutes


@dataclass(frozen=True)
class Trade:
    """One closed trade. Bars are indices into the candles; prices are raw (no costs)
    except the fills, which include slippage (C14); `ret` is the net return after fees."""

    side: int  # +1 long, -1 short
    pierce_bar: int
    entry_bar: int
    exit_bar: int
    level: float
    entry_price: float  # raw open[entry_bar] (C11)
    stop: float
    target: float
    exit_price: float  # raw price of the exit (open, stop, target or close)
    exit_reason: ExitReason
    entry_fill: float
    exit_fill: float
    ret: float


@dataclass(frozen=True)
class BacktestResult:
    """The trades in entry order and every metric of `trainable.declaration.METRICS`.

    `metrics` holds plain Python values: n_trades an int, the others floats, or None
    where undefined (C18); `score` is never None.
    """

    trades: tuple[Trade, ...]
    metrics: dict[str, int | float | None]
