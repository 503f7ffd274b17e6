"""Cleaning by explicit rules: check every row, then apply the job's gap policy.

Rules (a row breaking any one rejects the whole dataset; `InvalidInput` names up to 20
rows with every rule each breaks): all values finite; prices (open, high, low, close)
> 0; volume >= 0; high >= max(open, close); low <= min(open, close); timestamps on
the timeframe grid, strictly increasing, and inside the dataset's `[start, end)`.
Cleaning never drops, reorders or edits a row.

Gaps (grid times in `[start, end)` without a row) follow the gap policy:
- `reject`: any gap rejects the dataset, listing up to 20 gaps;
- `fill`: each missing candle becomes a flat candle at the previous row's close
  (open = high = low = close, volume 0), if the missing candles are at most
  `max_fill_share` of the range's candles; a gap at the very start has no previous
  close and is rejected. Every filled range is reported (and lands in the manifest).

Nothing here is random and nothing depends on the order of anything but the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from cluster.candles.table import MAX_LISTED, PRICE_COLUMNS, VALUE_COLUMNS, CandleColumns
from cluster.candles.times import Range, count, format_range, format_utc
from cluster.errors import InvalidInput
from cluster.timeframes import timeframe_ms

GapPolicy = Literal["reject", "fill"]
GAP_POLICIES: tuple[GapPolicy, ...] = ("reject", "fill")


@dataclass(frozen=True)
class Cleaned:
    """Rows that passed every rule, gaps filled by policy; `filled_ranges` are half-open."""

    columns: CandleColumns
    filled_ranges: tuple[Range, ...]


def check_gap_policy(gap_policy: str, max_fill_share: float) -> None:
    """The policy's own settings: InvalidInput names a bad one."""
    problems = []
    if gap_policy not in GAP_POLICIES:
        problems.append(f"gap_policy: {gap_policy!r} is not one of {', '.join(GAP_POLICIES)}")
    if (
        isinstance(max_fill_share, bool)
        or not isinstance(max_fill_share, int | float)
        or not 0.0 <= max_fill_share <= 1.0
    ):
        problems.append(f"max_fill_share: expected a number in [0, 1], got {max_fill_share!r}")
    if problems:
        raise InvalidInput(problems)


def clean(
    columns: CandleColumns,
    *,
    start: int,
    end: int,
    timeframe: str,
    gap_policy: GapPolicy,
    max_fill_share: float,
    row_offset: int = 0,
) -> Cleaned:
    """Check the rules, then apply the gap policy; see the module docstring.

    `row_offset` is added to row numbers in messages (rows cut from a larger file).
    """
    check_gap_policy(gap_policy, max_fill_share)
    check_rules(columns, start=start, end=end, timeframe=timeframe, row_offset=row_offset)
    step = timeframe_ms(timeframe)
    gaps = find_gaps(columns.timestamp, start, end, step)
    if not gaps:
        return Cleaned(columns, ())
    expected = (end - start) // step
    missing = sum(high - low for low, high in gaps) // step
    summary = (
        f"{count(len(gaps), 'gap')}, {missing} of {expected} candles missing in "
        f"{format_range((start, end))} ({timeframe})"
    )
    listed = [f"gap {format_range(g)}: {count((g[1] - g[0]) // step, 'candle')}" for g in gaps]
    listed = listed[:MAX_LISTED] + (
        [f"... {len(gaps) - MAX_LISTED} more"] if len(gaps) > MAX_LISTED else []
    )
    if gap_policy == "reject":
        raise InvalidInput(
            [f"{summary}; gap policy 'reject' (use 'fill' with a max_fill_share to fill)", *listed]
        )
    if gaps[0][0] == start:
        raise InvalidInput(
            f"{summary}; the range starts with a gap {format_range(gaps[0])}, which has no "
            f"previous close to fill from: start the range at {format_utc(gaps[0][1])}"
        )
    if missing > max_fill_share * expected:
        share = missing / expected
        raise InvalidInput(
            [f"{summary}: {share:.4%} > max_fill_share {max_fill_share:.4%}", *listed]
        )
    return Cleaned(fill_gaps(columns, start, end, step), tuple(gaps))


def rule_breaks(columns: CandleColumns, *, start: int, end: int, step: int) -> np.ndarray:
    """A boolean mask of the rows that break at least one rule."""
    bad = np.zeros(len(columns), dtype=bool)
    for name in VALUE_COLUMNS:
        bad |= ~np.isfinite(getattr(columns, name))
    for name in PRICE_COLUMNS:
        bad |= ~(getattr(columns, name) > 0)
    bad |= ~(columns.volume >= 0)
    bad |= ~(columns.high >= np.maximum(columns.open, columns.close))
    bad |= ~(columns.low <= np.minimum(columns.open, columns.close))
    ts = columns.timestamp
    bad |= (ts % step != 0) | (ts < start) | (ts >= end)
    if len(ts) > 1:
        bad[1:] |= ts[1:] <= ts[:-1]
    return bad


