"""Bayesian batches computed asynchronously, in a `SuggestionPool` or a stand-in.

In-process stand-ins (same numerics as this process) prove that the asynchronous path
computes exactly what the synchronous one does, never blocks `ask()`, and wakes the
interleaver. Real pools (pinned processes) prove that the pool size, a process killed
mid-batch and a rebuild through the pool never change a sequence. Bits of a pinned pool
differ from this unpinned test process on most CPUs, so real pools are compared with
each other, never with an in-process run.
"""

from __future__ import annotations

import os
import pickle
import platform
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from search_testkit import (
    INVALID_SCORE,
    ITERATIONS,
    KIND_OPTIONS,
    TOY_SPACE,
    build,
    candidates,
    canonical,
    drive,
    result_dict,
    toy_outcome,
    tune_like,
)

import search.pool
from search.bayesian import BatchRequest
from search.core import RebuildMismatch, RecordedTrial
from search.interleave import Chunking, Interleaver
from search.pinned import PINNED_ENV, platform_differences
from search.pool import SuggestionError, SuggestionPool, default_pool_size
from search.pool_worker import KILL_HOOK_ENV
from search.registry import rebuild_searchers

ONE = Chunking(max_chunk=1)  # one candidate per trial, where a test counts trials

SEEDS = [3, 11, 12, 40]  # 20 trials each: 4 random, then model batches of 3


class ThreadedPool:
    """Computes requests on one thread of this process: the async path, local numerics."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(1)

    def submit(self, request: BatchRequest) -> Future[Any]:
        return self.executor.submit(request.compute)


class ManualPool:
    """Holds requests until the test calls `finish()`."""

    def __init__(self) -> None:
        self.waiting: list[tuple[BatchRequest, Future[Any]]] = []

    def submit(self, request: BatchRequest) -> Future[Any]:
        future: Future[Any] = Future()
        self.waiting.append((request, future))
        return future

    def finish(self) -> None:
        waiting, self.waiting = self.waiting, []
        for request, future in waiting:
            future.set_result(request.compute())


def _interleaved(pool, order_seed: int = 1, capacity: int = 5) -> dict[int, list]:
    """Each seed's sequence from an interleaved run, completions in a shuffled order."""
    interleaver = Interleaver({seed: build("bayesian", seed=seed, pool=pool) for seed in SEEDS})

    def complete(trial_id, config):
        interleaver.complete(trial_id, result_dict(config), False)

    configs, _ = tune_like(interleaver.suggest, complete, random.Random(order_seed), capacity)
    assert interleaver.finished and not interleaver.failed
    sequences: dict[int, list] = {seed: [] for seed in SEEDS}
    for config in configs.values():
        for seed, trial_index, params in candidates(config):
            sequences[seed].append((trial_index, canonical(params)))
    return {seed: sorted(sequence) for seed, sequence in sequences.items()}


# -- the asynchronous path, with in-process stand-ins ---------------------------------
def test_async_batches_give_exactly_the_in_process_sequences():
    alone = {seed: drive(build("bayesian", seed=seed)) for seed in SEEDS}
    pool = ThreadedPool()
    try:
        assert _interleaved(pool, order_seed=2) == alone
        assert {seed: drive(build("bayesian", seed=seed, pool=pool)) for seed in SEEDS} == alone
    finally:
        pool.executor.shutdown()


