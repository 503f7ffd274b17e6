"""The Ray Tune adapter: a `ray.tune.search.Searcher` over one or several seeds' searchers.

The only module of `search/` that imports Ray. One seed is the interleaver with one
searcher; several seeds share one experiment (Tune runs one experiment at a time).

Use it with a function trainable and an empty `param_space`; the trial config is a chunk
of one seed's candidates, `{"seed": int, "trials": [{"trial_index": int, "params":
{name: int | float}}, ...]}`, and the trainable reports once, `{"trials": [a result per
candidate], ...}` (search.interleave explains chunks; `Chunking` sizes them). Set
`TuneConfig(num_samples=-1)` (or `total_trials`): the searcher returns FINISHED when
every seed is done, or when nothing can run because trials failed (see `failed`).
Searchers built with a `search.pool.SuggestionPool` compute their batches while Tune
polls: `suggest` returns None meanwhile, even when no trial runs.

Set `TuneConfig(max_concurrent_trials=<trial slots of the cluster>)`: for a custom
searcher Tune otherwise keeps a single trial pending, so trials start one at a time
(`_get_max_pending_trials` in ray/tune/execution/tune_controller.py). The
ConcurrencyLimiter this adds only throttles; determinism never depends on it, since
outcomes are registered per seed in trial_index order whatever the completion order.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from typing import Any

from ray.tune.search import Searcher

from search.core import SeededSearcher
from search.interleave import (
    FINISHED,
    Chunking,
    CompletedTrial,
    Interleaver,
    TrialChunk,
    TrialKey,
)

assert Searcher.FINISHED == FINISHED


class TuneSearcher(Searcher):
    """Tune's view of an `Interleaver` (seed -> searcher); see the module docstring.

    `on_result(CompletedTrial)` is called for every kernel outcome, per seed in
    trial_index order; infrastructure failures land in `failed` instead.
    """

    def __init__(
        self,
        searchers: Mapping[int, SeededSearcher],
        on_result: Callable[[CompletedTrial], None] | None = None,
        chunking: Chunking | None = None,
    ) -> None:
        super().__init__()
        self.interleaver = Interleaver(searchers, on_result, chunking)

    # Tune's annotation says Optional[Dict], but its contract includes FINISHED (a str).
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        return self.interleaver.suggest(trial_id)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        self.interleaver.complete(trial_id, result, error)

    def chunk(self, trial_id: str) -> TrialChunk:
        """The candidates of a Tune trial id; never key records on the trial id."""
        return self.interleaver.chunk(trial_id)

    @property
    def failed(self) -> dict[TrialKey, str]:
        return self.interleaver.failed

    @property
    def finished(self) -> bool:
        return self.interleaver.finished

    @property
    def total_trials(self) -> int:
        return self.interleaver.total_trials

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.interleaver.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.interleaver.set_state(pickle.load(file))
