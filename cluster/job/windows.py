"""Walk-forward windows in the driver: which searches a job with `walk_forward` runs.

A job with `walk_forward = {train, test, step}` (cluster.job.out_of_sample) runs, beside
each seed's usual search on the whole range (its `trials`, which the report's in-sample
sections, export and verify read as before), one search per window of each seed: the
job's searcher, options and budget, seeded with `window_seed(seed, w)`, on the window's
training rows only (`rows`: the trainable evaluates it as if the table ended at the
training window's last row, so no test candle can reach it). All of them run in the
ensemble's one Tune experiment, keyed in the one interleaver by their searcher seed.

The windows' searches are recorded in `walk_forward_trials` (keyed by the job seed and
the window's index), never in `trials`; each window is a `walk_forward_windows` row
whose status follows its search (pending, running, complete). A seed counts as complete
only when its whole-range search and every one of its windows are.

`WindowPlan` says, for every searcher key of a run, whose search it is: a job seed
(`window` None) or a window of one; `mark_running` and `mark_complete` set the seeds'
and windows' statuses from the trials recorded per searcher key (run and resume).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from cluster.job.out_of_sample import Window, seed_of_window_seed, window_seed
from cluster.job.spec import JobSpec
from cluster.records.out_of_sample import WindowRecord
from cluster.records.recorder import Recorder
from cluster.records.types import JobStatus
from cluster.timeframes import timeframe_ms


@dataclass(frozen=True)
class SearchKey:
    """What a searcher key of the experiment is: seed's whole-range search, or window
    `window` of seed."""

    seed: int
    window: int | None = None


@dataclass(frozen=True)
class WindowPlan:
    """The windows of a job over its loaded candles (none without walk_forward)."""

    windows: tuple[Window, ...]

    @classmethod
    def of(cls, spec: JobSpec, rows: int) -> WindowPlan:
        """The job's windows over `rows` candles; InvalidInput (naming walk_forward)
        when none fits or too many do."""
        if spec.walk_forward is None:
            return cls(())
        spec.walk_forward.check_rows(rows)
        return cls(tuple(spec.walk_forward.windows(rows)))

    def keys(self, seeds: Iterable[int]) -> list[int]:
        """Every window's searcher key of `seeds`, seed by seed, windows in order."""
        return [window_seed(seed, w.index) for seed in seeds for w in self.windows]

    def rows(self, keys: Iterable[int]) -> dict[int, tuple[int, int]]:
        """The training rows `[start, stop)` of each window key among `keys`."""
        found = {}
        for key in keys:
            search = search_key(key)
            if search.window is not None:
                window = self.windows[search.window]
                found[key] = (window.train_start, window.train_stop)
        return found

    def records(
        self, seeds: Iterable[int], timestamps: np.ndarray, timeframe: str, budget: int
    ) -> list[WindowRecord]:
        """The `walk_forward_windows` rows of `seeds` (open times from `timestamps`)."""
        after_last = int(timestamps[-1]) + timeframe_ms(timeframe)

        def open_time(row: int) -> int:
            return int(timestamps[row]) if row < len(timestamps) else after_last

        return [self._record(seed, w, open_time, budget) for seed in seeds for w in self.windows]

    @staticmethod
    def _record(seed: int, w: Window, open_time: Callable[[int], int], budget: int) -> WindowRecord:
        return WindowRecord(
            seed=seed, window_index=w.index, search_seed=window_seed(seed, w.index),
            train_start=w.train_start, train_stop=w.train_stop, test_start=w.test_start,
            test_stop=w.test_stop, train_from=open_time(w.train_start),
            test_from=open_time(w.test_start), test_until=open_time(w.test_stop),
            budget=budget,
        )  # fmt: skip


def search_key(key: int) -> SearchKey:
    """Whose search the searcher key `key` is (job seeds are below 2**31)."""
    seed, window = seed_of_window_seed(key)
    return SearchKey(seed) if window < 0 else SearchKey(seed, window)


def by_seed(keys: Iterable[int]) -> dict[int, list[int]]:
    """Searcher keys grouped by their job seed, in their order."""
    grouped: dict[int, list[int]] = {}
    for key in keys:
        grouped.setdefault(search_key(key).seed, []).append(key)
    return grouped


def mark_running(recorder: Recorder, ensemble_id: uuid.UUID, keys: Iterable[int]) -> None:
    """The seeds and windows of the searcher keys `keys` are running."""
    for seed, own in by_seed(keys).items():
        recorder.set_job_status(ensemble_id, seed, JobStatus.RUNNING)
        for key in own:
            window = search_key(key).window
            if window is not None:
                recorder.set_window_status(ensemble_id, seed, window, JobStatus.RUNNING)


def mark_complete(
    recorder: Recorder, ensemble_id: uuid.UUID, done: Mapping[int, int], budget: int
) -> bool:
    """Given the trials recorded per searcher key (`done`), mark each window whose
    search has its `budget` complete, and each seed all of whose searches among `done`
    have it; whether every search in `done` has."""
    finished = True
    for seed, keys in by_seed(done).items():
        for key in keys:
            window = search_key(key).window
            if window is not None and done[key] >= budget:
                recorder.set_window_status(ensemble_id, seed, window, JobStatus.COMPLETE)
        if all(done[key] >= budget for key in keys):
            recorder.set_job_status(ensemble_id, seed, JobStatus.COMPLETE)
        else:
            finished = False
    return finished
