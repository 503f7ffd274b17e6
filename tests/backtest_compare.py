"""Bit-for-bit comparison of backtest results, shared by the differential, no-lookahead
and golden tests. Two floats are equal when their float.hex() is (so -0.0 != 0.0)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from trainable.backtest import Trade
from trainable.declaration import METRIC_NAMES

# Metrics compared with rel_tol=1e-12, abs_tol=1e-15 instead of bit for bit, and why.
# Empty: both implementations follow C15-C19's order of operations exactly.
TOLERANT_METRICS: dict[str, str] = {}
TRADE_FIELDS = tuple(Trade.__dataclass_fields__)


def same_bits(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and a.hex() == b.hex()
    return a == b


def describe(value: object) -> str:
    return value.hex() if isinstance(value, float) else repr(value)


def assert_same_trades(
    actual: Sequence[Trade],
    expected: Sequence[Trade],
    labels: tuple[str, str] = ("kernel", "reference"),
) -> None:
    """Every field of every trade equal; floats bit for bit (numpy floats are compared
    as the Python floats they convert to exactly)."""
    got_summary = [(t.side, t.pierce_bar, t.entry_bar, t.exit_bar) for t in actual]
    want_summary = [(t.side, t.pierce_bar, t.entry_bar, t.exit_bar) for t in expected]
    assert got_summary == want_summary, f"{labels[0]} (left) and {labels[1]} (right) differ"
    for k, (got, want) in enumerate(zip(actual, expected, strict=True)):
        for name in TRADE_FIELDS:
            a, b = getattr(got, name), getattr(want, name)
            a = float(a) if isinstance(b, float) else a
            assert same_bits(a, b), (
                f"trade {k} {want_summary[k]} field {name}: "
                f"{labels[0]} {describe(a)} != {labels[1]} {describe(b)}"
            )


def assert_same_metrics(
    actual: dict, expected: dict, labels: tuple[str, str] = ("kernel", "reference")
) -> None:
    """The metrics of METRIC_NAMES, in that order, as plain values; bit for bit except
    TOLERANT_METRICS."""
    assert list(actual) == list(METRIC_NAMES)
    for name in METRIC_NAMES:
        a, b = actual[name], expected[name]
        assert a is None or type(a) in (int, float), f"{name}: not a plain value: {a!r}"
        if name in TOLERANT_METRICS and a is not None and b is not None:
            assert a == pytest.approx(b, rel=1e-12, abs=1e-15), name
        else:
            assert same_bits(a, b), (
                f"{name}: {labels[0]} {describe(a)} != {labels[1]} {describe(b)}"
            )
