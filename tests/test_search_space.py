"""Space types, the unit-cube mapping and grid points (hand-computed expectations)."""

from __future__ import annotations

import numpy as np
import pytest

from search.space import FloatRange, IntRange, Space, grid_points


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FloatRange(2.0, 1.0), "lower 2.0 > upper 1.0"),
        (lambda: FloatRange(0.0, float("inf")), "upper must be a finite number"),
        (lambda: FloatRange(float("nan"), 1.0), "lower must be a finite number"),
        (lambda: FloatRange("0", 1.0), "lower must be a finite number"),
        (lambda: IntRange(5, 4), "lower 5 > upper 4"),
        (lambda: IntRange(1.0, 4), "lower must be an int, got float 1.0"),
        (lambda: IntRange(1, 4.5), "upper must be an int, got float 4.5"),
        (lambda: IntRange(True, 4), "lower must be an int, got bool"),
    ],
)
def test_ranges_refuse_bad_bounds_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_ranges_are_frozen_and_normalize_number_types():
    r = IntRange(np.int64(2), 5)
    assert type(r.lower) is int
    f = FloatRange(1, 2)
    assert type(f.lower) is float
    with pytest.raises(AttributeError):
        r.lower = 3  # type: ignore[misc]


def test_space_refuses_bad_entries():
    with pytest.raises(ValueError, match="at least one"):
        Space({})
    with pytest.raises(ValueError, match="duplicate parameter names: x"):
        Space([("x", IntRange(0, 1)), ("x", IntRange(0, 2))])
    with pytest.raises(ValueError, match="parameter y: expected FloatRange or IntRange"):
        Space({"y": (0, 1)})  # type: ignore[dict-item]


def test_space_order_is_part_of_its_identity():
    a = Space([("x", IntRange(0, 1)), ("y", FloatRange(0, 1))])
    b = Space([("y", FloatRange(0, 1)), ("x", IntRange(0, 1))])
    assert a != b
    assert a == Space.from_dict(a.to_dict())
    assert list(Space.from_dict(b.to_dict())) == ["y", "x"]


def test_int_unit_mapping_gives_every_value_an_equal_cell():
    r = IntRange(-1, 2)  # 4 values, cells of width 1/4
    assert [r.from_unit(u) for u in (0.0, 0.2499, 0.25, 0.5, 0.7499, 0.75, 0.999999)] == [
        -1,
        -1,
        0,
        1,
        1,
        2,
        2,
    ]
    assert r.from_unit(1.0) == 2  # the closed end still maps inside
    assert [r.to_unit(v) for v in (-1, 0, 1, 2)] == [0.125, 0.375, 0.625, 0.875]
    for v in (-1, 0, 1, 2):
        assert r.from_unit(r.to_unit(v)) == v


def test_float_unit_mapping_is_linear_and_clipped():
    r = FloatRange(10.0, 14.0)
    assert r.from_unit(0.0) == 10.0 and r.from_unit(1.0) == 14.0
    assert r.from_unit(0.25) == 11.0
    assert r.to_unit(13.0) == 0.75
    pinned = FloatRange(3.0, 3.0)
    assert pinned.from_unit(0.9) == 3.0 and pinned.to_unit(3.0) == 0.5


def test_problems_name_each_parameter_at_fault():
    space = Space([("n", IntRange(1, 5)), ("x", FloatRange(0.0, 1.0))])
    assert space.problems({"n": 3, "x": 0.5}) == []
    problems = space.problems({"n": 3.0, "x": 2.0, "z": 1})
    assert "unknown parameter 'z'" in problems
    assert "n must be an int in [1, 5], got 3.0" in problems
    assert "x must be a number in [0.0, 1.0], got 2.0" in problems
    assert space.problems({"n": 1}) == ["missing parameter 'x'"]


def test_grid_points_evenly_spaced_with_ends_and_ints_deduplicated():
    space = Space([("f", FloatRange(0.0, 1.0)), ("i", IntRange(1, 3)), ("w", IntRange(0, 10))])
    grid = grid_points(space, points=5)
    assert grid["f"] == (0.0, 0.25, 0.5, 0.75, 1.0)
    # 1, 1.5, 2, 2.5, 3 rounded half up: 1, 2, 2, 3, 3 -> deduplicated
    assert grid["i"] == (1, 2, 3)
    # 0, 2.5, 5, 7.5, 10 -> 0, 3, 5, 8, 10
    assert grid["w"] == (0, 3, 5, 8, 10)
    assert all(type(v) is int for v in grid["w"])


def test_grid_explicit_values_are_checked_sorted_and_deduplicated():
    space = Space([("f", FloatRange(0.0, 1.0)), ("i", IntRange(1, 3))])
    grid = grid_points(space, points=2, values={"i": [3, 1, 3], "f": [1, 0.5]})
    assert grid == {"f": (0.5, 1.0), "i": (1, 3)}
    assert type(grid["f"][1]) is float
    with pytest.raises(ValueError, match=r"grid values for i must lie in \[1, 3\] and be ints"):
        grid_points(space, points=2, values={"i": [2.0]})
    with pytest.raises(ValueError, match="unknown parameters: g"):
        grid_points(space, points=2, values={"g": [1]})
    with pytest.raises(ValueError, match="non-empty list"):
        grid_points(space, points=2, values={"i": []})
    with pytest.raises(ValueError, match=r"points must be an int in \[2, 1,000,000\]"):
        grid_points(space, points=1)


def test_a_pinned_range_has_a_single_grid_point():
    space = Space([("f", FloatRange(2.0, 2.0)), ("i", IntRange(4, 4))])
    assert grid_points(space, points=7) == {"f": (2.0,), "i": (4,)}
