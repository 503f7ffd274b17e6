"""The interleaver, driven the way Tune drives a Searcher, without Ray.

`_tune_like` plays Tune: it fills up to `capacity` running trials by calling
`suggest()` with fresh random trial ids, then completes a random running trial. Each
seed's sequence must equal that seed run alone, whatever the interleaving.

These tests run one candidate per Tune trial (chunks of 1), so a trial is a candidate;
tests/test_search_chunks.py covers chunks of several.
"""

from __future__ import annotations

import math
import pickle
import random

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
    tune_like,
)

from search.core import RecordedTrial
from search.interleave import Chunking, CompletedTrial, Interleaver, TrialKey
from search.registry import make_searcher, rebuild_searcher

SEEDS = [3, 11, 12, 40]
ONE = Chunking(max_chunk=1)


def _one(config) -> tuple[int, int, dict]:
    """(seed, trial_index, params) of a one-candidate trial config."""
    (candidate,) = candidates(config)
    return candidate


def _result(trial_index: int, **fields) -> dict:
    """A trainable's report for one candidate with these fields."""
    return {"trials": [{"trial_index": trial_index, **fields}]}


def _complete_normally(interleaver, trial_id, config):
    interleaver.complete(trial_id, result_dict(config), False)


def _tune_like(
    interleaver, rng, capacity, complete=_complete_normally, stop_after=None, running=None
):
    return tune_like(
        interleaver.suggest,
        lambda trial_id, config: complete(interleaver, trial_id, config),
        rng,
        capacity,
        stop_after,
        running,
    )


def _per_seed(configs) -> dict[int, list]:
    sequences: dict[int, list] = {seed: [] for seed in SEEDS}
    for config in configs.values():
        for seed, trial_index, params in candidates(config):
            sequences[seed].append((trial_index, canonical(params)))
    return {seed: sorted(sequence) for seed, sequence in sequences.items()}


@pytest.fixture(scope="module")
def alone() -> dict[int, list]:
    return {seed: drive(build("bayesian", seed=seed)) for seed in SEEDS}


def _interleaver(on_result=None) -> Interleaver:
    return Interleaver({seed: build("bayesian", seed=seed) for seed in SEEDS}, on_result, ONE)


@pytest.mark.parametrize(("order_seed", "capacity"), [(1, 2), (2, 5), (3, 9)])
def test_each_seed_gets_exactly_its_own_sequence(order_seed, capacity, alone):
    delivered: list[CompletedTrial] = []
    interleaver = _interleaver(delivered.append)
    configs, _ = _tune_like(interleaver, random.Random(order_seed), capacity)
    assert interleaver.finished and not interleaver.failed
    assert _per_seed(configs) == alone
    # The driver hears of every trial once, per seed in trial_index order.
    for seed in SEEDS:
        mine = [c for c in delivered if c.seed == seed]
        assert [c.trial_index for c in mine] == list(range(20))
        assert [(c.trial_index, canonical(c.params)) for c in mine] == alone[seed]
        assert all(c.result["n_trades"] == 3 for c in mine)


def test_trial_configs_are_exactly_seed_and_trials_of_trial_index_and_params():
    interleaver = _interleaver()
    config = interleaver.suggest("abc")
    assert set(config) == {"seed", "trials"}
    (candidate,) = config["trials"]
    assert set(candidate) == {"trial_index", "params"}
    assert type(config["seed"]) is int and type(candidate["trial_index"]) is int
    assert all(type(v) in (int, float) for v in candidate["params"].values())
    assert interleaver.chunk("abc").keys == [TrialKey(config["seed"], candidate["trial_index"])]


def test_suggest_is_cheap_while_nothing_can_be_ready():
    interleaver = _interleaver()
    asks = 0
    for seed in SEEDS:
        searcher = interleaver.searcher(seed)
        original = searcher.ask

        def counting(limit=None, original=original):
            nonlocal asks
            asks += 1
            return original(limit)

        searcher.ask = counting  # type: ignore[method-assign]
    handed_out = []
    while (config := interleaver.suggest(f"t{len(handed_out)}")) is not None:
        handed_out.append(config)  # 4 seeds x 4 initial points, then every seed waits
    assert len(handed_out) == 16
    asks_after_scan = asks
    for i in range(100):  # Tune's polling while trials run
        assert interleaver.suggest(f"poll{i}") is None
    assert asks == asks_after_scan
    interleaver.complete("t0", result_dict(handed_out[0]), False)
    interleaver.suggest("after")
    assert asks > asks_after_scan


