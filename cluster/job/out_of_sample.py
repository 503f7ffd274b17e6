"""The job's out-of-sample settings: a `holdout` range and `walk_forward` windows.

Both are optional job fields (docs/jobs.md). They enter the resolved spec, and so
`spec_id`, only when present: a job without them keeps the identity it always had.

- `Holdout`: a range `[start, end)` of the same market as `[data]` (the same source
  with other times), disjoint from the search range and never given to a search.
  After the search, the report backtests each seed's best and the consensus on it.
  Either end may be left out for a Parquet source (the file's first or last candle);
  a ccxt source needs both; a synthetic source has no other range of the same market
  (its candles are generated for their range), so it cannot have one.
- `WalkForward`: windows over the job's own candles, in candle counts: window w trains
  on rows `[w * step, w * step + train)` and is tested on the `test` rows after them.
  `step` defaults to `test` and may not be smaller (test windows would overlap and be
  stitched twice). Parsed and checked here; the driver runs each window of each seed
  as a search of its own on its training rows only, with the job's searcher and
  budget, in the ensemble's own Tune experiment (cluster.job.windows), then tests its
  best on the test rows and stitches the test windows' equity
  (cluster.report.walk_forward).

A window's search is a deterministic function of (spec, seed, window): its searcher is
seeded with `window_seed(seed, w) = seed + (w + 1) * 2**32`. Job seeds are below 2**31,
so no window's searcher seed equals a job seed or another window's, every window gets
random streams of its own, and the number fits the searchers' 63-bit seeds for any
window count allowed here. It is also the key of the window's searcher in the
experiment's interleaver (which keys searchers by their seed).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster.candles.sources import CcxtSource, ParquetSource, SyntheticSource
from cluster.candles.times import check_aligned, format_utc, time_value
from cluster.errors import InvalidInput

HOLDOUT_KEYS = ("start", "end")
WALK_FORWARD_KEYS = ("train", "test", "step")
MIN_TRAIN = 2
MIN_TEST = 3  # 2 returns: the least a Sharpe ratio needs
MAX_WINDOWS = 1000
MAX_CANDLES = 50_000_000
WINDOW_SEED_BASE = 2**32


def window_seed(seed: int, window: int) -> int:
    """The searcher seed of window `window` of job seed `seed` (module docstring)."""
    return seed + (window + 1) * WINDOW_SEED_BASE


def seed_of_window_seed(key: int) -> tuple[int, int]:
    """(job seed, window) of a `window_seed`."""
    window, seed = divmod(key, WINDOW_SEED_BASE)
    return seed, window - 1


@dataclass(frozen=True)
class Holdout:
    """Open times `[start, end)` in ms UTC; None: the file's first / last candle."""

    start: int | None
    end: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}

    @property
    def fixed(self) -> bool:
        return self.start is not None and self.end is not None

    def describe(self) -> str:
        start = "the file's start" if self.start is None else format_utc(self.start)
        end = "the file's end" if self.end is None else format_utc(self.end)
        return f"[{start}, {end})"


@dataclass(frozen=True)
class Window:
    """One walk-forward window: rows of the job's candles, `[start, stop)` each."""

    index: int
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


@dataclass(frozen=True)
class WalkForward:
    """Windows of `train` candles, each tested on the `test` candles after it, every
    `step` candles (module docstring)."""

    train: int
    test: int
    step: int

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train, "test": self.test, "step": self.step}

    def count(self, rows: int) -> int:
        """How many windows fit in `rows` candles (0 when not even one does)."""
        if rows < self.train + self.test:
            return 0
        return (rows - self.train - self.test) // self.step + 1

    def windows(self, rows: int) -> list[Window]:
        """The windows over `rows` candles, in order."""
        return [
            Window(
                index=w,
                train_start=w * self.step,
                train_stop=w * self.step + self.train,
                test_start=w * self.step + self.train,
                test_stop=w * self.step + self.train + self.test,
            )
            for w in range(self.count(rows))
        ]

    def check_rows(self, rows: int) -> None:
        """InvalidInput unless between 1 and MAX_WINDOWS windows fit in `rows`."""
        count = self.count(rows)
        if count == 0:
            raise InvalidInput(
                f"walk_forward: a window needs train + test = {self.train + self.test:,} "
                f"candles, the data has {rows:,}"
            )
        if count > MAX_WINDOWS:
            raise InvalidInput(
                f"walk_forward: {count:,} windows over {rows:,} candles, at most "
                f"{MAX_WINDOWS:,} (take a larger step)"
            )


