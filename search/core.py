"""The Tune-free core every searcher shares: ask / tell / finished, save / restore, rebuild.

Suggestions are numbered 0, 1, 2, ... per seed. `ask()` hands out the suggestions that
are ready now, each once; `tell(k, outcome)` reports trial k's kernel outcome, in any
order. A searcher decides which suggestions are ready from the outcomes of a *prefix*
of the trials only (all trials before a fixed index), so suggestion k is a pure function
of (space, seed, options, outcomes of the trials before that index): completion order
never changes what it suggests.

The rule for kernel outcomes, the same for every searcher: an `ok` outcome counts with
its finite score (maximized); an `invalid` outcome counts as the searcher's
`invalid_score` (the job's penalty). Infrastructure failures are never told.

A searcher may compute suggestions asynchronously (the Bayesian searcher with a
`search.pool.SuggestionPool`): then `ask()` returns nothing while a due batch is being
computed, `computing` is True meanwhile, and the callbacks given to `add_wakeup` are
called (from another thread) when it arrives. What it suggests never depends on
whether, where or how fast a batch was computed.
"""

from __future__ import annotations

import math
import numbers
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self

import numpy as np

from search.space import Params, Space

MAX_SEED = 2**63 - 1  # seeds are stored as PostgreSQL bigint


@dataclass(frozen=True)
class Outcome:
    """A kernel outcome: `ok` with a finite `score`, or `invalid` (no score)."""

    status: Literal["ok", "invalid"]
    score: float | None = None

    def __post_init__(self) -> None:
        if self.status == "ok":
            if not isinstance(self.score, numbers.Real) or isinstance(self.score, bool):
                raise ValueError(f"an ok outcome needs a real score, got {self.score!r}")
            if not math.isfinite(self.score):
                raise ValueError(f"an ok outcome needs a finite score, got {self.score!r}")
            object.__setattr__(self, "score", float(self.score))
        elif self.status == "invalid":
            if self.score is not None:
                raise ValueError("an invalid outcome carries no score (it counts as invalid_score)")
        else:
            raise ValueError(f"outcome status must be 'ok' or 'invalid', got {self.status!r}")

    @classmethod
    def ok(cls, score: float) -> Outcome:
        return cls("ok", score)

    @classmethod
    def invalid(cls) -> Outcome:
        return cls("invalid")

    def value(self, invalid_score: float) -> float:
        """The score a searcher counts: the score itself, or `invalid_score`."""
        return invalid_score if self.score is None else self.score

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(data["status"], data.get("score"))


@dataclass(frozen=True)
class Suggestion:
    """Trial `trial_index` of one seed: evaluate `params` (plain Python scalars)."""

    trial_index: int
    params: Params


@dataclass(frozen=True)
class RecordedTrial:
    """What the records hold about a finished trial, the input of `rebuild`."""

    params: Params
    outcome: Outcome


class RebuildMismatch(ValueError):
    """A recorded trial's params differ from what the rebuilt searcher suggests."""


class DetachedPool:
    """The pool of a searcher unpickled away from it: refuses to compute."""

    def submit(self, request: Any) -> Future[Any]:
        raise RuntimeError(
            "this searcher was unpickled without its suggestion pool: set searcher.pool "
            "to a running search.pool.SuggestionPool before it computes a batch"
        )


class ComputePool(Protocol):
    """Where a searcher's expensive suggestions are computed asynchronously
    (`search.pool.SuggestionPool`). `submit(request)` returns at once; the future's
    result is `request.compute()` as computed there."""

    def submit(self, request: Any) -> Future[Any]: ...


def check_seed(seed: object) -> int:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**63 - 1], got {seed}")
    return int(seed)