# (seed, trial_index) -> how the trial ends instead of with a kernel outcome.
BROKEN = {(3, 1): "error", (11, 2): "no result", (12, 0): "nan score", (40, 3): "no status"}


def _complete_with_failures(interleaver, trial_id, config):
    seed, trial_index, _ = _one(config)
    how = BROKEN.get((seed, trial_index))
    if how == "error":
        interleaver.complete(trial_id, None, True)
    elif how == "no result":
        interleaver.complete(trial_id, None, False)
    elif how == "nan score":
        interleaver.complete(trial_id, _result(trial_index, status="ok", score=math.nan), False)
    elif how == "no status":
        interleaver.complete(trial_id, _result(trial_index, score=1.0), False)
    else:
        _complete_normally(interleaver, trial_id, config)


def test_failures_are_kept_never_told_and_end_the_experiment_when_blocking():
    delivered: list[CompletedTrial] = []
    interleaver = _interleaver(delivered.append)
    _, running = _tune_like(interleaver, random.Random(5), 8, _complete_with_failures)
    assert not running and not interleaver.finished  # FINISHED: blocked, not done
    failed = interleaver.failed
    assert set(failed) == {TrialKey(seed, k) for seed, k in BROKEN}
    assert failed[TrialKey(3, 1)] == "trial errored"
    assert failed[TrialKey(11, 2)] == "trial ended without a result"
    assert "finite score" in failed[TrialKey(12, 0)]
    assert "status must be 'ok' or 'invalid', got None" in failed[TrialKey(40, 3)]
    for key in failed:
        assert key.trial_index not in interleaver.searcher(key.seed).outcomes()
    # Each seed's 4 initial points all ran (batch 0 needs no outcome); the model's first
    # batch never came, as it needs every initial outcome. The driver heard of the
    # trials before the failed one; those after it are held.
    broken_at = {seed: k for seed, k in BROKEN}
    assert sorted((c.seed, c.trial_index) for c in delivered) == [
        (seed, k) for seed in SEEDS for k in range(broken_at[seed])
    ]
    assert [(c.seed, c.trial_index) for c in interleaver.held()] == [
        (seed, k) for seed in SEEDS for k in range(broken_at[seed] + 1, 4)
    ]


def test_a_completion_for_an_unknown_trial_id_is_ignored(caplog):
    interleaver = _interleaver()
    interleaver.complete("never-suggested", _result(0, status="ok", score=1.0), False)
    assert "unknown trial id never-suggested" in caplog.text


def test_state_round_trip_mid_run_continues_identically(alone):
    interleaver = _interleaver()
    rng = random.Random(8)
    configs, running = _tune_like(interleaver, rng, capacity=6, stop_after=37)
    restored = _interleaver()
    restored.set_state(pickle.loads(pickle.dumps(interleaver.get_state())))
    more, _ = _tune_like(restored, rng, capacity=6, running=running)  # Tune restarts them
    assert restored.finished
    assert _per_seed({**configs, **more}) == alone


@pytest.mark.parametrize("kind", ["bayesian", "random"])
def test_rebuilt_searchers_deliver_only_the_new_trials_in_order(kind, alone):
    # Records with holes (random search: 3 and 4 never finished before the stop).
    stopped = {seed: build(kind, seed=seed) for seed in SEEDS}
    for searcher in stopped.values():
        drive(searcher, order_rng=random.Random(1), concurrency=6, stop_after=7)
    delivered: list[CompletedTrial] = []
    rebuilt = {
        seed: rebuild_searcher(
            kind,
            space=TOY_SPACE,
            seed=seed,
            iterations=ITERATIONS,
            invalid_score=INVALID_SCORE,
            recorded={k: RecordedTrial(s.suggestion(k), o) for k, o in s.outcomes().items()},
            **KIND_OPTIONS[kind],
        )
        for seed, s in stopped.items()
    }
    interleaver = Interleaver(rebuilt, delivered.append, ONE)
    configs, _ = _tune_like(interleaver, random.Random(2), capacity=5)
    assert interleaver.finished
    for seed, searcher in stopped.items():
        new = [c.trial_index for c in delivered if c.seed == seed]
        assert new == sorted(set(range(ITERATIONS)) - set(searcher.outcomes()))
    if kind == "bayesian":
        per_seed = _per_seed(configs)
        for seed, searcher in stopped.items():
            told = [(k, canonical(searcher.suggestion(k))) for k in searcher.outcomes()]
            assert sorted(told + per_seed[seed]) == alone[seed]


