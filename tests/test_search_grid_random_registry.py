"""Grid and random search specifics, and the registry's refusals."""

from __future__ import annotations

import inspect
import itertools
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from search_testkit import INVALID_SCORE, TOY_SPACE, canonical, drive

from search.core import Outcome
from search.grid import (
    DEFAULT_POINTS,
    GRID_LIMIT,
    GRID_STREAM,
    GridSearcher,
    SeededPermutation,
    grid_size,
)
from search.registry import SEARCHER_OPTIONS, SEARCHERS, make_searcher, searcher_defaults
from search.space import MAX_AXIS_POINTS, FloatRange, IntRange, Space, grid_points
from trainable.declaration import PARAMETERS

GRID_SIZE = 4 * 4 * 2 * 4  # TOY_SPACE with points=4: a has 4 values, c has 2


def _grid(seed: int, iterations: int) -> GridSearcher:
    return GridSearcher(
        TOY_SPACE, seed=seed, iterations=iterations, invalid_score=INVALID_SCORE, points=4
    )


def _all_params(searcher) -> list[dict]:
    suggestions = searcher.ask()
    assert len(suggestions) == searcher.iterations  # grid and random: all ready at once
    return [s.params for s in suggestions]


def test_a_full_budget_covers_the_whole_grid_whatever_the_seed():
    axes = grid_points(TOY_SPACE, points=4)
    product = {
        canonical(dict(zip(axes, values, strict=True)))
        for values in itertools.product(*axes.values())
    }
    assert len(product) == GRID_SIZE
    orders = []
    for seed in (0, 1, 2):
        params = [canonical(p) for p in _all_params(_grid(seed, GRID_SIZE))]
        assert set(params) == product and len(params) == GRID_SIZE
        orders.append(params)
    assert orders[0] != orders[1] != orders[2]  # the same points, in a seeded order


def test_a_smaller_budget_gives_each_seed_a_different_subset():
    subsets = [frozenset(canonical(p) for p in _all_params(_grid(s, 12))) for s in range(4)]
    assert all(len(subset) == 12 for subset in subsets)  # no repeats within a seed
    assert len(set(subsets)) == 4


def test_grid_refuses_a_budget_larger_than_the_grid():
    with pytest.raises(ValueError, match=rf"iterations \(129\) exceeds the grid's {GRID_SIZE}"):
        _grid(0, GRID_SIZE + 1)


def test_grid_refuses_a_grid_above_the_limit_naming_each_axis():
    space = Space([(f"p{i}", FloatRange(0.0, 1.0)) for i in range(15)])  # 20**15 > 2**64
    assert GRID_LIMIT < 20**15
    with pytest.raises(ValueError, match=r"32,768,000,000,000,000,000 points \(20 \(p0\) x 20"):
        GridSearcher(space, seed=0, iterations=10, invalid_score=INVALID_SCORE, points=20)


def _strategy_default_space() -> Space:
    """The strategy's declared default ranges, as the job builds its space."""
    return Space(
        [
            (p.name, IntRange(int(p.search[0]), int(p.search[1])))
            if p.kind == "int"
            else (p.name, FloatRange(*p.search))
            for p in PARAMETERS
        ]
    )


def test_the_default_grid_works_on_the_strategys_default_space():
    space = _strategy_default_space()
    assert grid_size(space) == 1_562_500  # 5 points a parameter, 4 for min_level_touches
    axes = grid_points(space, DEFAULT_POINTS)
    subsets = []
    for seed in (0, 1):
        searcher = make_searcher(
            "grid",
            space=space,
            seed=seed,
            iterations=200,
            invalid_score=-100.0,
            **SEARCHER_OPTIONS["grid"],
        )
        params = _all_params(searcher)
        assert all(p[name] in axes[name] for p in params for name in axes)
        subsets.append({canonical(p) for p in params})
        assert len(subsets[-1]) == 200  # no repeats
    assert subsets[0] != subsets[1]


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_the_seeded_permutation_is_a_bijection_for_every_size(seed):
    for size in [*range(1, 130), 1000, 4097]:
        order = SeededPermutation(size, seed, GRID_STREAM)
        assert sorted(order[k] for k in range(size)) == list(range(size)), size


