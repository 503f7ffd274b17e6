"""The contract every searcher keeps (DESIGN.md, contract 2), run over all three kinds.

The reference for each kind is its own sequential run (trial order, one at a time):
every other way of running it (shuffled completions, another process, a rebuild from
records, save/restore) must give that same sequence, bit for bit.
"""

from __future__ import annotations

import json
import multiprocessing
import random

import pytest
from search_testkit import (
    INVALID_SCORE,
    ITERATIONS,
    KIND_OPTIONS,
    TOY_SPACE,
    assert_params_in_space,
    build,
    canonical,
    drive,
    toy_outcome,
)

from search.core import Outcome, RebuildMismatch, RecordedTrial, same_params
from search.registry import SEARCHERS, rebuild_searcher, restore_searcher

KINDS = list(SEARCHERS)


def _sequences_in_fresh_process(kinds: list[str]) -> dict[str, list]:
    return {kind: drive(build(kind)) for kind in kinds}


@pytest.fixture(scope="module")
def reference() -> dict[str, list]:
    """Each kind's sequential sequence for seed 7."""
    return {kind: drive(build(kind)) for kind in KINDS}


@pytest.fixture(scope="module")
def spawned_reference() -> dict[str, list]:
    """The same, computed in a freshly spawned interpreter (one spawn for all kinds)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_sequences_in_fresh_process, (KINDS,))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_the_same_sequence_and_another_seed_another(kind, reference):
    assert drive(build(kind)) == reference[kind]
    assert len(reference[kind]) == ITERATIONS
    other = drive(build(kind, seed=8))
    assert other != reference[kind]
    # Not just a different order: the points themselves differ.
    assert {p for _, p in other} != {p for _, p in reference[kind]}


@pytest.mark.parametrize("kind", KINDS)
def test_a_spawned_process_gives_the_same_sequence(kind, reference, spawned_reference):
    assert spawned_reference[kind] == reference[kind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("order_seed", [1, 2, 3])
def test_shuffled_completion_orders_give_the_same_sequence(kind, order_seed, reference):
    rng = random.Random(order_seed)
    concurrency = rng.choice([2, 3, 5, 8])
    assert drive(build(kind), order_rng=rng, concurrency=concurrency) == reference[kind]


def _interrupted_run(kind: str, completions: int, order_seed: int):
    """A run stopped after `completions` outcomes, completing in a shuffled order."""
    searcher = build(kind)
    drive(searcher, order_rng=random.Random(order_seed), concurrency=5, stop_after=completions)
    return searcher


# Stops before, inside and at the end of batches (Bayesian batches: [0..3], [4..6], ...).
CUTS = [0, 2, 4, 5, 9, 13, 19]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("completions", CUTS)
def test_rebuild_from_records_continues_identically(kind, completions, reference):
    stopped = _interrupted_run(kind, completions, order_seed=completions)
    recorded = {
        k: RecordedTrial(stopped.suggestion(k), outcome)
        for k, outcome in stopped.outcomes().items()
    }
    rebuilt = rebuild_searcher(
        kind,
        space=TOY_SPACE,
        seed=7,
        iterations=ITERATIONS,
        invalid_score=INVALID_SCORE,
        recorded=recorded,
        **KIND_OPTIONS[kind],
    )
    first = rebuilt.ask()
    # Every trial that was running when the run stopped comes back, with its params.
    reissued = {s.trial_index: canonical(s.params) for s in first}
    for k in stopped.pending:
        assert reissued[k] == canonical(stopped.suggestion(k))
    rest = drive(rebuilt, already_running={s.trial_index: s.params for s in first})
    recorded_part = [(k, canonical(r.params)) for k, r in recorded.items()]
    assert sorted(recorded_part + rest) == reference[kind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("completions", CUTS)
def test_save_and_restore_continue_identically(kind, completions, reference):
    stopped = _interrupted_run(kind, completions, order_seed=100 + completions)
    state = json.loads(json.dumps(stopped.save()))  # the state is plain JSON data
    restored = restore_searcher(state)
    assert restored.pending == stopped.pending
    assert restored.outcomes() == stopped.outcomes()
    running = {k: stopped.suggestion(k) for k in stopped.pending}
    rest = drive(restored, order_rng=random.Random(completions), already_running=running)
    told = [(k, canonical(stopped.suggestion(k))) for k in stopped.outcomes()]
    assert sorted(told + rest) == reference[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_an_invalid_outcome_counts_as_invalid_score(kind, reference):
    # The toy kernel rejects a == -3; telling those trials ok(invalid_score) instead
    # must not change a thing. The run does contain such trials (else this proves nothing).
    assert any(dict((n, r) for n, _, r in p)["a"] == "-3" for _, p in reference[kind])

    def penalty_as_ok(params):
        outcome = toy_outcome(params)
        return Outcome.ok(INVALID_SCORE) if outcome.status == "invalid" else outcome

    assert drive(build(kind), objective=penalty_as_ok) == reference[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_finished_exactly_at_the_budget(kind):
    searcher = build(kind)
    suggestions = []
    while not searcher.finished:
        ready = searcher.ask()
        assert ready or searcher.pending == [], "nothing ready while nothing runs"
        suggestions += ready
        for s in ready:
            assert not searcher.finished
            searcher.tell(s.trial_index, toy_outcome(s.params))
    assert [s.trial_index for s in suggestions] == list(range(ITERATIONS))
    assert searcher.ask() == []
    with pytest.raises(ValueError, match="never suggested"):
        searcher.tell(ITERATIONS, Outcome.ok(0.0))


@pytest.mark.parametrize("kind", KINDS)
def test_int_params_are_python_ints_and_floats_python_floats_within_bounds(kind):
    searcher = build(kind)
    drive(searcher, order_rng=random.Random(5))
    for k in range(ITERATIONS):
        assert_params_in_space(searcher.suggestion(k))


@pytest.mark.parametrize("kind", KINDS)
def test_tell_rejects_a_conflicting_second_outcome(kind):
    searcher = build(kind)
    first = searcher.ask(limit=1)[0]
    searcher.tell(0, Outcome.ok(1.0))
    searcher.tell(0, Outcome.ok(1.0))  # the same report twice is harmless
    with pytest.raises(ValueError, match="already has outcome"):
        searcher.tell(first.trial_index, Outcome.ok(2.0))


def test_outcomes_are_validated():
    for score in (float("nan"), float("inf"), -float("inf"), None, "1.0", True):
        with pytest.raises(ValueError):
            Outcome.ok(score)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="carries no score"):
        Outcome("invalid", -100.0)
    with pytest.raises(ValueError, match="status"):
        Outcome("error")  # type: ignore[arg-type]
    assert Outcome.invalid().value(-100.0) == -100.0
    assert Outcome.ok(2).score == 2.0 and type(Outcome.ok(2).score) is float


@pytest.mark.parametrize("kind", KINDS)
def test_asking_for_nothing_hands_out_nothing(kind):
    searcher = build(kind)
    assert searcher.ask(limit=0) == []
    assert [s.trial_index for s in searcher.ask(limit=1)] == [0]


def test_a_trial_computed_but_not_handed_out_cannot_be_told_or_read():
    # A Bayesian batch is computed whole (trials 4-6 here), but only what ask() returned
    # was suggested: trial 5 is computed, not handed out.
    searcher = build("bayesian")
    for s in searcher.ask():  # the 4 random points
        searcher.tell(s.trial_index, toy_outcome(s.params))
    assert [s.trial_index for s in searcher.ask(limit=1)] == [4]
    with pytest.raises(ValueError, match="trial 5 was never suggested"):
        searcher.tell(5, Outcome.ok(0.0))
    with pytest.raises(KeyError, match="trial 5 was not handed out yet"):
        searcher.suggestion(5)
    assert searcher.suggestion(4)


def test_params_are_the_same_only_with_the_same_types_and_bits():
    # What a rebuild compares recorded params with (RebuildMismatch otherwise): names in
    # any order, but 3 and 3.0 differ, and so do 0.0 and -0.0.
    assert same_params({"a": 3, "b": 0.5}, {"b": 0.5, "a": 3})
    assert not same_params({"a": 3}, {"a": 3.0})
    assert not same_params({"b": 0.0}, {"b": -0.0})
    assert not same_params({"a": 3}, {"a": 3, "b": 0.5})


def test_a_rebuild_refuses_an_int_recorded_for_a_float_the_searcher_suggests():
    # Grid points of b in [0.5, 2.5] with 5 points are 0.5, 1.0, 1.5, 2.0, 2.5: a record
    # holding the int 1 where the grid suggests the float 1.0 is not that trial.
    searcher = build("grid", points=5)
    suggestions = searcher.ask()
    k, params = next((s.trial_index, s.params) for s in suggestions if s.params["b"] == 1.0)
    recorded = {k: RecordedTrial({**params, "b": 1}, Outcome.ok(0.0))}
    with pytest.raises(RebuildMismatch, match=f"trial {k}: recorded params"):
        rebuild_searcher(
            "grid",
            space=TOY_SPACE,
            seed=7,
            iterations=ITERATIONS,
            invalid_score=INVALID_SCORE,
            recorded=recorded,
            points=5,
        )


def test_a_rebuild_hands_its_unfinished_trials_out_again_within_the_limit():
    # Trials 0 and 5 of a random run were recorded; 1-4 were running: after a rebuild
    # they are handed out again first, never more at once than asked for.
    searcher = build("random")
    suggested = {s.trial_index: s.params for s in searcher.ask()}
    recorded = {k: RecordedTrial(suggested[k], toy_outcome(suggested[k])) for k in (0, 5)}
    rebuilt = rebuild_searcher(
        "random", space=TOY_SPACE, seed=7, iterations=ITERATIONS,
        invalid_score=INVALID_SCORE, recorded=recorded,
    )  # fmt: skip
    assert [s.trial_index for s in rebuilt.ask(limit=2)] == [1, 2]
    assert [s.trial_index for s in rebuilt.ask(limit=1)] == [3]
    assert [s.trial_index for s in rebuilt.ask(limit=3)] == [4, 6, 7]
