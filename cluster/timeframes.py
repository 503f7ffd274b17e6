"""The timeframes a job may use: each a fixed grid with a known number of bars per year.

Others (e.g. "1M", whose months differ in length) are refused: they have no fixed grid
and no bars-per-year for the Sharpe ratio's annualization.
"""

from __future__ import annotations

from cluster.errors import InvalidInput

TIMEFRAME_MINUTES: dict[str, int] = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "8h": 480,
    "12h": 720,
    "1d": 1440,
}


def timeframe_minutes(timeframe: str) -> int:
    """Minutes per bar of a supported timeframe; InvalidInput names the choices."""
    try:
        return TIMEFRAME_MINUTES[timeframe]
    except KeyError:
        choices = ", ".join(TIMEFRAME_MINUTES)
        raise InvalidInput(
            f"timeframe {timeframe!r} is not supported (choose one of {choices})"
        ) from None


def timeframe_ms(timeframe: str) -> int:
    """Milliseconds per bar, the step of the timestamp grid."""
    return timeframe_minutes(timeframe) * 60_000