def check_rules(
    columns: CandleColumns, *, start: int, end: int, timeframe: str, row_offset: int = 0
) -> None:
    """Raise InvalidInput naming up to 20 rows that break a rule (with every reason)."""
    step = timeframe_ms(timeframe)
    bad = np.flatnonzero(rule_breaks(columns, start=start, end=end, step=step))
    if bad.size == 0:
        return
    shown = min(bad.size, MAX_LISTED)
    problems = [
        f"{count(int(bad.size), 'row')} {'breaks' if bad.size == 1 else 'break'} the candle "
        "rules; cleaning never drops or "
        f"edits a row, so the dataset is rejected (first {shown} shown)"
    ]
    for index in bad[:MAX_LISTED]:
        reasons = "; ".join(_reasons(columns, int(index), start, end, step))
        time = _describe_time(int(columns.timestamp[index]))
        problems.append(f"row {int(index) + row_offset} ({time}): {reasons}")
    raise InvalidInput(problems)


def _describe_time(ms: int) -> str:
    try:
        return format_utc(ms)
    except (OverflowError, ValueError):
        return f"timestamp {ms}"


def _reasons(columns: CandleColumns, i: int, start: int, end: int, step: int) -> list[str]:
    o, h, lo, c, v = (float(getattr(columns, name)[i]) for name in VALUE_COLUMNS)
    ts = int(columns.timestamp[i])
    reasons = [
        f"{name} {value!r} is not finite"
        for name, value in zip(VALUE_COLUMNS, (o, h, lo, c, v), strict=True)
        if not np.isfinite(value)
    ]
    reasons += [
        f"{name} {value!r} is not > 0"
        for name, value in zip(PRICE_COLUMNS, (o, h, lo, c), strict=True)
        if np.isfinite(value) and not value > 0
    ]
    if np.isfinite(v) and v < 0:
        reasons.append(f"volume {v!r} < 0")
    if not h >= max(o, c) and np.isfinite(h):
        reasons.append(f"high {h!r} < max(open, close) {max(o, c)!r}")
    if not lo <= min(o, c) and np.isfinite(lo):
        reasons.append(f"low {lo!r} > min(open, close) {min(o, c)!r}")
    if ts % step:
        reasons.append(f"timestamp {ts} is not on the {step} ms grid")
    if not start <= ts < end:
        reasons.append(f"timestamp is outside {format_range((start, end))}")
    if i > 0 and ts <= int(columns.timestamp[i - 1]):
        previous = int(columns.timestamp[i - 1])
        word = "repeats" if ts == previous else "is before"
        reasons.append(f"timestamp {word} the previous row's ({previous})")
    return reasons


def find_gaps(timestamp: np.ndarray, start: int, end: int, step: int) -> list[Range]:
    """Half-open ranges of grid times in `[start, end)` with no row.

    `timestamp` must be on the grid, strictly increasing and inside the range.
    """
    if len(timestamp) == 0:
        return [(start, end)] if start < end else []
    gaps: list[Range] = []
    first, last = int(timestamp[0]), int(timestamp[-1])
    if first > start:
        gaps.append((start, first))
    jumps = np.flatnonzero(np.diff(timestamp) > step)
    gaps.extend((int(timestamp[i]) + step, int(timestamp[i + 1])) for i in jumps)
    if last + step < end:
        gaps.append((last + step, end))
    return gaps


def fill_gaps(columns: CandleColumns, start: int, end: int, step: int) -> CandleColumns:
    """Every grid time of `[start, end)`: rows as given, missing ones flat at the previous
    close with volume 0. The first grid time must have a row."""
    count = (end - start) // step
    position = (columns.timestamp - start) // step
    present = np.zeros(count, dtype=bool)
    present[position] = True
    if not present[0]:
        raise ValueError("fill_gaps needs a row at the range's first grid time")
    source_row = np.full(count, -1, dtype=np.int64)
    source_row[position] = np.arange(len(columns), dtype=np.int64)
    # The row each grid time copies from: itself if present, else the last present one.
    last_present = np.maximum.accumulate(np.where(present, source_row, -1))
    close = columns.close[last_present]
    filled = {
        "timestamp": start + np.arange(count, dtype=np.int64) * step,
        "close": close,
        "volume": np.where(present, columns.volume[last_present], 0.0),
    }
    for name in ("open", "high", "low"):
        filled[name] = np.where(present, getattr(columns, name)[last_present], close)
    return CandleColumns(**filled)
