"""The interleaver: several seeds' searchers side by side in one experiment (Ray-free).

Tune runs one experiment at a time, so all seeds of an ensemble share one. Each
`suggest()` asks the seeds in turn, starting after the last seed served, and returns
the first seed's ready suggestions, so the cluster stays full while a seed waits on its
batch. Each seed's sequence equals that seed run alone: a searcher's suggestions depend
only on its own outcomes, never on which seed was asked first or which trial finished
first.

Chunks: a Tune trial carries a *chunk* of one seed's candidates, every one of them
already suggested (a random or grid seed's remaining budget, a Bayesian seed's current
batch), so Tune's per-trial cost (~30 ms of scheduling and bookkeeping) is paid once
per chunk instead of once per backtest (~0.3 ms at 10,000 candles). A candidate is
still one trial of the records, with its own (seed, trial_index); how candidates are
grouped into chunks is execution-only and never changes a record (`Chunking`).
The trial config is `{"seed": int, "trials": [{"trial_index": int, "params": {...}},
...]}` (`chunk_config`); the trainable reports once, `{"trials": [one result per
candidate, each with its trial_index], ...}`.

Searchers that compute their batches in a `search.pool.SuggestionPool` do so while
Tune polls. While trials run, `suggest()` never waits for a batch: it stays O(1) while
nothing can have become ready, which is until a trial completes or a batch arrives (the
searchers wake the interleaver, from the pool's threads). When no trial runs and a batch
is being computed, it waits for the batch (at most `idle_wait_s` per call): Tune would
otherwise sleep a whole second before asking again (`_update_trial_queue` in
ray/tune/execution/tune_controller.py), a second per batch for a Bayesian seed that
runs alone, where the batch takes milliseconds. It answers FINISHED only when no trial
runs and no batch is being computed.

Tune trial ids (random per run) only map to a chunk here; nothing is keyed on them.
A candidate ends in one of two ways (DESIGN.md, contract 3):
- a kernel outcome: its result's `status` is "ok" (with a finite `score`) or "invalid";
  it is told to the seed's searcher and handed to `on_result`, per seed in trial_index
  order (a candidate that finished early is held until every earlier one has;
  candidates that a rebuilt searcher already had outcomes for are not handed out
  again);
- anything else (the chunk's trial errored after Tune's retries, ended without a
  result, or its result breaks that contract for this candidate): never told, kept in
  `failed` with the reason, so the driver can stop "interrupted, resumable". A chunk
  reports nothing before it ends, so a retried chunk recomputes all its candidates and
  none is delivered twice.
A candidate reported again after its kernel outcome keeps that first outcome and is not
handed to `on_result` again (the same outcome is a no-op, another one raises).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from search.core import DetachedPool, Outcome, SeededSearcher, Suggestion
from search.registry import restore_searcher
from search.space import Params

logger = logging.getLogger(__name__)

FINISHED = "FINISHED"  # the value of ray.tune.search.Searcher.FINISHED
IDLE_WAIT_S = 1.0  # longest wait of one suggest() for a batch while no trial runs


@dataclass(frozen=True, order=True)
class TrialKey:
    """What a trial is, across runs and resumes: (seed, trial_index)."""

    seed: int
    trial_index: int


@dataclass(frozen=True)
class CompletedTrial:
    """A trial with a kernel outcome, as handed to the driver's `on_result`."""

    seed: int
    trial_index: int
    params: Params
    outcome: Outcome
    result: dict[str, Any]


def outcome_from_result(result: Mapping[str, Any]) -> Outcome:
    """The kernel outcome a trainable's result dict reports (`status`, `score`).

    Raises ValueError when the result breaks the trainable's contract (no status, an
    unknown one, an ok score that is missing or not finite).
    """
    status = result.get("status")
    if status == "invalid":
        return Outcome.invalid()
    if status == "ok":
        return Outcome.ok(result.get("score"))  # type: ignore[arg-type]  # checked there
    raise ValueError(f"result status must be 'ok' or 'invalid', got {status!r}")


