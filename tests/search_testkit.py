"""Toy spaces, objectives and drivers shared by the search/ tests (not a test module).

`drive` plays the role of Tune + the trainable for one seed's searcher: it hands out
what `ask()` returns, keeps up to `concurrency` trials "running", and completes them in
an order drawn from `order_rng` (None: trial order). The sequence it returns,
[(trial_index, params)] in trial order, is what must not depend on that order. While
a searcher computes a batch in a pool and nothing runs, both drivers poll, as Tune does.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

from search.core import Outcome, SeededSearcher
from search.registry import make_searcher
from search.space import FloatRange, IntRange, Space

POLL_SECONDS = 0.002
POLL_DEADLINE_SECONDS = 120.0

TOY_SPACE = Space(
    [
        ("a", IntRange(-3, 7)),
        ("b", FloatRange(0.5, 2.5)),
        ("c", IntRange(0, 1)),
        ("d", FloatRange(-1.0, 1.0)),
    ]
)
INVALID_SCORE = -100.0
ITERATIONS = 20

# Options per kind for the contract suite: small batches so that 20 trials span
# several of them (Bayesian: batches [0..3], [4..6], [7..9], ..., [19]).
KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "bayesian": {"n_initial": 4, "batch_size": 3},
    "random": {},
    "grid": {"points": 4},  # 4 x 4 x 2 x 4 = 128 points
}


def toy_outcome(params: dict[str, int | float]) -> Outcome:
    """Deterministic toy kernel: invalid when a == -3, else a smooth score."""
    if params["a"] == -3:
        return Outcome.invalid()
    score = -((params["a"] - 2) ** 2) / 10 - (params["b"] - 1.7) ** 2 + 0.3 * params["c"]
    return Outcome.ok(score - abs(params["d"] - 0.25))


def build(kind: str, seed: int = 7, **overrides: Any) -> SeededSearcher:
    options = {**KIND_OPTIONS[kind], **overrides}
    return make_searcher(
        kind,
        space=TOY_SPACE,
        seed=seed,
        iterations=ITERATIONS,
        invalid_score=INVALID_SCORE,
        **options,
    )


def canonical(params: dict[str, int | float]) -> tuple[tuple[str, str, str], ...]:
    """Params with types and exact reprs, so 3 != 3.0 and every float bit counts."""
    return tuple((name, type(v).__name__, repr(v)) for name, v in params.items())


Sequence_ = list[tuple[int, tuple[tuple[str, str, str], ...]]]


def drive(
    searcher: SeededSearcher,
    objective: Callable[[dict[str, int | float]], Outcome] = toy_outcome,
    order_rng: random.Random | None = None,
    concurrency: int = 4,
    stop_after: int | None = None,
    already_running: dict[int, dict[str, int | float]] | None = None,
) -> Sequence_:
    """Run `searcher` to the end (or until `stop_after` completions); see module doc.

    `already_running`: trials handed out before (e.g. pending in a restored searcher).
    """
    handed_out: dict[int, dict[str, int | float]] = dict(already_running or {})
    running: list[int] = sorted(handed_out)
    completed = 0
    while not searcher.finished and (stop_after is None or completed < stop_after):
        free = max(concurrency - len(running), 0)
        for suggestion in searcher.ask(limit=free) if free else []:
            assert suggestion.trial_index not in handed_out or suggestion.trial_index in running
            handed_out[suggestion.trial_index] = suggestion.params
            running.append(suggestion.trial_index)
        if not running:
            assert searcher.computing, "searcher waits, but nothing is running"
            time.sleep(POLL_SECONDS)  # a batch is being computed in a pool
            continue
        pick = order_rng.randrange(len(running)) if order_rng else 0
        index = running.pop(pick)
        searcher.tell(index, objective(handed_out[index]))
        completed += 1
    return [(k, canonical(handed_out[k])) for k in sorted(handed_out)]


def assert_params_in_space(params: dict[str, int | float], space: Space = TOY_SPACE) -> None:
    assert list(params) == list(space)
    for name, value in params.items():
        r = space[name]
        if isinstance(r, IntRange):
            assert type(value) is int, (name, value)
        else:
            assert type(value) is float and math.isfinite(value), (name, value)
        assert r.lower <= value <= r.upper, (name, value)


def candidate_result(trial_index: int, params: dict[str, int | float]) -> dict[str, Any]:
    """What a toy trainable reports for one candidate."""
    outcome = toy_outcome(params)
    score = INVALID_SCORE if outcome.score is None else outcome.score
    return {"trial_index": trial_index, "status": outcome.status, "score": score, "n_trades": 3}


def result_dict(config: dict[str, Any]) -> dict[str, Any]:
    """What a toy trainable reports for a trial config (a chunk of candidates)."""
    return {"trials": [candidate_result(c["trial_index"], c["params"]) for c in config["trials"]]}


def candidates(config: dict[str, Any]) -> list[tuple[int, int, dict[str, int | float]]]:
    """(seed, trial_index, params) of every candidate a trial config carries."""
    return [(config["seed"], c["trial_index"], c["params"]) for c in config["trials"]]


def tune_like(
    suggest: Callable[[str], Any],
    complete: Callable[[str, dict[str, Any]], None],
    rng: random.Random,
    capacity: int,
    stop_after: int | None = None,
    running: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Play Tune: keep up to `capacity` trials running (fresh random trial ids), complete
    a random one, until `suggest` says FINISHED (or `stop_after` completions).

    Returns (configs handed out by trial id, trials still running by trial id).
    """
    configs: dict[str, dict[str, Any]] = {}
    running = dict(running or {})
    completions = 0
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while stop_after is None or completions < stop_after:
        config: Any = None
        while len(running) < capacity:
            trial_id = f"{rng.getrandbits(32):08x}"
            config = suggest(trial_id)
            if isinstance(config, dict):
                configs[trial_id] = running[trial_id] = config
            elif config is None and not running:  # a batch is being computed in a pool
                assert time.monotonic() < deadline, "suggest() never got past None"
                time.sleep(POLL_SECONDS)
            else:  # None while trials run, or FINISHED
                break
        if not running:
            assert config == "FINISHED"
            break
        trial_id = sorted(running)[rng.randrange(len(running))]
        complete(trial_id, running.pop(trial_id))
        completions += 1
    return configs, running
