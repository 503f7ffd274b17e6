"""Kernel outcomes in, trial records out: the driver's side of contract 5.

Each outcome the experiment delivers (per seed, in trial_index order) becomes a
`TrialRecord` with the params the searcher suggested and the metrics the trial
reported (a walk-forward window's trial, whose searcher key is a `window_seed`, as a
`walk_forward_trials` row of its job seed and window: cluster.job.windows); records are
committed in small batches (every `flush_size` trials or
`flush_seconds`, and at the end), one transaction each. A batch that never reached the
database (the driver died) is recomputed by `resume` with identical results, so
batching trades nothing but a few recomputed trials for ~10x cheaper commits.

Test hook (never set outside tests): `REPROTUNE_TEST_KILL_DRIVER_AT=recorded:N` (or
`recorded:SEED:N`) commits as soon as N trials (of SEED) are recorded or buffered in
this process, then SIGKILLs the driver: exactly N trials (of SEED) are recorded, a
deterministic point for resume tests (cluster.job.kill_points). SEED is a searcher key:
a window's `window_seed` names that window's search alone.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cluster.job.kill_points import KillPoint, kill
from cluster.job.windows import search_key
from cluster.records.recorder import Recorder
from cluster.records.types import TrialRecord
from search.interleave import CompletedTrial
from trainable.declaration import METRIC_NAMES


class TrialRecording:
    """Buffers and commits an ensemble's trial records (see the module docstring)."""

    def __init__(
        self,
        recorder: Recorder,
        ensemble_id: uuid.UUID,
        spec_id: str,
        *,
        flush_size: int = 64,
        flush_seconds: float = 0.5,
        on_recorded: Callable[[int, TrialRecord], None] | None = None,
    ) -> None:
        self._recorder = recorder
        self._ensemble_id = ensemble_id
        self._spec_id = spec_id
        self._flush_size = flush_size
        self._flush_seconds = flush_seconds
        self._on_recorded = on_recorded
        self._buffer: list[tuple[int, TrialRecord]] = []  # (searcher key, record)
        self._last_flush = time.monotonic()
        self.recorded = 0
        self._kill_point = KillPoint.from_environment()
        self._recorded_per_seed: Counter[int] = Counter()

    def add(self, completed: CompletedTrial, attempts: int) -> None:
        """Buffer one outcome; commit when the buffer is full or old enough."""
        search = search_key(completed.seed)
        record = trial_record(self._spec_id, completed, attempts, seed=search.seed)
        self._buffer.append((completed.seed, record))
        due = time.monotonic() - self._last_flush >= self._flush_seconds
        killing = self._kill_point is not None and self._kill_point.reached(
            self._recorded_per_seed + Counter(key for key, _ in self._buffer)
        )
        if len(self._buffer) >= self._flush_size or due or killing:
            self.flush()

    def flush(self) -> None:
        """Commit every buffered record (one transaction; a second one for windows' trials)."""
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        plain = [record for key, record in batch if search_key(key).window is None]
        windows = [(search_key(key).window, record) for key, record in batch]
        in_windows = [(w, record) for w, record in windows if w is not None]
        if plain:
            self._recorder.record_trials(self._ensemble_id, plain)
        if in_windows:
            self._recorder.record_window_trials(self._ensemble_id, in_windows)
        self._last_flush = time.monotonic()
        self.recorded += len(batch)
        self._recorded_per_seed.update(key for key, _ in batch)
        if self._on_recorded is not None:
            for key, record in batch:
                self._on_recorded(key, record)
        if self._kill_point is not None and self._kill_point.reached(self._recorded_per_seed):
            kill()


def trial_record(
    spec_id: str, completed: CompletedTrial, attempts: int, *, seed: int | None = None
) -> TrialRecord:
    """The record of one kernel outcome; `completed.result` is the trainable's dict.
    `seed` replaces the searcher key (a window's records carry their job seed)."""
    result = completed.result
    seed = completed.seed if seed is None else seed
    execution: dict[str, Any] = {
        "node": result.get("node"),
        "attempts": attempts,
        "started_at": _moment(result.get("started_at")),
        "finished_at": _moment(result.get("finished_at")),
        "duration_s": _duration(result.get("duration_s")),
    }
    if completed.outcome.status == "invalid":
        return TrialRecord.invalid(
            spec_id,
            seed,
            completed.trial_index,
            completed.params,
            result["message"],
            score=result["score"],
            **execution,
        )
    metrics = {name: result[name] for name in METRIC_NAMES}
    return TrialRecord.ok(
        spec_id, seed, completed.trial_index, completed.params, metrics, **execution
    )


def _moment(seconds: object) -> datetime | None:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return datetime.fromtimestamp(seconds, UTC)
    return None


def _duration(seconds: object) -> float | None:
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    return None
