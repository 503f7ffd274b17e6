"""Bad input never half-runs (DESIGN.md, contract 6; issue 13, "Bad input"): every field
of a job wrong in every way, job files that are not jobs, candle files and markets that
are wrong. Each is exit 2 with a message naming the problem, before anything is written
or scheduled. The fuzzing of the same entry points is in tests/test_fuzz_input.py."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES, fresh_database
from exchange_replay import read_candles, replay_exchange
from job_strategies import register_toys

from cluster.cli import main
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
    *[
        (path, value)
        for path in leaves(BASE)
        for value in WRONG_TYPES
        if not (type(value) is type(_leaf(path)) and value == _leaf(path))
    ],
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
        ({"kind": "grid", "points": 10**12}, r"points must be an int in \[2, 1,000,000\]"),
        ({"kind": "grid", "points": 10**7}, r"points must be an int in \[2, 1,000,000\]"),
    ],
)  # fmt: skip
def test_a_huge_grid_is_refused_without_being_built(searcher, expected):
    table = {**changed(("searcher",), searcher), "iterations": 10}
    del table["batch_size"]
    with pytest.raises(InvalidInput, match=expected):
        parse_job(table)


# --- through the command line: exit 2, nothing written, nothing scheduled ---------------


@pytest.fixture(scope="module")
def untouched(pg_session) -> Iterator[str]:
    """One database for the module, which no refused command may touch."""
    with contextmanager(fresh_database)(pg_session) as url:
        yield url


def _write_parquet(path: Path, change: Any) -> Path:
    """The fixture's candles with `change(columns)` applied (a dict of lists)."""
    table = pq.read_table(FIXTURE_CANDLES)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    change(columns)
    pq.write_table(pa.table(columns), path)
    return path


def _set(column: str, row: int, value: Any) -> Any:
    def change(columns: dict) -> None:
        columns[column][row] = value

    return change


def _drop(rows: range) -> Any:
    def change(columns: dict) -> None:
        for name in columns:
            columns[name] = [v for i, v in enumerate(columns[name]) if i not in rows]

    return change


def _five_minutes_late(columns: dict) -> None:
    columns["timestamp"][40] += 60_000


def _repeat_row(columns: dict) -> None:
    columns["timestamp"][41] = columns["timestamp"][40]


PARQUET_JOB = 'iterations = 5\n[data]\nkind = "parquet"\npath = "{path}"\ntimeframe = "5m"\n'
CCXT_JOB = (
    'iterations = 5\n[data]\nkind = "ccxt"\nexchange = "{exchange}"\npair = "{pair}"\n'
    'timeframe = "5m"\nstart = "2021-09-29T09:00Z"\nend = "2021-09-29T10:00Z"\n'
)
SYN_JOB = ('iterations = 5\n[data]\nkind = "synthetic"\ntimeframe = "5m"\nstart = "2024-01-01"\n'
           'bars = 100\ndata_seed = 1\n')  # fmt: skip