def parse_holdout(value: object, source: object, problems: list[str]) -> Holdout | None:
    """The `holdout` table of a job file for the data `source` (a Source or LastCandles),
    or None after appending every problem."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"holdout: expected a table (start, end), got {value!r}")
        return None
    found = [_unknown_key("holdout", key, HOLDOUT_KEYS) for key in value if key not in HOLDOUT_KEYS]
    times: dict[str, int | None] = {}
    for key in HOLDOUT_KEYS:
        raw = value.get(key)
        if raw is None:
            times[key] = None
            continue
        try:
            times[key] = time_value(_iso(raw), f"holdout.{key}")
            timeframe = getattr(source, "timeframe", None)
            if isinstance(timeframe, str):
                check_aligned(times[key], timeframe, f"holdout.{key}")  # type: ignore[arg-type]
        except InvalidInput as error:
            found += error.problems
            times[key] = None
    start, end = times["start"], times["end"]
    if start is not None and end is not None and start >= end:
        found.append(f"holdout: start ({format_utc(start)}) must be before end ({format_utc(end)})")
    found += _holdout_source_problems(source, start, end, value)
    problems += found
    return None if found else Holdout(start, end)


def _holdout_source_problems(
    source: object, start: int | None, end: int | None, value: Mapping[str, Any]
) -> list[str]:
    if source is None:  # [data] itself is wrong: reported there
        return []
    if isinstance(source, SyntheticSource):
        return [
            "holdout: a synthetic source has no other range of the same market (its "
            "candles are generated for their range); use a Parquet or ccxt source"
        ]
    if not isinstance(source, ParquetSource) and not ("start" in value and "end" in value):
        return ["holdout: a ccxt source needs both start and end"]
    low = getattr(source, "start", None)
    high = getattr(source, "end", None)
    if isinstance(source, CcxtSource | ParquetSource):
        return overlap_problems((low, high), (start, end))
    return []


def overlap_problems(
    search: tuple[int | None, int | None], holdout: tuple[int | None, int | None]
) -> list[str]:
    """A problem when the two ranges overlap (None ends: open, as far as they go)."""
    (a, b), (c, d) = search, holdout
    starts_before_end = c is None or b is None or c < b
    ends_after_start = d is None or a is None or a < d
    if not (starts_before_end and ends_after_start):
        return []

    def shown(x: int | None, open_end: str) -> str:
        return open_end if x is None else format_utc(x)

    return [
        f"holdout: [{shown(c, 'the start')}, {shown(d, 'the end')}) overlaps the search "
        f"range [{shown(a, 'the start')}, {shown(b, 'the end')}) of [data]; a holdout "
        "must be candles the search never sees"
    ]


def parse_walk_forward(value: object, problems: list[str]) -> WalkForward | None:
    """The `walk_forward` table of a job file, or None after appending every problem."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        problems.append(f"walk_forward: expected a table (train, test, step), got {value!r}")
        return None
    found = [
        _unknown_key("walk_forward", key, WALK_FORWARD_KEYS)
        for key in value
        if key not in WALK_FORWARD_KEYS
    ]
    numbers: dict[str, int] = {}
    for key, low in (("train", MIN_TRAIN), ("test", MIN_TEST), ("step", 1)):
        raw = value.get(key)
        if raw is None:
            if key != "step":
                found.append(f"walk_forward.{key}: missing (a number of candles >= {low})")
            continue
        if isinstance(raw, bool) or not isinstance(raw, int):
            found.append(f"walk_forward.{key}: expected a number of candles, got {raw!r}")
        elif not low <= raw <= MAX_CANDLES:
            found.append(f"walk_forward.{key}: {raw:,} is outside [{low}, {MAX_CANDLES:,}]")
        else:
            numbers[key] = raw
    if "test" in numbers:
        numbers.setdefault("step", numbers["test"])
        if numbers["step"] < numbers["test"]:
            found.append(
                f"walk_forward.step: {numbers['step']:,} is smaller than test "
                f"({numbers['test']:,}): test windows would overlap"
            )
    problems += found
    if found:
        return None
    return WalkForward(numbers["train"], numbers["test"], numbers["step"])


def _unknown_key(where: str, key: object, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}.{key}: unknown key{hint}; the keys are {', '.join(known)}"


def _iso(value: object) -> object:
    """TOML dates and datetimes as ISO text, like [data]'s times."""
    import datetime as dt

    if isinstance(value, dt.datetime | dt.date) and not isinstance(value, dt.time):
        return value.isoformat()
    return value
