"""Times of candle data: int milliseconds since the Unix epoch, UTC, on a timeframe grid.

Ranges are half-open, `[start, end)`, over candle *open* times: a range holds the
candles whose open time `t` satisfies `start <= t < end`. Both ends lie on the grid of
the timeframe (`t % timeframe_ms == 0`); an unaligned time is refused, never rounded.
The command line accepts ISO 8601 dates or datetimes, read as UTC when they carry no
offset.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cluster.errors import InvalidInput
from cluster.timeframes import timeframe_ms

Range = tuple[int, int]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def parse_utc(text: str, field: str) -> int:
    """An ISO 8601 date or datetime (UTC unless it carries an offset) as int ms."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{field}: {text!r} is not an ISO 8601 date or datetime "
            "(e.g. 2024-01-31 or 2024-01-31T12:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    since_epoch = moment - EPOCH
    if since_epoch % MILLISECOND:
        raise InvalidInput(f"{field}: {text!r} has a fraction finer than a millisecond")
    return since_epoch // MILLISECOND


def format_utc(ms: int) -> str:
    """`2024-01-31T12:00Z`-style text of an int ms time (seconds shown only when set)."""
    moment = EPOCH + ms * MILLISECOND
    if ms % 60_000:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def time_value(value: object, field: str) -> int:
    """A time given as int ms or as ISO 8601 text (job files may use either)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field}: expected int ms or ISO 8601 text, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return parse_utc(value, field)
    raise InvalidInput(f"{field}: expected int ms or ISO 8601 text, got {value!r}")


def check_aligned(ms: int, timeframe: str, field: str) -> None:
    """Refuse a time that is not on the timeframe's grid, naming the nearest grid times."""
    step = timeframe_ms(timeframe)
    if ms % step:
        below = ms - ms % step
        raise InvalidInput(
            f"{field}: {format_utc(ms)} is not aligned to the {timeframe} grid "
            f"(nearest: {format_utc(below)} or {format_utc(below + step)})"
        )


def check_range(start: int, end: int, timeframe: str) -> None:
    """Both ends aligned and `start < end`; InvalidInput names every problem found."""
    problems = []
    for field, value in (("start", start), ("end", end)):
        try:
            check_aligned(value, timeframe, field)
        except InvalidInput as error:
            problems.extend(error.problems)
    if start >= end:
        problems.append(f"start {format_utc(start)} must be before end {format_utc(end)}")
    if problems:
        raise InvalidInput(problems)


def count(n: int, noun: str) -> str:
    """`1 candle`, `2 candles`: for messages."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_range(span: Range) -> str:
    """`[2024-01-01T00:00Z, 2024-01-02T00:00Z)` for messages."""
    return f"[{format_utc(span[0])}, {format_utc(span[1])})"


def subtract_ranges(span: Range, covered: list[Range]) -> list[Range]:
    """The parts of `span` not inside any of `covered` (sorted, disjoint half-open ranges)."""
    missing = []
    cursor, end = span
    for low, high in sorted(covered):
        if high <= cursor or low >= end:
            continue
        if low > cursor:
            missing.append((cursor, low))
        cursor = max(cursor, high)
        if cursor >= end:
            break
    if cursor < end:
        missing.append((cursor, end))
    return missing


def union_ranges(ranges: list[Range]) -> list[Range]:
    """Sorted, disjoint ranges covering the same times; touching ranges are joined."""
    merged: list[Range] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged
