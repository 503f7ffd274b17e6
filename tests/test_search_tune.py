"""The Tune adapter under real concurrency, on a real local Ray.

Up to four trials run at once (Ray starts with 4 CPUs; a trial takes 1), sleeping for
arbitrary but seed-independent times, so trials overlap and finish out of order. The
records (seed, trial_index, params, score) must equal a run with one trial at a time
(which needs no naps: its completion order is its trial order anyway).
"""

from __future__ import annotations

import random
import sys
import time

import pytest
import search_testkit
from search_testkit import (
    TOY_SPACE,
    candidates,
    canonical,
    drive,
    result_dict,
    toy_outcome,
    tune_like,
)

from search.interleave import Chunking, CompletedTrial, TrialKey
from search.pool import SuggestionPool
from search.registry import make_searcher

RAY_INIT = {"num_cpus": 4}
SEEDS = (5, 6, 7)
OPTIONS = {"n_initial": 4, "batch_size": 4}
ITERATIONS = 8  # per seed: an initial batch and a model batch


def _searchers(pool=None):
    return {
        seed: make_searcher(
            "bayesian",
            space=TOY_SPACE,
            seed=seed,
            iterations=ITERATIONS,
            invalid_score=-100.0,
            pool=pool,
            **OPTIONS,
        )
        for seed in SEEDS
    }


def _sleepy_objective(config, nap_scale=1.0):
    # One candidate per trial here (chunks of 1: these tests are about trials running at
    # once). Sleep times come from their own generator, keyed by the trial but salted:
    # arbitrary with respect to the search seed. Long enough that trials overlap even
    # when the machine is busy and Ray's workers come up seconds apart.
    (candidate,) = config["trials"]
    trial_index = candidate["trial_index"]
    nap = random.Random(f"nap-{config['seed']}-{trial_index}").uniform(0.2, 1.0)
    started = time.time()
    time.sleep(nap * nap_scale)
    outcome = toy_outcome(candidate["params"])
    report = {
        "trial_index": trial_index,
        "status": outcome.status,
        "score": -100.0 if outcome.score is None else outcome.score,
        "started": started,
        "ended": time.time(),
        "config_keys": sorted(config),
    }
    return {"trials": [report]}


def _run(
    tmp_path, name: str, max_concurrent: int, nap_scale: float, pool=None
) -> list[CompletedTrial]:
    import ray.cloudpickle
    from ray import tune

    from search.tune_searcher import TuneSearcher

    # Workers cannot import test modules (tests/ is not on their path): ship the
    # trainable and the toy kernel by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(search_testkit)
    delivered: list[CompletedTrial] = []
    searcher = TuneSearcher(
        _searchers(pool), on_result=delivered.append, chunking=Chunking(max_chunk=1)
    )
    tuner = tune.Tuner(
        tune.with_parameters(_sleepy_objective, nap_scale=nap_scale),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=-1,
            # Without it Tune keeps one trial pending for a custom searcher, so trials
            # start one by one (ray/tune/execution/tune_controller.py).
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0),
    )
    tuner.fit()
    assert searcher.finished and not searcher.failed
    assert len(delivered) == len(SEEDS) * ITERATIONS
    return delivered


def _records(delivered: list[CompletedTrial]):
    return sorted(
        (c.seed, c.trial_index, canonical(c.params), c.outcome.status, repr(c.outcome.score))
        for c in delivered
    )


def _max_overlap(delivered: list[CompletedTrial]) -> int:
    events = sorted(
        [(c.result["started"], 1) for c in delivered] + [(c.result["ended"], -1) for c in delivered]
    )
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.ray
def test_concurrent_trials_give_the_records_of_one_at_a_time(ray_local, tmp_path):
    concurrent = _run(tmp_path, "concurrent", max_concurrent=4, nap_scale=1.0)
    assert all(c.result["config_keys"] == ["seed", "trials"] for c in concurrent)
    assert _max_overlap(concurrent) >= 2, "trials did not really run at once"
    # Trials finished in another order than they started: a searcher fed in completion
    # order would have seen a different history.
    started = [
        (c.seed, c.trial_index) for c in sorted(concurrent, key=lambda c: c.result["started"])
    ]
    ended = [(c.seed, c.trial_index) for c in sorted(concurrent, key=lambda c: c.result["ended"])]
    assert ended != started, "trials completed in the order they started"

    one_at_a_time = _run(tmp_path, "serial", max_concurrent=1, nap_scale=0.0)
    assert _max_overlap(one_at_a_time) == 1
    assert _records(concurrent) == _records(one_at_a_time)
    # The scores are the objective's, recomputed here from the params.
    for c in concurrent:
        assert c.outcome == toy_outcome(c.params)


@pytest.mark.ray
def test_tune_polls_through_batches_computed_in_a_suggestion_pool(ray_local, tmp_path):
    # Tune keeps polling while every trial has ended and the seeds' model batches are
    # being computed in the pool (suggest() returns None, not FINISHED, meanwhile), and
    # the records are those of the same pool driven without Tune.
    with SuggestionPool(2) as pool:
        pooled = _run(tmp_path, "pooled", max_concurrent=4, nap_scale=0.1, pool=pool)
        alone = {seed: drive(searcher) for seed, searcher in _searchers(pool).items()}
    assert sorted((c.seed, c.trial_index, canonical(c.params)) for c in pooled) == sorted(
        (seed, k, params) for seed, sequence in alone.items() for k, params in sequence
    )


def test_tune_searcher_save_and_restore_continue_identically(tmp_path):
    from search.tune_searcher import TuneSearcher

    def play(searcher, rng, **kwargs):
        def complete(trial_id, config):
            searcher.on_trial_complete(trial_id, result_dict(config))

        return tune_like(searcher.suggest, complete, rng, capacity=5, **kwargs)

    def sequences(configs):
        return sorted(
            (seed, k, canonical(params))
            for config in configs.values()
            for seed, k, params in candidates(config)
        )

    reference, _ = play(TuneSearcher(_searchers()), random.Random(3))
    first = TuneSearcher(_searchers())
    before, running = play(first, random.Random(4), stop_after=17)
    first.save(str(tmp_path / "searcher.pkl"))
    restored = TuneSearcher(_searchers())
    restored.restore(str(tmp_path / "searcher.pkl"))
    for trial_id, config in running.items():
        expected = [TrialKey(seed, k) for seed, k, _ in candidates(config)]
        assert restored.chunk(trial_id).keys == expected
    after, _ = play(restored, random.Random(5), running=running)  # Tune reruns those
    assert restored.finished and not restored.failed
    assert sequences({**before, **after}) == sequences(reference)