JUNK = "".join(chr(32 + (i * 7919) % 95) for i in range(900_000))  # printable, not TOML


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("job", "extra", "expected"),
    [
        ("", [], "the job file is empty"),
        ("iterations = \n", [], "is not valid TOML"),
        (b"\x00\xff\xfe" * 1000, [], "not UTF-8 text"),
        ("x = 1\n" * 400_000, [], "is not a job file (at most 1,000,000)"),
        (JUNK, [], "is not valid TOML"),
        (SYN_JOB, ["--seeds", "1..10000"], "has more than 1024 seeds"),
        (SYN_JOB.replace("[data]", f"seeds = {list(range(10_000))}\n[data]"), [],
         "seeds: 10,000 seeds, at most 1024 per ensemble"),
        (SYN_JOB.replace("[data]", "seeds = [3, 3]\n[data]"), [], "seeds: repeated seeds 3"),
        (SYN_JOB.replace("[data]", "seeds = []\n[data]"), [], "seeds: the list is empty"),
        (SYN_JOB + '[searcher]\nkind = "grid"\npoints = 1000000000000\n', [],
         "points must be an int in [2, 1,000,000]"),
        (SYN_JOB + "[walk_forward]\ntrain = 90\ntest = 20\n", [],
         "walk_forward: a window needs train + test = 110 candles, the data has 100"),
        (SYN_JOB + "[walk_forward]\ntrain = 10\ntest = 20\nstep = 5\n", [],
         "walk_forward.step: 5 is smaller than test (20): test windows would overlap"),
        (SYN_JOB.replace("bars = 100", "bars = 5000") + "[walk_forward]\ntrain = 2\ntest = 3\n",
         [], "walk_forward: 1,666 windows over 5,000 candles, at most 1,000"),
        (CCXT_JOB.format(exchange="binanceuss", pair="BTC/USDT"), [],
         "exchange 'binanceuss' is not a ccxt exchange (did you mean binanceus,"),
        (CCXT_JOB.format(exchange="binanceus", pair="DOGE/USDT"), ["--exchange-url", "{replay}"],
         "pair 'DOGE/USDT' is not listed on binanceus"),
        (PARQUET_JOB.format(path="corrupt.parquet"), [], "unreadable"),
        (PARQUET_JOB.format(path="nan.parquet"), [], "row 7 (2021-09-29T09:35Z): close nan"),
        (PARQUET_JOB.format(path="negative.parquet"), [], "low -1.0 is not > 0"),
        (PARQUET_JOB.format(path="high-low.parquet"), [], "row 3 (2021-09-29T09:15Z): high"),
        (PARQUET_JOB.format(path="unaligned.parquet"), [], "is not on the 300000 ms grid"),
        (PARQUET_JOB.format(path="repeated.parquet"), [], "row 41 ("),
        (PARQUET_JOB.format(path="gaps.parquet").replace('"5m"\n', '"5m"\ngap_policy = "fill"\n'
                                                           "max_fill_share = 0.01\n"), [],
         "> max_fill_share 1.0000%"),
        (PARQUET_JOB.format(path="columns.parquet"), [], "columns ['volume'] are missing"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else None,
)  # fmt: skip
def test_a_refused_run_exits_2_writes_nothing_and_schedules_nothing(
    untouched, tmp_path, capsys, monkeypatch, job, extra, expected
):
    import ray

    monkeypatch.setenv("REPROTUNE_HOME", str(tmp_path / "home"))
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 8 + b"PAR1")
    _write_parquet(tmp_path / "nan.parquet", _set("close", 7, math.nan))
    _write_parquet(tmp_path / "negative.parquet", _set("low", 12, -1.0))
    _write_parquet(tmp_path / "high-low.parquet", _set("high", 3, 1.0))
    _write_parquet(tmp_path / "unaligned.parquet", _five_minutes_late)
    _write_parquet(tmp_path / "repeated.parquet", _repeat_row)
    _write_parquet(tmp_path / "gaps.parquet", _drop(range(1000, 1200)))
    table = pq.read_table(FIXTURE_CANDLES).drop_columns(["volume"])
    pq.write_table(table, tmp_path / "columns.parquet")
    path = tmp_path / "job.toml"
    if isinstance(job, bytes):
        path.write_bytes(job)
    else:
        path.write_text(job)
    with replay_exchange({"BTC/USDT": {"5m": read_candles(FIXTURE_CANDLES)}}) as replay:
        argv = [a.replace("{replay}", replay.url) for a in extra]
        assert main(["run", str(path), *argv, "--database-url", untouched]) == 2
        assert replay.klines_requests() == []
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err and "unexpected" not in err
    assert not ray.is_initialized()  # nothing scheduled
    with psycopg.connect(untouched) as conn:  # nothing written: not even the schema
        assert conn.execute("SELECT to_regclass('ensembles')").fetchone() == (None,)
    home = tmp_path / "home"
    assert not home.exists() or [p for p in home.rglob("*") if p.is_file()] == []
