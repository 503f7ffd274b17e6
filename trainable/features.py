"""The kernel's parameter-free inputs, derived from candles once per `Candles` object.

A search backtests the same candles thousands of times with different parameters; the
pivots (C1), Wilder's ATR (C10), the 20-bar volume means (C6) and the input checks do
not depend on the parameters, so the first backtest of a `Candles` computes them and
keeps them with it (in its `__dict__`, which a frozen dataclass still has; pickling
drops them). A `Candles` is immutable: its arrays must not be written to after it was
built, or the kept features would describe other data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainable import engine, signals
from trainable.types import FEATURES_ATTRIBUTE, Candles

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class CandleFeatures:
    """What the kernel reads besides the parameters.

    `columns` are open, high, low, close, volume as C-contiguous read-only float64
    arrays; `volume_mean[p]` is C6's mean (NaN before bar 20); `pivot_bar` /
    `pivot_price` the pooled pivots of C1 in bar order; `atr` C10's ATR (NaN before 14).
    """

    columns: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    volume_mean: np.ndarray
    pivot_bar: np.ndarray
    pivot_price: np.ndarray
    atr: np.ndarray


def candle_features(candles: Candles) -> CandleFeatures:
    """The features of `candles`, computed on first use and kept with the object.

    Raises ValueError naming the row and column of the first price <= 0 or volume < 0
    (the kernel's relative zones, fills and returns need positive prices).
    """
    kept = candles.__dict__.get(FEATURES_ATTRIBUTE)
    if kept is not None:
        return kept
    open_, high, low, close, volume = (_kernel_view(getattr(candles, c)) for c in PRICE_COLUMNS)
    row, column = engine.first_bad_row(open_, high, low, close, volume)
    if row >= 0:
        name = PRICE_COLUMNS[column]
        rule = "volume must be >= 0" if name == "volume" else "prices must be > 0"
        value = float(getattr(candles, name)[row])
        raise ValueError(f"candles column {name!r} has {value!r} at row {row}: {rule}")
    pivot_bar, pivot_price = signals.find_pivots(high, low)
    features = CandleFeatures(
        columns=(open_, high, low, close, volume),
        volume_mean=_read_only(signals.volume_means(volume)),
        pivot_bar=_read_only(pivot_bar),
        pivot_price=_read_only(pivot_price),
        atr=_read_only(engine.wilder_atr(high, low, close)),
    )
    candles.__dict__[FEATURES_ATTRIBUTE] = features
    return features


def _kernel_view(array: np.ndarray) -> np.ndarray:
    """A C-contiguous read-only view (a copy only if not contiguous): one compiled
    signature then serves writable arrays and read-only shared memory alike."""
    return _read_only(np.ascontiguousarray(array))


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view