def seeded_generator(seed: int, *stream: int) -> np.random.Generator:
    """A fresh Generator for (seed, stream...): independent of every other stream."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *stream])))


def seeded_random_state(seed: int, *stream: int) -> np.random.RandomState:
    """The same, as the legacy RandomState that bayes_opt and scikit-learn accept."""
    return np.random.RandomState(np.random.MT19937(np.random.SeedSequence([seed, *stream])))


def same_params(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal bit for bit, types included (3 and 3.0 differ; so do 0.0 and -0.0); the
    order of the keys does not matter."""
    if set(a) != set(b):
        return False
    # repr is float's shortest round-trip form: equal reprs mean equal bits.
    return all(type(a[k]) is type(b[k]) and repr(a[k]) == repr(b[k]) for k in a)


class SeededSearcher(ABC):
    """Base of every searcher: bookkeeping of suggestions, outcomes and readiness.

    A subclass says which trials can be suggested with the outcomes known so far
    (`_due_end`) and computes a trial's params (`_suggest`). The base class hands them
    out, records outcomes, and implements save / restore / rebuild.

    `pool` is execution-only (never part of `options` or of the saved state): searchers
    that compute suggestions asynchronously use it, the others ignore it.
    """

    kind: ClassVar[str]

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        iterations: int,
        invalid_score: float,
        pool: ComputePool | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(space, Space):
            raise ValueError(f"space must be a search.space.Space, got {type(space).__name__}")
        if not isinstance(iterations, numbers.Integral) or isinstance(iterations, bool):
            raise ValueError(f"iterations must be an int, got {iterations!r}")
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        if not isinstance(invalid_score, numbers.Real) or not math.isfinite(invalid_score):
            raise ValueError(f"invalid_score must be a finite number, got {invalid_score!r}")
        self.space: Space = space
        self.seed: int = check_seed(seed)
        self.iterations: int = int(iterations)
        self.invalid_score: float = float(invalid_score)
        self.options: dict[str, Any] = dict(options)
        self.pool: ComputePool | None = pool
        self._wakeups: list[Callable[[], None]] = []
        self._wakeups_lock: threading.Lock = threading.Lock()
        self._params: dict[int, Params] = {}  # every computed suggestion, handed out or not
        self._outcomes: dict[int, Outcome] = {}
        self._next_index: int = 0  # the lowest trial index never handed out
        self._reemit: deque[int] = deque()  # handed out again after a rebuild
        self._prefix: int = 0  # every trial below this index has an outcome

    # -- what a subclass provides ---------------------------------------------------
    @abstractmethod
    def _due_end(self) -> int:
        """Trials below this index can be suggested from the outcomes known now."""

    def _ready_end(self) -> int:
        """Trials below this index can be handed out now: `_due_end()`, or less while an
        asynchronous computation of due trials runs (never blocks)."""
        return self._due_end()

    def _prefetch(self) -> None:
        """Start any asynchronous computation of due trials (rebuild calls it before it
        checks the recomputed trials, so that many seeds' batches compute at once).
        Synchronous searchers have nothing to start."""
        return None

    @abstractmethod
    def _suggest(self, trial_index: int) -> Params:
        """Params of a trial below `_due_end()`; a pure function of the known prefix."""

    def _must_replay(self, trial_index: int) -> bool:
        """Whether rebuild recomputes (and checks) this trial instead of trusting records."""
        return True

    # -- the core API ---------------------------------------------------------------
    def ask(self, limit: int | None = None) -> list[Suggestion]:
        """The suggestions ready now and not handed out yet (at most `limit`), in order.

        Empty while the searcher waits on outcomes, and once every trial is handed out.
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        budget = self.iterations if limit is None else limit
        ready: list[Suggestion] = []
        while self._reemit and len(ready) < budget:
            index = self._reemit.popleft()
            ready.append(Suggestion(index, dict(self._params[index])))
        ready_end = self._ready_end() if len(ready) < budget else 0
        if self._next_index < ready_end:
            end = min(ready_end, self._next_index + budget - len(ready))
            for index in range(self._next_index, end):
                ready.append(Suggestion(index, dict(self._params_of(index))))
            self._next_index = end
        return ready

    def tell(self, trial_index: int, outcome: Outcome) -> None:
        """Record trial `trial_index`'s kernel outcome (any order; once per trial)."""
        if not isinstance(outcome, Outcome):
            raise TypeError(f"outcome must be an Outcome, got {type(outcome).__name__}")
        if trial_index not in self._params or trial_index >= self._next_index:
            raise ValueError(f"trial {trial_index} was never suggested (seed {self.seed})")
        if trial_index in self._reemit:
            raise ValueError(f"trial {trial_index} awaits re-emission after a rebuild")
        known = self._outcomes.get(trial_index)
        if known is not None:
            if known == outcome:
                return  # a repeated report of the same outcome
            raise ValueError(f"trial {trial_index} already has outcome {known}, now told {outcome}")
        self._outcomes[trial_index] = outcome
        while self._prefix in self._outcomes:
            self._prefix += 1

    @property
    def finished(self) -> bool:
        """True once every one of the `iterations` trials has an outcome."""
        return len(self._outcomes) == self.iterations

    @property
    def computing(self) -> bool:
        """True while due trials are being computed asynchronously: `ask()` will have
        suggestions without another `tell`, and the wakeup callbacks will be called."""
        return False

    def add_wakeup(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from any thread; keep it short) whenever suggestions
        become ready without a `tell`: an asynchronous computation has finished."""
        with self._wakeups_lock:
            self._wakeups.append(callback)

    def _wake(self) -> None:
        with self._wakeups_lock:
            callbacks = list(self._wakeups)
        for callback in callbacks:
            callback()

    # -- pickling (Tune pickles its search algorithm) ---------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Everything but what belongs to this process: the lock, the wakeup callbacks
        (their owner registers again) and the pool, which an unpickled searcher must be
        given again (`searcher.pool = pool`) before it computes a batch: it never falls
        back to computing in a process whose numerics are not the pool's."""
        state = dict(self.__dict__)
        del state["_wakeups_lock"]
        state["_wakeups"] = []
        if state["pool"] is not None:
            state["pool"] = DetachedPool()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._wakeups_lock = threading.Lock()

    @property
    def unsuggested(self) -> int:
        """Trials not handed out yet (including those a rebuild hands out again)."""
        return self.iterations - self._next_index + len(self._reemit)

    @property
    def pending(self) -> list[int]:
        """Trials handed out that have no outcome yet, ascending."""
        waiting = set(self._reemit)
        return [k for k in range(self._next_index) if k not in self._outcomes and k not in waiting]

    def has_outcome(self, trial_index: int) -> bool:
        return trial_index in self._outcomes

    def outcomes(self) -> dict[int, Outcome]:
        return dict(self._outcomes)

    def suggestion(self, trial_index: int) -> Params:
        """The params of a trial already handed out."""
        if trial_index >= self._next_index:
            raise KeyError(f"trial {trial_index} was not handed out yet")
        return dict(self._params[trial_index])

    def _params_of(self, index: int) -> Params:
        if index not in self._params:
            self._params[index] = self._suggest(index)
        return self._params[index]

    def _score(self, trial_index: int) -> float:
        return self._outcomes[trial_index].value(self.invalid_score)

    # -- save / restore -------------------------------------------------------------
    def save(self) -> dict[str, Any]:
        """All state as JSON-able data (randomness derives from the seed, so no RNG state)."""
        return {
            "kind": self.kind,
            "space": self.space.to_dict(),
            "seed": self.seed,
            "iterations": self.iterations,
            "invalid_score": self.invalid_score,
            "options": dict(self.options),
            "params": [[k, p] for k, p in sorted(self._params.items())],
            "outcomes": [[k, o.to_dict()] for k, o in sorted(self._outcomes.items())],
            "next_index": self._next_index,
            "reemit": list(self._reemit),
        }

    @classmethod
    def restore(cls, state: Mapping[str, Any], pool: ComputePool | None = None) -> Self:
        """The searcher exactly as saved: pending trials stay handed out."""
        if state.get("kind") != cls.kind:
            raise ValueError(f"state of a {state.get('kind')!r} searcher, not {cls.kind!r}")
        searcher = cls(
            Space.from_dict(state["space"]),
            seed=state["seed"],
            iterations=state["iterations"],
            invalid_score=state["invalid_score"],
            pool=pool,
            **state["options"],
        )
        searcher._params = {int(k): dict(p) for k, p in state["params"]}
        searcher._next_index = int(state["next_index"])
        searcher._reemit = deque(int(k) for k in state["reemit"])
        for k, outcome in state["outcomes"]:
            searcher._outcomes[int(k)] = Outcome.from_dict(outcome)
        while searcher._prefix in searcher._outcomes:
            searcher._prefix += 1
        return searcher

    # -- rebuild from records -------------------------------------------------------
    @classmethod
    def rebuild(
        cls,
        space: Space,
        *,
        seed: int,
        iterations: int,
        invalid_score: float,
        recorded: Mapping[int, RecordedTrial],
        pool: ComputePool | None = None,
        **options: Any,
    ) -> Self:
        """The searcher as it was when `recorded` had finished, at about one batch's cost.

        Every trial below the highest recorded index that has no record is handed out
        again by the next `ask()`, then the sequence continues. Recorded params that the
        searcher recomputes are checked bit for bit (`RebuildMismatch`); the others (the
        finished batches of a model-based searcher) are taken as its history. With a
        `pool`, the recomputation runs there (this call waits for it);
        `search.registry.rebuild_searchers` rebuilds many seeds with their batches
        computed at once.
        """
        searcher = cls(
            space,
            seed=seed,
            iterations=iterations,
            invalid_score=invalid_score,
            pool=pool,
            **options,
        )
        searcher._load_history(recorded)
        searcher._replay(recorded)
        return searcher

    def _load_history(self, recorded: Mapping[int, RecordedTrial]) -> None:
        """Rebuild, first step: take the records' outcomes and history; start computing."""
        indices = sorted(recorded)
        for k in indices:
            if not isinstance(k, numbers.Integral) or not 0 <= k < self.iterations:
                raise ValueError(f"recorded trial index {k!r} is outside [0, {self.iterations})")
            problems = self.space.problems(recorded[k].params)
            if problems:
                raise ValueError(f"recorded trial {k}: {'; '.join(problems)}")
        for k in indices:
            self._outcomes[k] = recorded[k].outcome
        while self._prefix in self._outcomes:
            self._prefix += 1
        for k in indices:  # history first: the recomputed trials may depend on it
            if not self._must_replay(k):
                self._params[k] = self.space.normalized(recorded[k].params)
        self._prefetch()

    def _replay(self, recorded: Mapping[int, RecordedTrial]) -> None:
        """Rebuild, second step: recompute and check what the records cannot be trusted
        for; queue the unfinished trials for re-emission (may wait for a pool)."""
        indices = sorted(recorded)
        ready_end = self._due_end()
        for k in indices:
            if k >= ready_end:
                raise ValueError(
                    f"recorded trial {k} could not have been suggested: trial {self._prefix} "
                    f"has no outcome, so only trials below {ready_end} were ready"
                )
            if self._must_replay(k) and not same_params(self._params_of(k), recorded[k].params):
                raise RebuildMismatch(
                    f"seed {self.seed} trial {k}: recorded params {recorded[k].params} differ "
                    f"from the re-suggested {self._params_of(k)}"
                )
        self._next_index = indices[-1] + 1 if indices else 0
        self._reemit = deque(k for k in range(self._next_index) if k not in self._outcomes)
        for k in self._reemit:
            self._params_of(k)
