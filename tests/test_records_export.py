"""The canonical export: its byte layout (written out by hand here), order independence
through a real database, and the CSV and Parquet files."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import random
import struct

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from records_factory import FAST_RETRY, SPEC_ID, new_ensemble, ok_metrics, ok_trial

from cluster.records.exact import canonical_params, parse_canonical_params, same_value
from cluster.records.export import COLUMNS, build_export, write_csv, write_parquet
from cluster.records.recorder import Recorder
from cluster.records.types import TrialRecord

HEADER = (
    "spec_id\tseed\ttrial_index\tparams\tstatus\tscore\tsharpe\tsortino\tcalmar\t"
    "total_return\tmax_drawdown\tn_trades\twin_rate\tprofit_factor\texposure\t"
    "mean_bars_held\tmessage\n"
)


def _two_trials() -> list[TrialRecord]:
    ok = TrialRecord.ok(SPEC_ID, 2, 0, {"b": 0.5, "a": 3}, ok_metrics(1.25))
    invalid = TrialRecord.invalid(SPEC_ID, 1, 5, {"a": 1, "b": -0.0}, "ValueError: x\ty\\z")
    return [ok, invalid]


def test_the_layout_is_the_documented_one():
    # By hand from the module docstring: rows by (seed, trial_index), so seed 1 first.
    # -100.0 = -1.5625 * 2^6 = -0x1.9p+6; 1.25 = 0x1.4p+0; 2.5 = 0x1.4p+1;
    # 3.75 = 0x1.ep+1; 0.125 = 0x1p-3; 0.0625 = 0x1p-4; 0.5 = 0x1p-1; 1.5 = 0x1.8p+0;
    # 0.25 = 0x1p-2; 7.0 = 0x1.cp+2. Params: keys sorted, floats as hex strings.
    expected = (
        "reprotune-export 1\n"
        + HEADER
        + f'{SPEC_ID}\t1\t5\t{{"a":1,"b":"-0x0.0p+0"}}\tinvalid\t-0x1.9000000000000p+6\t'
        + "\\N\t" * 10
        + "ValueError: x\\ty\\\\z\n"
        + f'{SPEC_ID}\t2\t0\t{{"a":3,"b":"0x1.0000000000000p-1"}}\tok\t'
        + "0x1.4000000000000p+0\t0x1.4000000000000p+0\t0x1.4000000000000p+1\t"
        + "0x1.e000000000000p+1\t0x1.0000000000000p-3\t0x1.0000000000000p-4\t12\t"
        + "0x1.0000000000000p-1\t0x1.8000000000000p+0\t0x1.0000000000000p-2\t"
        + "0x1.c000000000000p+2\t\\N\n"
    ).encode()
    export = build_export(_two_trials())
    assert export.layout_bytes() == expected
    assert export.digest == hashlib.sha256(expected).hexdigest()


def test_one_bit_anywhere_changes_the_digest():
    base = build_export(_two_trials()).digest
    ok, invalid = _two_trials()
    nudged = TrialRecord.ok(SPEC_ID, 2, 0, ok.params, ok_metrics(math.nextafter(1.25, 2)))
    assert build_export([nudged, invalid]).digest != base
    zero = TrialRecord.invalid(SPEC_ID, 1, 5, {"a": 1, "b": 0.0}, invalid.message)
    assert build_export([ok, zero]).digest != base
    # Execution facts are not part of it.
    elsewhere = TrialRecord.ok(SPEC_ID, 2, 0, ok.params, ok_metrics(1.25), node="n9", attempts=3)
    assert build_export([elsewhere, invalid]).digest == base


def test_two_trials_with_one_key_are_refused():
    with pytest.raises(ValueError, match="two trials with seed 1, trial_index 0"):
        build_export([ok_trial(1, 0), ok_trial(1, 0)])


@pytest.mark.postgres
def test_the_same_rows_written_in_different_orders_give_the_same_digest(pg_url):
    trials = [ok_trial(seed, i, score=seed + i / 8) for seed in (3, 1, 2) for i in range(12)]
    trials.append(TrialRecord.invalid(SPEC_ID, 2, 12, {"x": 0.1}, "ValueError: no"))
    digests = []
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        for order_seed in (1, 2, 3):  # three ensembles of one spec, each written its own way
            ensemble_id = new_ensemble(recorder, seeds=(1, 2, 3), budget=20)
            shuffled = trials[:]
            random.Random(order_seed).shuffle(shuffled)
            batch = order_seed  # batches of 1, 2 and 3 trials
            for start in range(0, len(shuffled), batch):
                recorder.record_trials(ensemble_id, shuffled[start : start + batch])
            digests.append(build_export(recorder.ensemble_trials(ensemble_id)).digest)
            partial = build_export(recorder.ensemble_trials(ensemble_id, [2])).digest
            assert partial == build_export([t for t in trials if t.seed == 2]).digest
    assert digests[0] == digests[1] == digests[2] == build_export(trials).digest


def test_csv_has_the_header_and_decimal_fields():
    out = io.StringIO()
    write_csv(build_export(_two_trials()), out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == COLUMNS
    invalid, ok = rows[1], rows[2]
    assert invalid[:6] == ["" + SPEC_ID, "1", "5", '{"a":1,"b":-0.0}', "invalid", "-100.0"]
    assert invalid[6:16] == [""] * 10 and invalid[16] == "ValueError: x\ty\\z"
    assert ok[3] == '{"a":3,"b":0.5}' and ok[5] == "1.25" and ok[11] == "12" and ok[16] == ""


def test_parquet_keeps_every_bit_and_carries_the_digest(tmp_path):
    subnormal = 5e-324
    trials = [
        TrialRecord.ok(SPEC_ID, 1, 0, {"x": -0.0}, ok_metrics(-0.0, sortino=subnormal)),
        TrialRecord.invalid(SPEC_ID, 1, 1, {"x": 2}, "ValueError: no"),
    ]
    export = build_export(trials)
    write_parquet(export, tmp_path / "e.parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.column_names == list(COLUMNS)
    assert table.schema.metadata[b"reprotune.sha256"] == export.digest.encode()
    score = table.column("score").to_pylist()
    assert struct.pack("<d", score[0]) == struct.pack("<d", -0.0)
    assert table.column("sortino").to_pylist() == [subnormal, None]
    assert table.column("n_trades").to_pylist() == [12, None]
    assert table.column("params").to_pylist() == ['{"x":"-0x0.0p+0"}', '{"x":2}']


PARAMS = st.dictionaries(
    st.text(min_size=1, max_size=12),
    st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False)),
    max_size=9,
)


@given(params=PARAMS, other=PARAMS)
def test_canonical_params_round_trip_and_are_equal_exactly_when_the_bits_are(params, other):
    assert same_value(parse_canonical_params(canonical_params(params)), params)
    assert (canonical_params(params) == canonical_params(other)) == same_value(params, other)


def test_same_value_compares_bits_and_types():
    # Records compare floats by their bits and never equate different types.
    assert same_value(0.1 + 0.2, 0.30000000000000004)
    assert not same_value(0.0, -0.0)
    assert same_value(math.nan, math.nan)  # the same NaN bits
    assert not same_value(1, 1.0) and not same_value(1, True) and not same_value(0, None)
    assert not same_value([1, 2], (1, 2))
    assert same_value({"a": [1, 0.5]}, {"a": [1, 0.5]})
    assert not same_value({"a": [1, 0.5]}, {"a": [1, -0.5]})
