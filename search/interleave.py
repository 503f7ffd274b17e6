"""The interleaver: several seeds' searchers side by side in one experiment (Ray-free).

Tune runs one experiment at a time, so all seeds of an ensemble share one. Each
`suggest()` asks the seeds in turn, starting after the last seed served, and returns
the first suggestion ready, so the cluster stays full while a seed waits on its batch.
Each seed's sequence equals that seed run alone: a searcher's suggestions depend only
on its own outcomes, never on which seed was asked first or which trial finished first.

Trial ids (Tune's, random per run) only map to (seed, trial_index) here; nothing is
keyed on them. A trial ends in one of two ways (DESIGN.md, contract 3):
- a kernel outcome: the result's `status` is "ok" (with a finite `score`) or "invalid";
  it is told to the seed's searcher and handed to `on_result`, per seed in trial_index
  order (a trial that finished early is held until every earlier one has; trials that
  a rebuilt searcher already had outcomes for are not handed out again);
- anything else (an error, no result, a result breaking that contract): never told,
  kept in `failed` with the reason, so the driver can stop "interrupted, resumable".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from search.core import Outcome, SeededSearcher
from search.registry import restore_searcher
from search.space import Params

logger = logging.getLogger(__name__)

FINISHED = "FINISHED"  # the value of ray.tune.search.Searcher.FINISHED


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


def trial_config(seed: int, trial_index: int, params: Params) -> dict[str, Any]:
    """The trial config of DESIGN.md: exactly seed, trial_index and params."""
    return {"seed": seed, "trial_index": trial_index, "params": dict(params)}


class Interleaver:
    """Runs `searchers` (seed -> searcher) in one experiment; see the module docstring."""

    def __init__(
        self,
        searchers: Mapping[int, SeededSearcher],
        on_result: Callable[[CompletedTrial], None] | None = None,
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
        self._trials: dict[str, TrialKey] = {}
        self._live: set[str] = set()
        self._failed: dict[TrialKey, str] = {}
        self._held: dict[TrialKey, CompletedTrial] = {}
        # Trials with an outcome before this interleaver saw them (a rebuild from the
        # records): already recorded, so delivery skips them.
        self._known = {seed: set(s.outcomes()) for seed, s in self._searchers.items()}
        self._next_delivery = {seed: 0 for seed in self._seeds}
        self._idle = False  # the last scan found nothing and nothing has completed since

    # -- suggesting -----------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """A trial config, None (nothing ready now) or FINISHED.

        O(1) while idle: Tune polls this ~10 times a second, and nothing can become
        ready until a trial completes.
        """
        if not self._idle:
            for offset in range(len(self._seeds)):
                position = (self._turn + offset) % len(self._seeds)
                seed = self._seeds[position]
                ready = self._searchers[seed].ask(limit=1)
                if ready:
                    self._turn = (position + 1) % len(self._seeds)
                    suggestion = ready[0]
                    self._trials[trial_id] = TrialKey(seed, suggestion.trial_index)
                    self._live.add(trial_id)
                    return trial_config(seed, suggestion.trial_index, suggestion.params)
            self._idle = True
        if self.finished or not self._live:
            # Nothing ready, nothing running: done, or blocked behind failed trials.
            return FINISHED
        return None

    # -- completing -----------------------------------------------------------------
    def complete(self, trial_id: str, result: Mapping[str, Any] | None, error: bool) -> None:
        """Tune's on_trial_complete: tell a kernel outcome, or keep the trial as failed."""
        key = self._trials.get(trial_id)
        if key is None:
            logger.warning("completion of unknown trial id %s ignored", trial_id)
            return
        self._live.discard(trial_id)
        self._idle = False
        if error or result is None:
            self._failed[key] = "trial errored" if error else "trial ended without a result"
            return
        try:
            outcome = outcome_from_result(result)
        except ValueError as problem:
            logger.error("seed %s trial %s: %s", key.seed, key.trial_index, problem)
            self._failed[key] = f"result breaks the trainable's contract: {problem}"
            return
        searcher = self._searchers[key.seed]
        searcher.tell(key.trial_index, outcome)
        params = searcher.suggestion(key.trial_index)
        self._held[key] = CompletedTrial(key.seed, key.trial_index, params, outcome, dict(result))
        self._deliver(key.seed)

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
    def trial(self, trial_id: str) -> TrialKey:
        """(seed, trial_index) of a Tune trial id this interleaver suggested."""
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
        """Everything but the callback, as picklable data."""
        return {
            "searchers": {seed: s.save() for seed, s in self._searchers.items()},
            "seeds": list(self._seeds),
            "turn": self._turn,
            "trials": dict(self._trials),
            "live": sorted(self._live),
            "failed": dict(self._failed),
            "held": dict(self._held),
            "known": {seed: sorted(known) for seed, known in self._known.items()},
            "next_delivery": dict(self._next_delivery),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._searchers = {
            seed: restore_searcher(saved) for seed, saved in state["searchers"].items()
        }
        self._seeds = list(state["seeds"])
        self._turn = state["turn"]
        self._trials = dict(state["trials"])
        self._live = set(state["live"])
        self._failed = dict(state["failed"])
        self._held = dict(state["held"])
        self._known = {seed: set(known) for seed, known in state["known"].items()}
        self._next_delivery = dict(state["next_delivery"])
        self._idle = False
