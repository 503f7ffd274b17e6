"""One Tune experiment runs every seed of an ensemble (Tune runs one experiment at a time).

The seeds' searchers sit behind one `search.tune_searcher.TuneSearcher` (the
interleaver), which hands each Tune trial a chunk of one seed's candidates
(`search.interleave.Chunking` sizes them; records never depend on it). The trainable
is `trainable.tune_adapter.backtest_trainable` with the candle table, the job constants
and the strategy bound by `tune.with_parameters`, so they reach the workers once
through the object store and never through a trial's config. Function trainables with
actor reuse, Tune's per-trial log files and console reports off: Tune's own
bookkeeping is the floor of a trial's cost. Tune keeps its trial actors from the first
batch to the end of the search (cluster.job.trial_actors): none is stopped at a pause
between Bayesian batches, and a worker node's actor is waited for while it starts.

How candidates end (DESIGN.md, contract 3): a kernel outcome (`ok` / `invalid`) reaches
the searcher and `on_result`, per seed in trial_index order. An infrastructure failure
(a worker or node died) fails a whole chunk, which reported nothing yet: Tune retries it
up to `max_failures` times; candidates whose chunk still fails are never told to a
searcher, and the experiment ends once nothing else can run. SIGINT (Ctrl-C, `ray job
stop` with RAY_JOB_STOP_SIGNAL=SIGINT) and SIGTERM end it gracefully: running trials are
stopped, finished ones are all delivered. The caller decides what an unfinished
experiment means (exit 3: resumable).

`on_result` must not raise: a recording problem is reported with `stop(error)`, which
ends the experiment at Tune's next step; `ExperimentEnd.error` carries it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ray import tune
from ray.tune import Callback
from ray.tune.stopper import Stopper

from cluster.job.trial_actors import keep_trial_actors
from cluster.job.windows import search_key
from search.core import SeededSearcher
from search.interleave import Chunking, CompletedTrial, TrialKey
from search.tune_searcher import TuneSearcher
from trainable.strategies import Strategy
from trainable.tune_adapter import backtest_trainable
from trainable.types import JobConstants

# Tune's per-trial result files and console reporters cost ~33 KB and several ms per
# trial; records live in PostgreSQL. Set before Tune builds its callbacks; a user who
# wants Tune's files sets it to 0.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Tune's console output (a configuration box, result tables) would interleave with the
# progress display; errors still reach the log.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@dataclass(frozen=True)
class ExperimentPlan:
    """How to run the experiment (execution-only settings)."""

    name: str
    max_concurrent_trials: int
    cpus_per_trial: float
    max_failures: int
    storage_path: str | None
    chunk_size: int | None = None


@dataclass(frozen=True)
class ExperimentEnd:
    """How the experiment ended: `finished` when every seed has all its outcomes;
    else trials `failed` past their retries, `error` stopped it, or a signal did."""

    finished: bool
    failed: dict[TrialKey, str]
    error: BaseException | None
    tune_trials: int = 0  # Tune trials started (each a chunk of candidates)


class StopSwitch:
    """Ends the experiment at Tune's next step once `stop(error)` was called."""

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def stop(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error


def run_experiment(
    searchers: Mapping[int, SeededSearcher],
    *,
    candles: Any,
    constants: JobConstants,
    strategy: Strategy,
    plan: ExperimentPlan,
    on_result: Callable[[CompletedTrial, int], None],
    on_step: Callable[[], None] | None = None,
    switch: StopSwitch | None = None,
    rows: Mapping[int, tuple[int, int]] | None = None,
) -> ExperimentEnd:
    """Run `searchers` (seed -> searcher) to the end in one Tune experiment.

    `candles` is the candle table's ObjectRef (put once by the caller). `on_result`
    receives each kernel outcome with its attempt count (1 + retries after an
    infrastructure failure); `on_step` is called at every step of Tune's loop. `rows`
    restricts the searchers of some seeds to rows of the table (walk-forward
    windows: cluster.job.windows).
    """
    switch = switch or StopSwitch()
    watch: _Watch | None = None

    def deliver(completed: CompletedTrial) -> None:
        attempts = 1 + (watch.failures[completed.seed, completed.trial_index] if watch else 0)
        on_result(completed, attempts)

    chunking = Chunking(slots=plan.max_concurrent_trials, max_chunk=plan.chunk_size)
    searcher = TuneSearcher(searchers, on_result=deliver, chunking=chunking)
    watch = _Watch(searcher, on_step)
    bound: dict[str, Any] = {"rows": dict(rows)} if rows else {}
    trainable = tune.with_parameters(
        backtest_trainable, candles=candles, constants=constants, strategy=strategy, **bound
    )
    if plan.cpus_per_trial != 1.0:
        trainable = tune.with_resources(trainable, {"cpu": plan.cpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            # Without it Tune keeps a single trial pending for a custom searcher
            # (ray/tune/execution/tune_controller.py): trials would start one by one.
            max_concurrent_trials=plan.max_concurrent_trials,
            reuse_actors=True,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage_path,
            verbose=0,
            stop=_Stopper(switch),
            callbacks=[watch],
            failure_config=tune.FailureConfig(max_failures=plan.max_failures),
            log_to_file=False,
        ),
    )
    with _quiet_tune(), _sigterm_as_sigint(), keep_trial_actors():
        tuner.fit()
    return ExperimentEnd(
        finished=searcher.finished,
        failed=searcher.failed,
        error=switch.error,
        tune_trials=searcher.interleaver.chunks_handed_out,
    )


def _trial_name(trial: Any) -> str:
    """What the dashboard and Tune's logs call a trial: its seed (and walk-forward window)
    and trial_index range."""
    config = trial.config or {}
    indices = [entry.get("trial_index") for entry in config.get("trials") or [{}]]
    span = f"{indices[0]}" if len(indices) == 1 else f"{indices[0]}-{indices[-1]}"
    key = config.get("seed")
    if not isinstance(key, int):
        return f"seed{key}_trials{span}"
    search = search_key(key)  # a job seed's search, or one of its walk-forward windows'
    window = "" if search.window is None else f"_window{search.window}"
    return f"seed{search.seed}{window}_trials{span}"


class _Stopper(Stopper):
    """Ends every trial, and so the experiment, once the switch is thrown."""

    def __init__(self, switch: StopSwitch) -> None:
        self._switch = switch

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        return self._switch.error is not None


class _Watch(Callback):
    """Counts infrastructure failures per (seed, trial_index) (a failed chunk counts for
    each of its candidates) and ticks `on_step`."""

    def __init__(self, searcher: Any, on_step: Callable[[], None] | None) -> None:
        self._searcher = searcher
        self._on_step = on_step
        self.failures: Counter[tuple[int, int]] = Counter()

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; the live references stay.
        return {"failures": Counter(self.failures)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._searcher, self._on_step, self.failures = None, None, state["failures"]

    def _count(self, trial: Any) -> None:
        for key in self._searcher.chunk(trial.trial_id).keys:
            self.failures[key.seed, key.trial_index] += 1

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._count(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._count(trial)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self._on_step is not None:
            self._on_step()


@contextmanager
def _quiet_tune() -> Iterator[None]:
    """Tune's warnings about its own restore (`Tuner.restore`) would mislead: resume is
    `python -m cluster resume`, from the records. Errors still show."""
    tune_logger = logging.getLogger("ray.tune")
    level = tune_logger.level
    tune_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tune_logger.setLevel(level)


@contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """SIGTERM (what `ray job stop` sends by default) stops the experiment as SIGINT
    does: gracefully, keeping every finished trial (Tune handles SIGINT itself)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be handled in the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