def test_searchers_must_be_keyed_by_their_own_seed():
    with pytest.raises(ValueError, match="searcher for seed 4 was built with seed 3"):
        Interleaver({4: build("bayesian", seed=3)})


def _random(seed: int, iterations: int):
    return make_searcher(
        "random", space=TOY_SPACE, seed=seed, iterations=iterations, invalid_score=INVALID_SCORE
    )


def _served(
    interleaver: Interleaver, polls: int, ids: str, configs: dict | None = None
) -> list[tuple[int, int] | None]:
    """(seed, trial_index) of `polls` suggest() calls (None: nothing ready); the trial
    ids are `ids` + the call's number, and the configs handed out go into `configs`."""
    served: list[tuple[int, int] | None] = []
    for i in range(polls):
        config = interleaver.suggest(f"{ids}{i}")
        if isinstance(config, dict):
            seed, trial_index, _ = _one(config)
            served.append((seed, trial_index))
            if configs is not None:
                configs[f"{ids}{i}"] = config
        else:
            served.append(None)
    return served


def test_seeds_take_turns_so_that_none_starves_another():
    # Random searchers have every trial ready at once. Each suggest() asks the seeds in
    # turn, starting after the seed served last: 10, 20, 30, 10, then 20 has nothing left
    # (budget 1) and is skipped, 30, 10; then nothing is ready (None: trials still run).
    # Chunks of one candidate, so that a trial is one suggestion.
    searchers = {10: _random(10, 3), 20: _random(20, 1), 30: _random(30, 2)}
    interleaver = Interleaver(searchers, None, ONE)
    expected = [(10, 0), (20, 0), (30, 0), (10, 1), (30, 1), (10, 2), None]
    assert _served(interleaver, 7, "t") == expected


def test_seeds_take_turns_chunk_by_chunk():
    # Chunks of up to 2 candidates: each suggest() still serves the next seed in turn,
    # with as many of its ready candidates as the chunk size allows (the size also
    # shrinks to what is left: 6 candidates, then 4, 3, 1 not yet suggested).
    searchers = {10: _random(10, 3), 20: _random(20, 1), 30: _random(30, 2)}
    interleaver = Interleaver(searchers, None, Chunking(max_chunk=2))
    served = []
    for i in range(5):
        config = interleaver.suggest(f"t{i}")
        served.append(
            (config["seed"], [k for _, k, _ in candidates(config)])
            if isinstance(config, dict)
            else config
        )
    assert served == [(10, [0, 1]), (20, [0]), (30, [0, 1]), (10, [2]), None]


def test_a_waiting_seed_is_skipped_and_gets_its_turn_back_when_ready():
    # Seed 1 (Bayesian: 2 random points, then batches of 2) and seed 2 (random, 5 trials).
    # Turns alternate while both are ready; once seed 1 waits for its outcomes, seed 2 is
    # served alone. When seed 1's batch becomes ready, the turn after seed 2 is seed 1's.
    bayesian = build("bayesian", seed=1, n_initial=2, batch_size=2)
    interleaver = Interleaver({1: bayesian, 2: _random(2, 5)}, None, ONE)
    configs: dict = {}
    assert _served(interleaver, 4, "a", configs) == [(1, 0), (2, 0), (1, 1), (2, 1)]
    assert _served(interleaver, 1, "b") == [(2, 2)]  # seed 1 waits: seed 2 goes on
    for trial_id in ("a0", "a2"):  # seed 1's trials 0 and 1 complete
        interleaver.complete(trial_id, result_dict(configs[trial_id]), False)
    assert _served(interleaver, 5, "c") == [(1, 2), (2, 3), (1, 3), (2, 4), None]


def test_a_repeated_completion_is_delivered_once_and_not_held():
    delivered: list[CompletedTrial] = []
    interleaver = _interleaver(delivered.append)
    config = interleaver.suggest("t0")
    result = result_dict(config)
    interleaver.complete("t0", result, False)
    interleaver.complete("t0", result, False)  # Tune may report a trial twice
    assert [(c.seed, c.trial_index) for c in delivered] == [(config["seed"], 0)]
    assert interleaver.held() == []
    assert not interleaver.failed


def test_a_repeated_completion_with_another_outcome_is_refused():
    interleaver = _interleaver()
    config = interleaver.suggest("t0")
    interleaver.complete("t0", result_dict(config), False)
    with pytest.raises(ValueError, match="already has outcome"):
        interleaver.complete("t0", _result(0, status="ok", score=123.0), False)
    interleaver.complete("t0", None, True)  # an error report after the outcome changes nothing
    assert not interleaver.failed and interleaver.held() == []