def test_ask_never_waits_for_a_batch_and_its_arrival_wakes_the_interleaver():
    pool = ManualPool()
    interleaver = Interleaver(
        {seed: build("bayesian", seed=seed, pool=pool) for seed in SEEDS}, chunking=ONE
    )
    asks = 0
    for seed in SEEDS:
        searcher = interleaver.searcher(seed)
        original = searcher.ask

        def counting(limit=None, original=original):
            nonlocal asks
            asks += 1
            return original(limit)

        searcher.ask = counting  # type: ignore[method-assign]
    running = {}
    while (config := interleaver.suggest(f"t{len(running)}")) is not None:
        running[f"t{len(running)}"] = config  # 4 seeds x 4 random points
    assert len(running) == 16 and not pool.waiting
    for trial_id, config in running.items():
        interleaver.complete(trial_id, result_dict(config), False)
    # Every seed's first model batch is due: submitted, not waited for.
    assert interleaver.suggest("polled") is None
    assert len(pool.waiting) == len(SEEDS)
    assert all(interleaver.searcher(seed).computing for seed in SEEDS)
    assert all(interleaver.searcher(seed).ask() == [] for seed in SEEDS)
    asks_after_scan = asks
    interleaver.idle_wait_s = 0.0  # no trial runs: suggest() would wait for the batches
    for i in range(100):  # Tune's polling: O(1), and never FINISHED while batches compute
        assert interleaver.suggest(f"poll{i}") is None
    assert asks == asks_after_scan
    pool.finish()  # the batches arrive (the futures' callbacks wake the interleaver)
    config = interleaver.suggest("after")
    assert isinstance(config, dict) and config["trials"][0]["trial_index"] == 4
    assert asks > asks_after_scan
    assert len(pool.waiting) == 0


def test_with_no_trial_running_suggest_waits_for_the_batch_instead_of_returning_none():
    # Tune sleeps a whole second after a None when no trial runs; a batch takes ms.
    pool = ThreadedPool()
    try:
        interleaver = Interleaver({3: build("bayesian", seed=3, pool=pool)}, chunking=ONE)
        running = {}
        while isinstance(config := interleaver.suggest(f"t{len(running)}"), dict):
            running[f"t{len(running)}"] = config
        assert len(running) == 4  # the random start
        for trial_id, config in running.items():
            interleaver.complete(trial_id, result_dict(config), False)
        config = interleaver.suggest("model")  # the first model batch is only now submitted
        assert isinstance(config, dict) and config["trials"][0]["trial_index"] == 4
    finally:
        pool.executor.shutdown()


def test_a_pickled_searcher_refuses_to_compute_without_its_pool():
    # Tune pickles its search algorithm; an unpickled searcher must not silently compute
    # in a process whose numerics are not the pool's.
    copy = pickle.loads(pickle.dumps(build("bayesian", seed=3, pool=ManualPool())))
    for suggestion in copy.ask():
        copy.tell(suggestion.trial_index, toy_outcome(suggestion.params))
    with pytest.raises(RuntimeError, match="unpickled without its suggestion pool"):
        copy.ask()


def test_a_pickled_interleaver_leaves_its_callback_and_pool_behind():
    pool = ManualPool()
    searchers = {seed: build("bayesian", seed=seed, pool=pool) for seed in SEEDS}
    interleaver = Interleaver(searchers, on_result=lambda completed: None, chunking=ONE)
    running = {}
    while (config := interleaver.suggest(f"t{len(running)}")) is not None:
        running[f"t{len(running)}"] = config
    for trial_id, config in running.items():
        interleaver.complete(trial_id, result_dict(config), False)
    copy = pickle.loads(pickle.dumps(interleaver))  # as Tune pickles its searcher
    assert copy.on_result is None and copy.chunk("t0") == interleaver.chunk("t0")
    with pytest.raises(RuntimeError, match="unpickled without its suggestion pool"):
        copy.suggest("next")
    for seed in SEEDS:
        copy.searcher(seed).pool = pool
    assert copy.suggest("next") is None  # submitted again, computing
    pool.finish()
    assert copy.suggest("next")["trials"][0]["trial_index"] == 4


# -- real pools -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool_of_one() -> dict[int, list]:
    with SuggestionPool(1) as pool:
        return _interleaved(pool)


@pytest.mark.slow
@pytest.mark.parametrize("size", [3, 8])
def test_any_pool_size_gives_the_same_sequences(size, pool_of_one):
    with SuggestionPool(size) as pool:
        assert _interleaved(pool, order_seed=size) == pool_of_one
        assert len(pool.pids()) == size


@pytest.mark.slow
def test_a_process_killed_mid_batch_is_replaced_and_the_batch_recomputed(
    monkeypatch, tmp_path, pool_of_one
):
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_HOOK_ENV, f"11:2:{marker}")  # seed 11's second model batch
    with SuggestionPool(2) as pool:
        assert _interleaved(pool) == pool_of_one
        assert marker.exists() and pool.restarts == 1
        assert len(pool.pids()) == 2  # the replacement runs


