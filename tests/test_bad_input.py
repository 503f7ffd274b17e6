"""Bad input never half-runs (DESIGN.md, contract 6; issue 13, "Bad input"): every field
of a job wrong in every way, job files that are not jobs, candle files and markets that
are wrong. Each is exit 2 with a message naming the problem, before anything is written
or scheduled. The fuzzing of the same entry points is in tests/test_fuzz_input.py."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import pytest
from job_strategies import register_toys

from cluster.errors import InvalidInput
from cluster.job.parse import parse_job

register_toys()

SYNTHETIC = {"kind": "synthetic", "timeframe": "5m", "start": "2024-01-01", "bars": 300,
             "data_seed": 7}  # fmt: skip
# A valid job with every field set: each leaf below is then made wrong in every way.
BASE: dict[str, Any] = {
    "name": "base",
    "data": {**SYNTHETIC, "gap_policy": "fill", "max_fill_share": 0.01},
    "strategy": {"name": "toy_quadratic", "space": {"x": [0.1, 0.9], "k": [1, 5]}},
    "searcher": {"kind": "bayesian", "n_initial": 4, "xi": 0.01, "n_random": 100},
    "iterations": 12,
    "batch_size": 4,
    "seeds": [1, 2],
    "fee": 0.001,
    "slippage": 0.0005,
    "min_trades": 5,
    "execution": {"max_concurrent_trials": 2, "cpus_per_trial": 1.0, "max_failures": 3,
                  "storage_path": "/tmp/tune"},
}  # fmt: skip
REQUIRED = {
    ("data",), ("iterations",), ("data", "kind"), ("data", "timeframe"), ("data", "start"),
    ("data", "bars"), ("data", "data_seed"),
}  # fmt: skip
WRONG_TYPES: list[Any] = ["text", True, [1], {"a": 1}, dt.date(2024, 1, 1), 2.5, 7]
NUMBERS_OUT_OF_RANGE: list[Any] = [-1, -0.5, 10**30, 1e300, math.nan, math.inf, -math.inf]


def leaves(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key)


def changed(path: tuple[str, ...], value: Any = None, *, delete: bool = False) -> dict:
    table = _copy(BASE)
    parent = table
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return table


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value


def named(path: tuple[str, ...], problems: list[str]) -> bool:
    """Whether a problem names the field: its key, or its table for a table's `kind`."""
    words = {path[-1], path[-2]} if path[-1] == "kind" and len(path) > 1 else {path[-1]}
    return any(word in problem for word in words for problem in problems)


def may_be_valid(path: tuple[str, ...], value: Any) -> bool:
    """A value that can be right for the field, so that it need not be refused."""
    base = _leaf(path)
    if type(value) is type(base) and not isinstance(value, list):
        return True  # another text, int or float: perhaps valid
    if isinstance(base, float) and type(value) is int:
        return True  # an int where a float goes
    if path == ("data", "start") and isinstance(value, dt.date):
        return True  # a TOML date is a time
    if path[:2] == ("strategy", "space") and type(value) in (int, float):
        return True  # a number pins the parameter
    return path == ("seeds",) and value == [1]


def _leaf(path: tuple[str, ...]) -> Any:
    value: Any = BASE
    for key in path:
        value = value[key]
    return value


def test_the_base_job_is_valid():
    assert parse_job(BASE).iterations == 12


CASES = [
    *[(path, value) for path in leaves(BASE) for value in WRONG_TYPES],
    *[
        (path, value)
        for path in leaves(BASE)
        if isinstance(_leaf(path), int | float) and not isinstance(_leaf(path), bool)
        for value in NUMBERS_OUT_OF_RANGE
    ],
]


@pytest.mark.parametrize(("path", "value"), CASES, ids=lambda v: repr(v)[:30])
def test_every_field_of_the_wrong_type_or_out_of_range_is_named(path, value):
    table = changed(path, value)
    if type(value) is type(_leaf(path)) and value == _leaf(path):
        pytest.skip("the same value")
    try:
        parse_job(table)
    except InvalidInput as error:
        assert named(path, error.problems), (path, value, error.problems)
        return
    assert may_be_valid(path, value), f"{'.'.join(path)} = {value!r} was accepted"


@pytest.mark.parametrize("path", sorted(leaves(BASE)), ids=".".join)
def test_a_missing_field_is_named_when_it_is_required(path):
    table = changed(path, delete=True)
    if path == ("strategy", "name"):  # the default strategy has other parameters
        del table["strategy"]["space"]
    try:
        parse_job(table)
    except InvalidInput as error:
        assert named(path, error.problems), error.problems
        return
    assert path not in REQUIRED, f"{'.'.join(path)} is required but was not asked for"


@pytest.mark.parametrize("section", [(), ("data",), ("strategy",), ("strategy", "space"),
                                     ("searcher",), ("execution",)])  # fmt: skip
def test_an_unknown_key_in_any_table_is_named(section):
    with pytest.raises(InvalidInput) as caught:
        parse_job(changed((*section, "bogus_key"), 1))
    assert named(("bogus_key",), caught.value.problems)


@pytest.mark.parametrize(
    ("searcher", "expected"),
    [
        ({"kind": "grid", "points": 10**12}, "more than the limit of 1,000,000"),
        ({"kind": "grid", "points": 10**7}, "the grid has 50,000,000 points"),  # x 5 of k
        ({"kind": "grid", "values": {"x": [i / 10**6 for i in range(300_000)]}, "points": 9},
         "the grid has 1,500,000 points"),
    ],
)  # fmt: skip
def test_a_huge_grid_is_refused_without_being_built(searcher, expected):
    table = {**changed(("searcher",), searcher), "iterations": 10}
    del table["batch_size"]
    with pytest.raises(InvalidInput, match=expected):
        parse_job(table)