@dataclass(frozen=True)
class TrialChunk:
    """The candidates one Tune trial carries: trial indices of one seed."""

    seed: int
    trial_indices: tuple[int, ...]

    @property
    def keys(self) -> list[TrialKey]:
        return [TrialKey(self.seed, k) for k in self.trial_indices]

    @property
    def name(self) -> str:
        """How the dashboard and Tune's logs name the trial: seed and trial_index range."""
        first, last = self.trial_indices[0], self.trial_indices[-1]
        span = str(first) if first == last else f"{first}-{last}"
        return f"seed{self.seed}_trials{span}"


def chunk_config(seed: int, suggestions: Sequence[Suggestion]) -> dict[str, Any]:
    """A trial's config: the seed and its candidates, params as plain Python scalars."""
    return {
        "seed": seed,
        "trials": [{"trial_index": s.trial_index, "params": dict(s.params)} for s in suggestions],
    }


@dataclass(frozen=True)
class Chunking:
    """How many candidates a Tune trial carries (execution-only: records never depend
    on it).

    A chunk holds at most `max_chunk` candidates, or, when it is None, about
    `target_s` seconds of work by the candidates' measured durations (`initial_chunk`
    before any was measured); and never more than an even share of the candidates not
    yet suggested over `slots` (the trials that run at once), so that every slot gets
    work. A chunk of 1 is one candidate per Tune trial.
    """

    slots: int = 1
    max_chunk: int | None = None
    target_s: float = 0.5
    initial_chunk: int = 8
    limit: int = 10_000

    def __post_init__(self) -> None:
        for name in ("slots", "initial_chunk", "limit"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.max_chunk is not None and (
            not isinstance(self.max_chunk, int) or self.max_chunk < 1
        ):
            raise ValueError(f"max_chunk must be None or an int >= 1, got {self.max_chunk!r}")
        if not self.target_s > 0:
            raise ValueError(f"target_s must be > 0, got {self.target_s!r}")

    def size(self, unsuggested: int, mean_duration_s: float | None) -> int:
        """The chunk size now, given the candidates not yet suggested (all seeds)."""
        if self.max_chunk is not None:
            cap = self.max_chunk
        elif mean_duration_s is None:
            cap = self.initial_chunk
        else:
            cap = int(min(self.limit, max(1.0, self.target_s / max(mean_duration_s, 1e-9))))
        return max(1, min(cap, math.ceil(unsuggested / self.slots)))


class Interleaver:
    """Runs `searchers` (seed -> searcher) in one experiment; see the module docstring."""

    def __init__(
        self,
        searchers: Mapping[int, SeededSearcher],
        on_result: Callable[[CompletedTrial], None] | None = None,
        chunking: Chunking | None = None,
    ) -> None:
        if not searchers:
            raise ValueError("the interleaver needs at least one seed's searcher")
        for seed, searcher in searchers.items():
            if searcher.seed != seed:
                raise ValueError(f"searcher for seed {seed} was built with seed {searcher.seed}")
        self._searchers = dict(searchers)
        self._seeds = list(searchers)
        self.on_result = on_result
        self._turn = 0  # index into _seeds of the seed asked first next time
        self.chunking = chunking or Chunking()
        self._durations = (0, 0.0)  # (candidates measured, their total seconds)
        self._trials: dict[str, TrialChunk] = {}
        self._live: set[str] = set()
        self._failed: dict[TrialKey, str] = {}
        self._held: dict[TrialKey, CompletedTrial] = {}
        # Trials with an outcome before this interleaver saw them (a rebuild from the
        # records): already recorded, so delivery skips them.
        self._known = {seed: set(s.outcomes()) for seed, s in self._searchers.items()}
        self._next_delivery = {seed: 0 for seed in self._seeds}
        # Events that may make suggestions ready (completions, arrived batches) are
        # counted; the last scan that found nothing saw `_idle_at` of them.
        self._events = itertools.count(1)
        self._last_event = 0
        self._idle_at = -1
        self._arrival = threading.Condition()
        self.idle_wait_s = IDLE_WAIT_S
        self._listen()

    def _listen(self) -> None:
        for searcher in self._searchers.values():
            searcher.add_wakeup(self._wake)

    def _wake(self) -> None:
        # Called from a pool's thread too.
        with self._arrival:
            self._last_event = next(self._events)
            self._arrival.notify_all()

    # -- suggesting -----------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """A trial config (a chunk of one seed's candidates), None (nothing ready now)
        or FINISHED.

        O(1) while trials run and nothing new happened: Tune polls this ~10 times a
        second, and nothing can become ready until a trial completes or a batch arrives.
        With no trial running, it waits up to `idle_wait_s` for a batch being computed.
        """
        deadline = None
        while True:
            if self._idle_at != self._last_event:
                seen = self._last_event  # read before the scan: a batch may arrive during it
                config = self._scan(trial_id)
                if config is not None:
                    return config
                self._idle_at = seen
            if self.finished or not (self._live or self._computing()):
                # Nothing ready, running or computing: done, or blocked behind failed trials.
                return FINISHED
            if self._live:
                return None
            now = time.monotonic()
            deadline = now + self.idle_wait_s if deadline is None else deadline
            if now >= deadline:
                return None
            with self._arrival:
                self._arrival.wait_for(lambda: self._last_event != self._idle_at, deadline - now)

    def _scan(self, trial_id: str) -> dict[str, Any] | None:
        """The next seed's ready suggestions (seeds in turn) as a chunk, or None."""
        limit = self._chunk_size()
        for offset in range(len(self._seeds)):
            position = (self._turn + offset) % len(self._seeds)
            seed = self._seeds[position]
            ready = self._searchers[seed].ask(limit=limit)
            if ready:
                self._turn = (position + 1) % len(self._seeds)
                self._trials[trial_id] = TrialChunk(seed, tuple(s.trial_index for s in ready))
                self._live.add(trial_id)
                return chunk_config(seed, ready)
        return None

    def _chunk_size(self) -> int:
        unsuggested = sum(s.unsuggested for s in self._searchers.values())
        measured, seconds = self._durations
        return self.chunking.size(unsuggested, seconds / measured if measured else None)

    def _computing(self) -> bool:
        return any(searcher.computing for searcher in self._searchers.values())

    # -- completing -----------------------------------------------------------------
    def complete(self, trial_id: str, result: Mapping[str, Any] | None, error: bool) -> None:
        """Tune's on_trial_complete: tell each candidate's kernel outcome, or keep the
        candidates as failed."""
        chunk = self._trials.get(trial_id)
        if chunk is None:
            logger.warning("completion of unknown trial id %s ignored", trial_id)
            return
        self._live.discard(trial_id)
        self._wake()
        if error or result is None:
            reason = "trial errored" if error else "trial ended without a result"
            results: dict[int, Any] = {}
        else:
            reason = "the trial's result has no result for this candidate"
            results = _candidate_results(result)
        for key in chunk.keys:
            self._complete_one(key, results.get(key.trial_index), reason)
        self._deliver(chunk.seed)

    def _complete_one(self, key: TrialKey, result: Mapping[str, Any] | None, reason: str) -> None:
        searcher = self._searchers[key.seed]
        if searcher.has_outcome(key.trial_index):
            self._repeated(key, result, result is None)
            return
        if result is None:
            self._failed[key] = reason
            return
        try:
            outcome = outcome_from_result(result)
        except ValueError as problem:
            logger.error("seed %s trial %s: %s", key.seed, key.trial_index, problem)
            self._failed[key] = f"result breaks the trainable's contract: {problem}"
            return
        self._failed.pop(key, None)
        self._measure(result)
        searcher.tell(key.trial_index, outcome)
        params = searcher.suggestion(key.trial_index)
        self._held[key] = CompletedTrial(key.seed, key.trial_index, params, outcome, dict(result))

    def _measure(self, result: Mapping[str, Any]) -> None:
        duration = result.get("duration_s")
        if isinstance(duration, int | float) and not isinstance(duration, bool) and duration >= 0:
            measured, seconds = self._durations
            self._durations = (measured + 1, seconds + float(duration))

    def _repeated(self, key: TrialKey, result: Mapping[str, Any] | None, error: bool) -> None:
        """A second report of a trial that already has its kernel outcome: the first one
        stands (it may already be delivered). The same outcome again is a no-op; another
        outcome is a non-deterministic retry and raises ValueError; an error or a broken
        result after the outcome is logged and ignored."""
        try:
            outcome = None if error or result is None else outcome_from_result(result)
        except ValueError:
            outcome = None
        if outcome is None:
            logger.warning(
                "seed %s trial %s: a failure reported after its outcome is ignored",
                key.seed,
                key.trial_index,
            )
            return
        self._searchers[key.seed].tell(key.trial_index, outcome)  # raises when it differs

    def _deliver(self, seed: int) -> None:
        while True:
            key = TrialKey(seed, self._next_delivery[seed])
            if key.trial_index in self._known[seed]:
                self._next_delivery[seed] += 1
            elif key in self._held:
                completed = self._held.pop(key)
                self._next_delivery[seed] += 1
                if self.on_result is not None:
                    self.on_result(completed)
            else:
                return

    # -- what the driver reads ------------------------------------------------------
    @property
    def chunks_handed_out(self) -> int:
        """Tune trials this interleaver suggested (each a chunk of candidates)."""
        return len(self._trials)

    def chunk(self, trial_id: str) -> TrialChunk:
        """The candidates of a Tune trial id this interleaver suggested."""
        return self._trials[trial_id]

    @property
    def finished(self) -> bool:
        return all(searcher.finished for searcher in self._searchers.values())

    @property
    def failed(self) -> dict[TrialKey, str]:
        """Trials that ended without a kernel outcome, with the reason (never told)."""
        return dict(self._failed)

    def held(self) -> list[CompletedTrial]:
        """Completed trials not yet handed to `on_result` (an earlier trial is missing)."""
        return [self._held[key] for key in sorted(self._held)]

    def searcher(self, seed: int) -> SeededSearcher:
        return self._searchers[seed]

    @property
    def total_trials(self) -> int:
        return sum(searcher.iterations for searcher in self._searchers.values())

    # -- state ----------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher with the experiment; the callback (the driver's
        # recorder, with its connections) stays behind.
        return self.get_state()

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.on_result = None
        self.set_state(state)

    def get_state(self) -> dict[str, Any]:
        """Everything but the callback and the pool, as picklable data."""
        return {
            "searchers": {seed: s.save() for seed, s in self._searchers.items()},
            "pooled": sorted(seed for seed, s in self._searchers.items() if s.pool is not None),
            "seeds": list(self._seeds),
            "chunking": self.chunking,
            "durations": self._durations,
            "turn": self._turn,
            "trials": dict(self._trials),
            "live": sorted(self._live),
            "failed": dict(self._failed),
            "held": dict(self._held),
            "known": {seed: sorted(known) for seed, known in self._known.items()},
            "next_delivery": dict(self._next_delivery),
            "idle_wait_s": self.idle_wait_s,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """The state of `get_state`. Searchers keep the pool this interleaver's have; in
        an unpickled interleaver, those that had one refuse to compute until given one
        again (`searcher(seed).pool = pool`), never falling back to unpinned numerics."""
        current = getattr(self, "_searchers", {}).values()
        pool = next((s.pool for s in current if s.pool is not None), None)
        pooled = set(state.get("pooled", ()))
        self._searchers = {
            seed: restore_searcher(
                saved, pool if pool is not None or seed not in pooled else DetachedPool()
            )
            for seed, saved in state["searchers"].items()
        }
        self._seeds = list(state["seeds"])
        self.chunking = state["chunking"]
        self._durations = state["durations"]
        self._turn = state["turn"]
        self._trials = dict(state["trials"])
        self._live = set(state["live"])
        self._failed = dict(state["failed"])
        self._held = dict(state["held"])
        self._known = {seed: set(known) for seed, known in state["known"].items()}
        self._next_delivery = dict(state["next_delivery"])
        self._events = itertools.count(1)
        self._last_event, self._idle_at = 0, -1  # scan at the next suggest()
        self._arrival = threading.Condition()
        self.idle_wait_s = state.get("idle_wait_s", IDLE_WAIT_S)
        self._listen()


def _candidate_results(result: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    """A chunk's report as trial_index -> that candidate's result (malformed entries are
    left out: their candidates then break the contract and fail)."""
    found: dict[int, Mapping[str, Any]] = {}
    trials = result.get("trials")
    if not isinstance(trials, list):
        return found
    for entry in trials:
        if isinstance(entry, Mapping) and isinstance(entry.get("trial_index"), int):
            found.setdefault(entry["trial_index"], entry)
    return found