@pytest.fixture(scope="module")
def shared_pool():
    with SuggestionPool(2) as pool:
        yield pool


def _records(searcher) -> dict[int, RecordedTrial]:
    return {k: RecordedTrial(searcher.suggestion(k), o) for k, o in searcher.outcomes().items()}


@pytest.mark.slow
def test_rebuild_through_the_pool_continues_identically(shared_pool, pool_of_one):
    stopped = {seed: build("bayesian", seed=seed, pool=shared_pool) for seed in SEEDS}
    for seed, searcher in stopped.items():  # each seed stops mid-batch, at another point
        drive(searcher, order_rng=random.Random(seed), concurrency=4, stop_after=8 + seed % 5)
    recorded = {seed: _records(searcher) for seed, searcher in stopped.items()}
    rebuilt = rebuild_searchers(
        "bayesian", space=TOY_SPACE, iterations=ITERATIONS, invalid_score=INVALID_SCORE,
        recorded=recorded, pool=shared_pool, **KIND_OPTIONS["bayesian"],
    )  # fmt: skip
    for seed, searcher in rebuilt.items():
        told = {k: canonical(r.params) for k, r in recorded[seed].items()}
        continued = dict(drive(searcher))
        assert sorted({**continued, **told}.items()) == pool_of_one[seed]
    # A recorded trial of a current batch that differs by one ulp is caught there.
    seed = SEEDS[0]
    current = max(recorded[seed])
    tampered = dict(recorded[seed])
    params = dict(tampered[current].params)
    params["b"] = float(np.nextafter(params["b"], 0.0))
    tampered[current] = RecordedTrial(params, tampered[current].outcome)
    with pytest.raises(RebuildMismatch, match=f"seed {seed} trial {current}"):
        rebuild_searchers(
            "bayesian", space=TOY_SPACE, iterations=ITERATIONS, invalid_score=INVALID_SCORE,
            recorded={seed: tampered}, pool=shared_pool, **KIND_OPTIONS["bayesian"],
        )  # fmt: skip


def test_the_pool_reports_its_pinned_platform(shared_pool):
    described = shared_pool.platform
    assert described["pinned"] == dict(PINNED_ENV)
    assert described["architecture"] == platform.machine()
    assert platform_differences(described, shared_pool.platform) == []
    assert 1 <= default_pool_size() <= search.pool.MAX_DEFAULT_SIZE


def test_a_failing_computation_raises_from_ask_naming_the_batch(shared_pool):
    searcher = build("bayesian", seed=12, pool=shared_pool, n_initial=2)
    searcher.options["liar"] = "median"  # as if corrupted after validation
    drive(searcher, stop_after=2)
    with pytest.raises(SuggestionError, match="seed 12 batch 1: KeyError: 'median'"):
        while not searcher.ask():  # polls, as Tune does, until the failure arrives
            time.sleep(0.01)


def test_a_request_that_cannot_be_sent_fails_alone(shared_pool):
    with pytest.raises(SuggestionError, match="cannot be sent"):
        shared_pool.submit(lambda: None).result()
    searcher = build("bayesian", seed=3, pool=shared_pool)  # the pool computes on
    drive(searcher)
    assert searcher.finished


def test_a_process_that_is_not_pinned_is_refused(monkeypatch):
    monkeypatch.setattr(search.pool, "pinned_environment", lambda: dict(os.environ))
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    with SuggestionPool(1) as pool:
        with pytest.raises(SuggestionError, match=r"numerics are not pinned: .*OPENBLAS_CORETYPE"):
            pool.platform  # noqa: B018
        with pytest.raises(SuggestionError, match="not pinned"):
            pool.submit(object())


def test_pool_settings_are_checked():
    with pytest.raises(ValueError, match="pool size must be an int >= 1"):
        SuggestionPool(0)
    pool = SuggestionPool(1)
    with pytest.raises(RuntimeError, match="not running"):
        pool.submit(object())
    pool.close()
