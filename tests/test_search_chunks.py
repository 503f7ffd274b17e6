"""Chunks: many candidates per Tune trial, with exactly the sequences and deliveries of
one candidate per trial (search.interleave), driven the way Tune drives a searcher.
"""

from __future__ import annotations

import random

import pytest
from search_testkit import (
    KIND_OPTIONS,
    TOY_SPACE,
    build,
    candidate_result,
    candidates,
    canonical,
    drive,
    result_dict,
    tune_like,
)

from search.interleave import Chunking, CompletedTrial, Interleaver, TrialChunk, TrialKey
from search.registry import make_searcher

SEEDS = [3, 11, 12, 40]


def _run(kind: str, chunking: Chunking, order_seed: int = 1, capacity: int = 3):
    delivered: list[CompletedTrial] = []
    interleaver = Interleaver(
        {seed: build(kind, seed=seed) for seed in SEEDS}, delivered.append, chunking
    )
    configs, _ = tune_like(
        interleaver.suggest,
        lambda trial_id, config: interleaver.complete(trial_id, result_dict(config), False),
        random.Random(order_seed),
        capacity,
    )
    assert interleaver.finished and not interleaver.failed
    return interleaver, configs, delivered


@pytest.mark.parametrize("kind", sorted(KIND_OPTIONS))
@pytest.mark.parametrize(
    "chunking",
    [
        Chunking(max_chunk=3),
        Chunking(max_chunk=7, slots=2),
        Chunking(slots=3),
        Chunking(max_chunk=50),
    ],
    ids=["3", "7-over-2-slots", "adaptive", "50"],
)
def test_chunks_give_each_seed_its_own_sequence_and_deliveries(kind, chunking):
    alone = {seed: drive(build(kind, seed=seed)) for seed in SEEDS}
    interleaver, configs, delivered = _run(kind, chunking)
    sequences: dict[int, list] = {seed: [] for seed in SEEDS}
    for config in configs.values():
        chunk = candidates(config)
        indices = [k for _, k, _ in chunk]
        # One seed per chunk, consecutive trial indices, within the size limit.
        assert {seed for seed, _, _ in chunk} == {config["seed"]}
        assert indices == list(range(indices[0], indices[0] + len(indices)))
        if chunking.max_chunk is not None:
            assert len(indices) <= chunking.max_chunk
        for seed, k, params in chunk:
            sequences[seed].append((k, canonical(params)))
    assert {seed: sorted(sequence) for seed, sequence in sequences.items()} == alone
    for seed in SEEDS:
        mine = [(c.trial_index, canonical(c.params)) for c in delivered if c.seed == seed]
        assert mine == alone[seed]  # once each, in trial_index order
    # Chunks did hold several candidates (fewer Tune trials than candidates).
    assert interleaver.chunks_handed_out < sum(len(s) for s in alone.values())


def test_the_size_spreads_work_over_the_slots_and_aims_at_the_target_duration():
    chunking = Chunking(slots=4, target_s=0.5, initial_chunk=8, limit=1000)
    assert chunking.size(unsuggested=1000, mean_duration_s=None) == 8  # nothing measured
    assert chunking.size(unsuggested=1000, mean_duration_s=0.002) == 250  # 0.5 s of work
    assert chunking.size(unsuggested=1000, mean_duration_s=0.0001) == 250  # 1000 / 4 slots
    assert chunking.size(unsuggested=10_000, mean_duration_s=1e-7) == 1000  # the limit
    assert chunking.size(unsuggested=1000, mean_duration_s=5.0) == 1  # slow: one at a time
    assert chunking.size(unsuggested=3, mean_duration_s=0.001) == 1  # 3 over 4 slots
    assert Chunking(max_chunk=5, slots=1).size(unsuggested=100, mean_duration_s=1e-6) == 5
    assert Chunking(max_chunk=1).size(unsuggested=100, mean_duration_s=None) == 1
    for bad in ({"slots": 0}, {"max_chunk": 0}, {"target_s": 0.0}, {"initial_chunk": 0}):
        with pytest.raises(ValueError):
            Chunking(**bad)


def test_measured_durations_grow_the_chunks():
    searcher = make_searcher("random", space=TOY_SPACE, seed=3, iterations=400, invalid_score=-1.0)
    interleaver = Interleaver({3: searcher}, chunking=Chunking(slots=1, initial_chunk=2))
    first = interleaver.suggest("a")
    assert len(first["trials"]) == 2
    report = {"trials": [{**candidate_result(c["trial_index"], c["params"]), "duration_s": 0.01}
                         for c in first["trials"]]}  # fmt: skip
    interleaver.complete("a", report, False)
    # 0.5 s of 10 ms candidates: 50.
    assert len(interleaver.suggest("b")["trials"]) == 50


def test_a_failed_chunk_fails_all_its_candidates_and_a_missing_result_only_its_own():
    delivered: list[CompletedTrial] = []
    interleaver = Interleaver({3: build("random", seed=3), 11: build("random", seed=11)},
                              delivered.append, Chunking(max_chunk=4))  # fmt: skip
    errored, partial = interleaver.suggest("errored"), interleaver.suggest("partial")
    assert [len(c["trials"]) for c in (errored, partial)] == [4, 4]
    interleaver.complete("errored", None, True)
    report = result_dict(partial)
    del report["trials"][2]  # the third candidate's result is missing
    interleaver.complete("partial", report, False)
    failed = interleaver.failed
    assert {key for key in failed if key.seed == errored["seed"]} == {
        TrialKey(errored["seed"], k) for k in range(4)
    }
    assert all(failed[TrialKey(errored["seed"], k)] == "trial errored" for k in range(4))
    assert failed == {
        **{TrialKey(errored["seed"], k): "trial errored" for k in range(4)},
        TrialKey(partial["seed"], 2): "the trial's result has no result for this candidate",
    }
    # The driver hears of the partial chunk's candidates before the missing one only.
    assert [(c.seed, c.trial_index) for c in delivered] == [(partial["seed"], 0),
                                                              (partial["seed"], 1)]  # fmt: skip


def test_a_chunk_names_its_seed_and_trial_range():
    assert TrialChunk(42, (8, 9, 10, 11)).name == "seed42_trials8-11"
    assert TrialChunk(7, (3,)).name == "seed7_trials3"
