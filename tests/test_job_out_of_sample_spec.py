"""The job's `holdout` and `walk_forward` fields: validation, identity, the holdout's
loading and the windows, without Ray or a database."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from job_strategies import register_toys

from cluster.candles.times import parse_utc
from cluster.errors import InvalidInput
from cluster.job.data import load_holdout_data, load_job_data
from cluster.job.out_of_sample import (
    MAX_WINDOWS,
    WalkForward,
    Window,
    seed_of_window_seed,
    window_seed,
)
from cluster.job.parse import parse_job, table_of_resolved
from cluster.job.spec import MAX_SEED

register_toys()

SYNTHETIC = {"kind": "synthetic", "timeframe": "5m", "start": "2024-01-01", "bars": 500,
             "data_seed": 7}  # fmt: skip
TOY = {"data": SYNTHETIC, "strategy": "toy_quadratic", "searcher": "random", "iterations": 12}
# The bundled fixture: 5,000 candles of 5m from 2021-09-29T09:00Z to 2021-10-16T17:35Z.
PARQUET = {"kind": "parquet", "path": "data/binance_BTC-USDT_5m_0-4999.parquet",
           "timeframe": "5m"}  # fmt: skip
SPLIT = "2021-10-13T06:20"  # row 4000
BASE = str(Path(__file__).parent)


def problems_of(table: dict) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_job(table, base_dir=BASE)
    return caught.value.problems


def test_jobs_without_them_keep_their_identity():
    spec = parse_job(TOY)
    assert "holdout" not in spec.resolved() and "walk_forward" not in spec.resolved()
    # (tests/test_job_spec.py pins that spec_id to hand-written canonical JSON)


def test_walk_forward_enters_the_identity_with_its_step_written_out():
    spec = parse_job({**TOY, "walk_forward": {"train": 200, "test": 50}})
    assert spec.resolved()["walk_forward"] == {"train": 200, "test": 50, "step": 50}
    explicit = parse_job({**TOY, "walk_forward": {"train": 200, "test": 50, "step": 50}})
    assert explicit.spec_id == spec.spec_id != parse_job(TOY).spec_id
    longer = parse_job({**TOY, "walk_forward": {"train": 200, "test": 50, "step": 60}})
    assert longer.spec_id != spec.spec_id


def test_holdout_enters_the_identity_and_both_parse_back_from_the_records():
    table = {**TOY, "data": {**PARQUET, "end": SPLIT}, "holdout": {"start": SPLIT},
             "walk_forward": {"train": 1000, "test": 500}}  # fmt: skip
    spec = parse_job(table, base_dir=BASE)
    assert spec.resolved()["holdout"] == {"start": parse_utc(SPLIT, "t"), "end": None}
    recorded = json.loads(json.dumps(spec.resolved()))
    again = parse_job(table_of_resolved(recorded), base_dir=BASE)
    assert again.spec_id == spec.spec_id and again.holdout == spec.holdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"holdout": {"start": "2024-01-03"}}, "synthetic source has no other range"),
        ({"data": {**PARQUET, "end": SPLIT}, "holdout": {"start": "2021-10-13T06:15"}},
         "overlaps the search range"),
        ({"data": {**PARQUET, "start": SPLIT}, "holdout": {"end": "2021-10-13T06:25"}},
         "overlaps the search range"),
        ({"data": PARQUET, "holdout": {"start": "2021-10-13T06:21"}}, "not aligned"),
        ({"data": PARQUET, "holdout": {"strat": SPLIT}}, "did you mean 'start'"),
        ({"data": {**PARQUET, "end": SPLIT}, "holdout": {"start": "2021-10-14",
          "end": "2021-10-14"}}, "must be before end"),
        ({"data": {"kind": "ccxt", "exchange": "binanceus", "pair": "BTC/USDT",
                   "timeframe": "5m", "last_candles": 100}, "holdout": {"start": SPLIT}},
         "needs both start and end"),
        ({"walk_forward": {"train": 100}}, "walk_forward.test: missing"),
        ({"walk_forward": {"train": 100, "test": 50, "step": 20}}, "test windows would overlap"),
        ({"walk_forward": {"train": 1, "test": 50}}, "walk_forward.train: 1 is outside"),
        ({"walk_forward": {"train": 100, "test": 2}}, "walk_forward.test: 2 is outside"),
        ({"walk_forward": {"train": 100, "test": 5.5}}, "expected a number of candles"),
        ({"walk_forward": {"train": 100, "test": 5, "stride": 5}}, "did you mean 'step'"),
        ({"walk_forward": 3}, "expected a table"),
    ],
)  # fmt: skip
def test_bad_out_of_sample_settings_are_refused(change, expected):
    problems = problems_of({**TOY, **change})
    assert any(expected in p for p in problems), problems


def test_a_holdout_overlapping_the_loaded_range_is_refused():
    """The job file's ranges are checked as written (an open end reaching as far as it
    may); the loaded ranges again, since "the last N candles" are only known when the
    job runs. Here the search range as loaded is the whole file."""
    table = {**TOY, "data": {**PARQUET, "end": SPLIT}, "holdout": {"start": SPLIT}}
    spec = parse_job(table, base_dir=BASE)
    _, whole_file = load_job_data(parse_job({**TOY, "data": PARQUET}, base_dir=BASE))
    with pytest.raises(InvalidInput, match="overlaps the search range"):
        load_holdout_data(spec, whole_file)


def test_the_holdout_loads_with_its_range_fixed():
    table = {**TOY, "data": {**PARQUET, "end": SPLIT}, "holdout": {"start": SPLIT}}
    spec, dataset = load_job_data(parse_job(table, base_dir=BASE))
    spec, holdout = load_holdout_data(spec, dataset)
    assert dataset.manifest.rows == 4000 and holdout.manifest.rows == 1000
    assert spec.holdout.start == dataset.manifest.end == holdout.manifest.start
    assert spec.holdout.end == parse_utc("2021-10-16T17:40", "t")  # after the last candle
    assert holdout.manifest.fingerprint != dataset.manifest.fingerprint


def test_windows_tile_the_rows_and_never_overlap_their_tests():
    plan = WalkForward(train=100, test=30, step=40)
    windows = plan.windows(300)
    assert windows[0] == Window(0, 0, 100, 100, 130)
    assert len(windows) == plan.count(300) == (300 - 130) // 40 + 1 == 5
    for w in windows:
        assert w.train_stop == w.test_start and w.test_stop <= 300
    for a, b in itertools.pairwise(windows):
        assert a.test_stop <= b.test_start  # step >= test
    with pytest.raises(InvalidInput, match="needs train \\+ test"):
        plan.check_rows(129)
    with pytest.raises(InvalidInput, match=f"at most {MAX_WINDOWS:,}"):
        WalkForward(2, 3, 3).check_rows(3 * (MAX_WINDOWS + 1) + 2)


def test_window_seeds_never_collide():
    keys = {window_seed(seed, w) for seed in (0, 1, 42, MAX_SEED) for w in range(MAX_WINDOWS)}
    assert len(keys) == 4 * MAX_WINDOWS
    assert min(keys) > MAX_SEED and max(keys) < 2**63
    assert seed_of_window_seed(window_seed(MAX_SEED, 7)) == (MAX_SEED, 7)
