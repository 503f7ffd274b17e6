"""The two implementations of STRATEGY.md that the semantic tests run side by side:
the slow reference (tests/reference_backtest.py) and the fast kernel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.reference_backtest import reference_backtest
from trainable.backtest import backtest

IMPLEMENTATION_NAMES = ("reference", "kernel")

Backtest = Callable[..., Any]


def implementation(name: str) -> Backtest:
    """The backtest called `name` ("reference" or "kernel")."""
    implementations: dict[str, Backtest] = {"reference": reference_backtest, "kernel": backtest}
    return implementations[name]
