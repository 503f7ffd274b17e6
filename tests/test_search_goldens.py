"""Which points the searchers pick, pinned; and the Bayesian searcher's rule for repeats.

The golden sequences (tests/data/searcher_goldens.json, made by
tests/searcher_goldens.py) are a CHANGE DETECTOR: they are the searchers' own earlier
output, so they do not say the points are right, only that they have not changed. The
tests that compare searchers with themselves (tests/test_search_contract.py) prove
determinism; these fail when the numbers change at all: a random stream, a tie rule,
a library build. When such a change is deliberate, RECORDS_VERSION is bumped and the
file regenerated with the one command in tests/searcher_goldens.py.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_testkit import INVALID_SCORE, TOY_SPACE, canonical

from cluster.versions import RECORDS_VERSION
from search.bayesian import BayesianSearcher
from search.core import Outcome, RecordedTrial
from search.registry import SEARCHERS
from tests import searcher_goldens
from tests.searcher_goldens import CASES, GOLDEN, differences, load, pinned, sequence


@pytest.fixture(scope="module")
def stored() -> dict:
    return load()


@pytest.fixture(scope="module")
def fresh() -> dict:
    """Every case's sequence, computed in a fresh process with the numeric pin."""
    return pinned()


def test_every_kind_has_golden_sequences_and_the_file_describes_the_cases(stored):
    assert {kind for kind, *_ in CASES.values()} == set(SEARCHERS)
    assert stored["records_version"] <= RECORDS_VERSION
    assert stored["provenance"]["environment"] == searcher_goldens.PIN
    assert stored["objective"] == searcher_goldens.OBJECTIVE
    assert stored["invalid_score"] == searcher_goldens.INVALID_SCORE
    for name, (kind, seed, iterations, options) in CASES.items():
        case = stored["cases"][name]
        assert (case["kind"], case["seed"], case["iterations"]) == (kind, seed, iterations)
        assert case["options"] == options
        assert [k for k, _ in case["suggestions"]] == list(range(iterations))
        if kind == "bayesian":  # most points must come from the model, not the random start
            assert iterations >= 3 * options["n_initial"]


def test_the_searchers_still_pick_the_golden_points(stored, fresh):
    assert fresh["pin_facts"] == searcher_goldens.PIN_FACTS
    assert differences(stored, fresh) == []


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[0] != "bayesian"])
def test_random_and_grid_do_not_depend_on_the_pin(stored, name):
    # In this (unpinned) process: the same points as the pinned one recorded.
    assert sequence(name) == stored["cases"][name]["suggestions"]


def test_regenerating_without_a_records_version_bump_is_refused(capsys):
    before = GOLDEN.read_bytes()
    code = searcher_goldens.main(["--write", "--records-version", str(RECORDS_VERSION)])
    assert code == 2
    assert "bump RECORDS_VERSION" in capsys.readouterr().err
    assert GOLDEN.read_bytes() == before


# ---------------------------------------------------------------- repeats: the first score


N_INITIAL, BATCH = 4, 2
# History of a stopped run: 4 random points (replayed, so they must be the searcher's
# own), then the finished model batch 4-5 (taken as recorded), where trial 5 repeats an
# earlier point. The current batch, trials 6-7, is computed from that history.
OTHER_POINT = {"a": 5, "b": 1.25, "c": 0, "d": -0.5}
SCORES = [0.5, -1.25, 2.0, 0.75, 1.5]  # trials 0-4


def _random_points() -> list[dict]:
    searcher = BayesianSearcher(
        TOY_SPACE, seed=3, iterations=10, invalid_score=INVALID_SCORE, n_initial=N_INITIAL
    )
    return [s.params for s in searcher.ask()]


RANDOM_POINTS = _random_points()


def _next_batch(repeated: int, first: float, later: float) -> list:
    """Trials 6-7 after a history in which trial 5 repeats trial `repeated`."""
    params = [*RANDOM_POINTS, OTHER_POINT, dict(([*RANDOM_POINTS, OTHER_POINT])[repeated])]
    scores = [*SCORES[:repeated], first, *SCORES[repeated + 1 :], later]
    recorded = {k: RecordedTrial(params[k], Outcome.ok(score)) for k, score in enumerate(scores)}
    searcher = BayesianSearcher.rebuild(
        TOY_SPACE,
        seed=3,
        iterations=10,
        invalid_score=INVALID_SCORE,
        recorded=recorded,
        n_initial=N_INITIAL,
        batch_size=BATCH,
        n_random=200,
    )
    return [(s.trial_index, canonical(s.params)) for s in searcher.ask()]


FINITE = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False)


@settings(max_examples=12, deadline=None)
@given(repeated=st.integers(0, 4), first=FINITE, later=FINITE)
def test_a_repeated_point_keeps_its_first_observed_score(repeated, first, later):
    # The model registers each distinct point once, with the score of its first trial
    # (the lowest trial index): whatever the repeat scored, the next batch is the one it
    # gives when the repeat scored the same as the first.
    batch = _next_batch(repeated, first, later)
    assert [k for k, _ in batch] == [6, 7]
    assert batch == _next_batch(repeated, first, first)


def test_the_first_score_of_a_repeated_point_does_matter():
    # The control: the property above is not vacuous, the model does see that score.
    assert not math.isclose(SCORES[1], 3.0)
    assert _next_batch(1, SCORES[1], 0.0) != _next_batch(1, 3.0, 0.0)