def test_the_seeded_permutation_depends_on_seed_and_stream_and_looks_shuffled():
    size = 10_000
    orders = [
        [SeededPermutation(size, seed, stream)[k] for k in range(200)]
        for seed, stream in ((0, 1), (1, 1), (0, 2))
    ]
    assert orders[0] != orders[1] and orders[0] != orders[2]
    for order in orders:
        # 200 draws from 10,000: about 50 per quarter (binomial sd ~6); no drift with k.
        quarters = Counter(position * 4 // size for position in order)
        assert all(25 <= quarters[q] <= 75 for q in range(4)), quarters
        assert sum(a < b for a, b in itertools.pairwise(order)) in range(70, 131)


def test_random_points_ignore_outcomes():
    def always_ok(params):
        return Outcome.ok(1.0)

    def build():
        return make_searcher(
            "random", space=TOY_SPACE, seed=3, iterations=20, invalid_score=INVALID_SCORE
        )

    assert drive(build(), objective=always_ok) == drive(build())


def test_random_ints_take_every_value_about_equally_often():
    space = Space([("i", IntRange(0, 3)), ("x", FloatRange(-1.0, 1.0))])
    searcher = make_searcher("random", space=space, seed=11, iterations=4000, invalid_score=0.0)
    params = _all_params(searcher)
    counts = Counter(p["i"] for p in params)
    # Binomial(4000, 1/4): mean 1000, sd ~27; +-150 is over 5 sd (and the seed is fixed).
    assert set(counts) == {0, 1, 2, 3}
    assert all(850 <= n <= 1150 for n in counts.values()), counts
    below_zero = sum(p["x"] < 0 for p in params)
    assert 1850 <= below_zero <= 2150


def test_bayesian_initial_points_are_the_random_searchers_points():
    random_search = make_searcher(
        "random", space=TOY_SPACE, seed=5, iterations=6, invalid_score=INVALID_SCORE
    )
    bayesian = make_searcher(
        "bayesian",
        space=TOY_SPACE,
        seed=5,
        iterations=20,
        invalid_score=INVALID_SCORE,
        n_initial=6,
    )
    assert bayesian.ask() == random_search.ask()


def test_registry_refuses_unknown_kinds_and_options_with_a_hint():
    common = {"space": TOY_SPACE, "seed": 0, "iterations": 5, "invalid_score": INVALID_SCORE}
    with pytest.raises(ValueError, match="unknown searcher 'bayesain' \\(did you mean 'bayesian'"):
        make_searcher("bayesain", **common)
    with pytest.raises(ValueError, match=r"unknown option 'batchsize'.*did you mean 'batch_size'"):
        make_searcher("bayesian", batchsize=2, **common)
    with pytest.raises(ValueError, match="'random_state' for the random searcher; its options"):
        make_searcher("random", random_state=1, **common)
    with pytest.raises(ValueError, match=r"'point'.*did you mean 'points'"):
        make_searcher("grid", point=3, **common)


def test_registry_reports_every_bad_option_value_at_once():
    with pytest.raises(ValueError) as error:
        make_searcher(
            "bayesian",
            space=TOY_SPACE,
            seed=0,
            iterations=5,
            invalid_score=INVALID_SCORE,
            n_initial=0,
            liar="median",
            xi=-1.0,
            batch_size=True,
        )
    message = str(error.value)
    for expected in (
        "n_initial must be an int >= 1, got 0",
        "liar must be one of",
        "xi must be a finite number >= 0",
        "batch_size must be an int >= 1",
    ):
        assert expected in message


@pytest.mark.parametrize("kind", list(SEARCHERS))
def test_published_options_are_exactly_the_constructor_defaults(kind):
    signature = inspect.signature(SEARCHERS[kind].__init__)
    own = {
        name: p.default
        for name, p in signature.parameters.items()
        if p.kind is p.KEYWORD_ONLY
        and name not in ("seed", "iterations", "invalid_score", "pool")  # pool: execution-only
    }
    published = dict(SEARCHER_OPTIONS[kind])
    if kind == "grid":  # `values=None` in the signature means "no explicit values"
        assert own.pop("values") is None and published.pop("values") == {}
    assert own == published


def test_searcher_defaults_are_a_private_copy():
    defaults = searcher_defaults("grid")
    defaults["values"]["a"] = [1]
    assert SEARCHER_OPTIONS["grid"]["values"] == {}


@pytest.mark.parametrize("kind", list(SEARCHERS))
def test_every_kind_builds_with_its_published_defaults(kind):
    searcher = make_searcher(
        kind,
        space=TOY_SPACE,
        seed=1,
        iterations=10,
        invalid_score=INVALID_SCORE,
        **SEARCHER_OPTIONS[kind],
    )
    assert searcher.ask()
    assert searcher.options == dict(SEARCHER_OPTIONS[kind])


def test_common_arguments_are_validated():
    for bad, message in (
        ({"seed": -1}, "seed must be in"),
        ({"seed": 2**63}, "seed must be in"),
        ({"seed": 1.0}, "seed must be an int"),
        ({"iterations": 0}, "iterations must be >= 1"),
        ({"invalid_score": float("nan")}, "invalid_score must be a finite number"),
    ):
        args = {"space": TOY_SPACE, "seed": 0, "iterations": 5, "invalid_score": -1.0, **bad}
        with pytest.raises(ValueError, match=message):
            make_searcher("random", **args)


def test_the_core_never_imports_ray_trainable_or_cluster():
    # search/ is strategy-agnostic and Tune-free except for search.tune_searcher.
    code = (
        "import sys, search, search.registry, search.interleave, search.toys; "
        "print(sorted(m for m in ('ray', 'trainable', 'cluster') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.stdout.strip() == "[]"


def test_arguments_exactly_at_their_limits_are_accepted():
    # The valid ranges are inclusive: seeds 0 and 2**63 - 1 (PostgreSQL's bigint),
    # one iteration, Bayesian xi and kappa of 0, a grid of exactly GRID_LIMIT points
    # (2**64 = 16 points on each of 16 parameters) and grids of 2 points per parameter.
    for seed in (0, 2**63 - 1):
        assert make_searcher(
            "random", space=TOY_SPACE, seed=seed, iterations=1, invalid_score=INVALID_SCORE
        ).ask()
    common = {"space": TOY_SPACE, "seed": 0, "iterations": 5, "invalid_score": INVALID_SCORE}
    make_searcher("bayesian", xi=0.0, kappa=0.0, **common)
    with pytest.raises(ValueError, match=r"xi must be a finite number >= 0, got 1000000\.0"):
        make_searcher("bayesian", xi=1e6, **common)
    sixteen = Space([(f"p{i}", FloatRange(0.0, 1.0)) for i in range(16)])
    at_limit = GridSearcher(sixteen, seed=0, iterations=3, invalid_score=0.0, points=16)
    assert at_limit.grid_size == GRID_LIMIT == 16**16
    assert len(at_limit.ask()) == 3
    # An axis of exactly MAX_AXIS_POINTS points, and a permutation read at its last index
    # (one past it is refused).
    axis = grid_points(Space([("x", FloatRange(0.0, 1.0))]), MAX_AXIS_POINTS)["x"]
    assert len(axis) == MAX_AXIS_POINTS and (axis[0], axis[-1]) == (0.0, 1.0)
    order = SeededPermutation(5, 0, GRID_STREAM)
    assert sorted(order[k] for k in range(5)) == [0, 1, 2, 3, 4]
    with pytest.raises(IndexError, match=r"index 5 is outside \[0, 5\)"):
        order[5]
    two = GridSearcher(TOY_SPACE, seed=0, iterations=16, invalid_score=INVALID_SCORE, points=2)
    assert two.grid_size == 2**4 and len(_all_params(two)) == 16
