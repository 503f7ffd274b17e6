"""Candle sources, times, cleaning rules, gap policies, fingerprint and manifest: no network."""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.candles.cleaning import clean, find_gaps
from cluster.candles.dataset import (
    DataChanged,
    check_fingerprint,
    last_candles_range,
    load_candles,
)
from cluster.candles.fingerprint import fingerprint
from cluster.candles.manifest import Manifest
from cluster.candles.sources import CcxtSource, ParquetSource, SyntheticSource, source_from_dict
from cluster.candles.table import CANDLE_COLUMNS, CandleColumns
from cluster.candles.times import parse_utc, subtract_ranges, union_ranges
from cluster.errors import InvalidInput

FIXTURES = Path(__file__).resolve().parent / "data"
FIXTURE_1H = FIXTURES / "binance_BTC-USDT_1h_3300-7699.parquet"
HOUR = 3_600_000
# 2024-01-01T00:00Z = 19723 days after the epoch; 19723 * 86400 * 1000:
JAN_1_2024 = 1_704_067_200_000


def utc(text: str) -> int:
    return parse_utc(text, "test")


def columns(rows: list[tuple[int, float, float, float, float, float]]) -> CandleColumns:
    return CandleColumns.from_rows([list(row) for row in rows])


# --- times and sources ---------------------------------------------------------------


def test_parse_utc_reads_dates_datetimes_and_offsets() -> None:
    assert utc("2024-01-01") == JAN_1_2024
    assert utc("2024-01-01T05:30") == JAN_1_2024 + 5 * HOUR + 30 * 60_000
    assert utc("2024-01-01T06:00+01:00") == JAN_1_2024 + 5 * HOUR
    assert utc("2024-01-01T00:00Z") == JAN_1_2024
    with pytest.raises(InvalidInput, match="not an ISO 8601"):
        utc("01/02/2024")


def test_range_algebra() -> None:
    assert subtract_ranges((0, 100), [(10, 20), (30, 40)]) == [(0, 10), (20, 30), (40, 100)]
    assert subtract_ranges((15, 35), [(10, 20), (30, 40)]) == [(20, 30)]
    assert subtract_ranges((10, 20), [(0, 100)]) == []
    assert union_ranges([(30, 40), (0, 10), (10, 20)]) == [(0, 20), (30, 40)]


def test_sources_round_trip_and_accept_iso_times() -> None:
    ccxt_source = CcxtSource("binanceus", "BTC/USDT", "5m", JAN_1_2024, JAN_1_2024 + HOUR)
    parquet_source = ParquetSource("x.parquet", "1h", None, JAN_1_2024)
    synthetic_source = SyntheticSource("15m", JAN_1_2024, 1000, 7)
    for source in (ccxt_source, parquet_source, synthetic_source):
        assert source_from_dict(source.to_dict()) == source
    written = {"kind": "ccxt", "exchange": "binanceus", "pair": "BTC/USDT", "timeframe": "5m"}
    assert (
        source_from_dict({**written, "start": "2024-01-01", "end": "2024-01-01T01:00"})
        == ccxt_source
    )
    assert synthetic_source.end == JAN_1_2024 + 1000 * 15 * 60_000


def test_sources_name_every_bad_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        CcxtSource("Binance US", "BTCUSDT", "7m", JAN_1_2024 + 1, JAN_1_2024)
    text = str(caught.value)
    for field in ("exchange", "pair", "timeframe '7m'"):
        assert field in text
    with pytest.raises(InvalidInput, match="not aligned to the 5m grid"):
        CcxtSource("binanceus", "BTC/USDT", "5m", JAN_1_2024 + 60_000, JAN_1_2024 + HOUR)
    with pytest.raises(InvalidInput, match=r"start .* must be before end"):
        CcxtSource("binanceus", "BTC/USDT", "5m", JAN_1_2024, JAN_1_2024)
    with pytest.raises(InvalidInput, match="1M"):
        SyntheticSource("1M", JAN_1_2024, 10, 0)  # months have no fixed grid
    with pytest.raises(InvalidInput, match="did you mean 'data_seed'"):
        source_from_dict({"kind": "synthetic", "timeframe": "5m", "start": 0, "bars": 5, "seed": 1})
    with pytest.raises(InvalidInput, match="missing field 'data_seed'"):
        source_from_dict({"kind": "synthetic", "timeframe": "5m", "start": 0, "bars": 5})
    with pytest.raises(InvalidInput, match="kind 'csv' is not one of"):
        source_from_dict({"kind": "csv"})


def test_last_candles_range_ends_at_the_newest_finished_candle() -> None:
    # 10:07 on the 5m grid: the 10:05 candle runs until 10:10, so the newest finished
    # candle opened at 10:00 and the exclusive end is 10:05.
    now = JAN_1_2024 + 10 * HOUR + 7 * 60_000
    assert last_candles_range(now, "5m", 3) == (
        JAN_1_2024 + 10 * HOUR - 10 * 60_000,
        JAN_1_2024 + 10 * HOUR + 5 * 60_000,
    )


# --- cleaning rules ------------------------------------------------------------------


def test_every_rule_rejects_and_names_the_row() -> None:
    t0 = JAN_1_2024
    good = (t0, 10.0, 11.0, 9.0, 10.5, 1.0)
    rows = [
        good,
        (t0 + HOUR, 10.0, 9.5, 9.0, 10.0, 1.0),  # high < max(open, close)
        (t0 + 2 * HOUR, 10.0, 11.0, 10.2, 10.5, 1.0),  # low > min(open, close)
        (t0 + 3 * HOUR, 10.0, 11.0, 9.0, np.nan, 1.0),  # not finite
        (t0 + 4 * HOUR, 10.0, 11.0, 9.0, 10.5, -1.0),  # negative volume
        (t0 + 5 * HOUR, 0.0, 11.0, 0.0, 10.5, 1.0),  # non-positive prices
        (t0 + 5 * HOUR + 60_000, 10.0, 11.0, 9.0, 10.5, 1.0),  # off the grid
        (t0 + 5 * HOUR, 10.0, 11.0, 9.0, 10.5, 1.0),  # not increasing (before previous)
        (t0 + 9 * HOUR, 10.0, 11.0, 9.0, 10.5, 1.0),  # outside [start, end)
    ]
    with pytest.raises(InvalidInput) as caught:
        clean(
            columns(rows),
            start=t0,
            end=t0 + 8 * HOUR,
            timeframe="1h",
            gap_policy="fill",
            max_fill_share=1.0,
        )
    problems = caught.value.problems
    assert problems[0].startswith("8 rows break the candle rules")
    expected = {
        1: "high 9.5 < max(open, close) 10.0",
        2: "low 10.2 > min(open, close) 10.0",
        3: "close nan is not finite",
        4: "volume -1.0 < 0",
        5: "open 0.0 is not > 0",
        6: "is not on the 3600000 ms grid",
        7: "timestamp is before the previous row's",
        8: "timestamp is outside",
    }
    for row, reason in expected.items():
        assert any(p.startswith(f"row {row} ") and reason in p for p in problems), (row, problems)
    assert not any(p.startswith("row 0 ") for p in problems)


def test_rejection_lists_at_most_20_rows() -> None:
    rows = [(JAN_1_2024 + i * HOUR, 10.0, 9.0, 8.0, 10.0, 1.0) for i in range(30)]  # high < open
    with pytest.raises(InvalidInput) as caught:
        clean(
            columns(rows),
            start=JAN_1_2024,
            end=JAN_1_2024 + 30 * HOUR,
            timeframe="1h",
            gap_policy="reject",
            max_fill_share=0,
        )
    assert caught.value.problems[0].startswith("30 rows break")
    assert len(caught.value.problems) == 1 + 20


def test_fill_copies_the_previous_close_with_zero_volume() -> None:
    t0 = JAN_1_2024
    rows = [
        (t0, 10.0, 12.0, 9.0, 11.0, 5.0),
        (t0 + 3 * HOUR, 11.0, 13.0, 10.0, 12.0, 6.0),  # 2 missing before it
    ]
    result = clean(
        columns(rows),
        start=t0,
        end=t0 + 5 * HOUR,
        timeframe="1h",
        gap_policy="fill",
        max_fill_share=0.8,
    )
    # Hand-built: hours 1, 2 flat at 11.0 (the close of hour 0); hour 4 flat at 12.0.
    out = result.columns
    assert out.timestamp.tolist() == [t0 + i * HOUR for i in range(5)]
    assert out.open.tolist() == [10.0, 11.0, 11.0, 11.0, 12.0]
    assert out.high.tolist() == [12.0, 11.0, 11.0, 13.0, 12.0]
    assert out.low.tolist() == [9.0, 11.0, 11.0, 10.0, 12.0]
    assert out.close.tolist() == [11.0, 11.0, 11.0, 12.0, 12.0]
    assert out.volume.tolist() == [5.0, 0.0, 0.0, 6.0, 0.0]
    assert result.filled_ranges == ((t0 + HOUR, t0 + 3 * HOUR), (t0 + 4 * HOUR, t0 + 5 * HOUR))


def test_fill_refuses_a_leading_gap_and_too_large_a_share() -> None:
    t0 = JAN_1_2024
    rows = [(t0 + HOUR, 10.0, 12.0, 9.0, 11.0, 5.0), (t0 + 2 * HOUR, 10.0, 12.0, 9.0, 11.0, 5.0)]
    with pytest.raises(InvalidInput, match="no previous close"):
        clean(
            columns(rows),
            start=t0,
            end=t0 + 3 * HOUR,
            timeframe="1h",
            gap_policy="fill",
            max_fill_share=1.0,
        )
    rows = [(t0, 10.0, 12.0, 9.0, 11.0, 5.0)]
    # 3 of 4 candles missing = 75% > 50%.
    with pytest.raises(InvalidInput, match=r"75.0000% > max_fill_share 50.0000%"):
        clean(
            columns(rows),
            start=t0,
            end=t0 + 4 * HOUR,
            timeframe="1h",
            gap_policy="fill",
            max_fill_share=0.5,
        )
    with pytest.raises(InvalidInput, match="gap_policy"):
        clean(
            columns(rows),
            start=t0,
            end=t0 + HOUR,
            timeframe="1h",
            gap_policy="drop",
            max_fill_share=0,
        )  # type: ignore[arg-type]


# The fixture's gaps, from tests/data/README.md (found there by reading the file's
# timestamps, independently of this code): (first missing open time, missing candles).
FIXTURE_1H_GAPS = [
    ("2018-01-04T04:00", 1),
    ("2018-02-08T01:00", 33),
    ("2018-06-26T02:00", 10),
    ("2018-06-27T13:00", 1),
    ("2018-07-04T01:00", 7),
]


def test_real_gaps_under_both_policies() -> None:
    source = ParquetSource(str(FIXTURE_1H), "1h")
    with pytest.raises(InvalidInput) as caught:
        load_candles(source)
    assert caught.value.problems[0].startswith("5 gaps, 52 of 4452 candles missing")
    dataset = load_candles(source, gap_policy="fill", max_fill_share=0.02)
    expected = tuple((utc(first), utc(first) + count * HOUR) for first, count in FIXTURE_1H_GAPS)
    assert dataset.manifest.filled_ranges == expected
    assert dataset.manifest.filled_rows == 52
    assert dataset.table.num_rows == 4452
    original = pq.read_table(FIXTURE_1H)
    ts = dataset.table["timestamp"].to_numpy()
    kept = np.isin(ts, original["timestamp"].to_numpy())
    for name in CANDLE_COLUMNS:  # every original row is there, unchanged
        assert np.array_equal(dataset.table[name].to_numpy()[kept], original[name].to_numpy())
    with pytest.raises(InvalidInput, match=r"1.1680% > max_fill_share 1.0000%"):  # 52 / 4452
        load_candles(source, gap_policy="fill", max_fill_share=0.01)


def test_the_full_1h_file_has_28_gaps(shared_data: Path) -> None:
    source = ParquetSource(str(shared_data / "binance_BTC-USDT_1h.parquet"), "1h")
    with pytest.raises(InvalidInput) as caught:
        load_candles(source)
    assert caught.value.problems[0].startswith("28 gaps, 128 of ")
    assert caught.value.problems[-1] == "... 8 more"  # 20 listed
    dataset = load_candles(source, gap_policy="fill", max_fill_share=0.01)
    assert len(dataset.manifest.filled_ranges) == 28
    assert dataset.manifest.filled_rows == 128
    longest = max(b - a for a, b in dataset.manifest.filled_ranges)
    assert longest == 33 * HOUR  # 2018-02-08: 34 h between two candles' open times


def test_find_gaps_includes_both_ends() -> None:
    ts = np.array([2, 3, 6], dtype=np.int64)
    assert find_gaps(ts, 0, 9, 1) == [(0, 2), (4, 6), (7, 9)]
    assert find_gaps(np.array([], dtype=np.int64), 0, 3, 1) == [(0, 3)]


# --- fingerprint -----------------------------------------------------------------------


def reference_fingerprint(table: pa.Table) -> str:
    """The documented layout, written out value by value with struct (independent)."""
    out = bytearray(b"reprotune-candles-fingerprint" + struct.pack("<I", 1))
    out += struct.pack("<I", table.num_columns)
    for field in table.schema:
        dtype = "int64" if field.type == pa.int64() else "float64"
        out += struct.pack("<I", len(field.name)) + field.name.encode()
        out += struct.pack("<I", len(dtype)) + dtype.encode()
    out += struct.pack("<Q", table.num_rows)
    for field in table.schema:
        code = "<q" if field.type == pa.int64() else "<d"
        for value in table[field.name].to_pylist():
            out += struct.pack(code, value)
    return hashlib.sha256(bytes(out)).hexdigest()


def test_fingerprint_follows_the_documented_layout(fixture_candles_path: Path) -> None:
    table = pq.read_table(fixture_candles_path).slice(0, 300)
    table = table.replace_schema_metadata(None)
    assert fingerprint(table) == reference_fingerprint(table)
    tiny = pa.table({"timestamp": pa.array([0], pa.int64()), "x": pa.array([-0.0])})
    assert fingerprint(tiny) == reference_fingerprint(tiny)
    zero = pa.table({"timestamp": pa.array([0], pa.int64()), "x": pa.array([0.0])})
    assert fingerprint(tiny) != fingerprint(zero)  # the bits, not the numeric value


def test_fingerprint_ignores_parquet_encoding_and_chunking(
    fixture_candles_path: Path, tmp_path: Path
) -> None:
    original = load_candles(ParquetSource(str(fixture_candles_path), "5m")).manifest.fingerprint
    table = pq.read_table(fixture_candles_path)
    variants = {
        "groups-333.parquet": {"row_group_size": 333, "compression": "snappy"},
        "plain.parquet": {"use_dictionary": False, "compression": "none", "row_group_size": 1000},
        "delta.parquet": {
            "use_dictionary": False,
            "column_encoding": {"timestamp": "DELTA_BINARY_PACKED"},
            "compression": "gzip",
        },
    }
    for name, options in variants.items():
        pq.write_table(table, tmp_path / name, **options)
        assert pq.ParquetFile(tmp_path / name).num_row_groups >= 1
        reloaded = load_candles(ParquetSource(str(tmp_path / name), "5m")).manifest.fingerprint
        assert reloaded == original, name
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=777))
    assert chunked.column(0).num_chunks > 1
    assert fingerprint(chunked.select(list(CANDLE_COLUMNS))) == original


def test_dataset_table_shape(fixture_candles_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "groups.parquet"
    pq.write_table(pq.read_table(fixture_candles_path), path, row_group_size=100)
    table = load_candles(ParquetSource(str(path), "5m")).table
    assert table.column_names == list(CANDLE_COLUMNS)
    assert [f.type for f in table.schema] == [pa.int64()] + [pa.float64()] * 5
    assert all(column.num_chunks == 1 and column.null_count == 0 for column in table.columns)


def test_parquet_source_range_and_bad_files(fixture_candles_path: Path, tmp_path: Path) -> None:
    ts = pq.read_table(fixture_candles_path)["timestamp"].to_numpy()
    source = ParquetSource(str(fixture_candles_path), "5m", int(ts[10]), int(ts[20]))
    dataset = load_candles(source)
    assert dataset.table["timestamp"].to_numpy().tolist() == ts[10:20].tolist()
    assert (dataset.manifest.start, dataset.manifest.end, dataset.manifest.rows) == (
        ts[10],
        ts[20],
        10,
    )
    assert (dataset.manifest.exchange, dataset.manifest.pair) == (None, None)  # provenance is prose
    bad = pq.read_table(fixture_candles_path).set_column(
        3,
        "low",
        pa.array(
            np.where(
                np.arange(5000) == 42, 1e9, pq.read_table(fixture_candles_path)["low"].to_numpy()
            )
        ),
    )
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(InvalidInput, match=r"row 42 \(2021-09-29T12:30Z\): low 1000000000.0 > min"):
        load_candles(ParquetSource(str(tmp_path / "bad.parquet"), "5m"))
    pq.write_table(bad.drop_columns(["volume"]), tmp_path / "five.parquet")
    with pytest.raises(InvalidInput, match=r"columns \['volume'\] are missing"):
        load_candles(ParquetSource(str(tmp_path / "five.parquet"), "5m"))
    with pytest.raises(InvalidInput, match="no such file"):
        load_candles(ParquetSource(str(tmp_path / "absent.parquet"), "5m"))


def test_manifest_round_trips_through_json(fixture_candles_path: Path) -> None:
    dataset = load_candles(
        ParquetSource(str(FIXTURE_1H), "1h"), gap_policy="fill", max_fill_share=0.02
    )
    manifest = dataset.manifest
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert Manifest.from_json(manifest.to_json(indent=2)) == manifest
    data = manifest.to_dict()
    assert data["filled_rows"] == 52 and len(data["fingerprint"]) == 64
    assert set(data["library_versions"]) == {"ccxt", "numpy", "pyarrow"}
    with pytest.raises(InvalidInput, match="filled_rows"):
        Manifest.from_dict({**data, "filled_rows": 51})


def test_the_table_matches_the_backtest_and_imports_stay_light() -> None:
    from trainable.backtest import CANDLE_COLUMNS as BACKTEST_COLUMNS

    assert CANDLE_COLUMNS == BACKTEST_COLUMNS
    code = "import sys, cluster.candles.dataset, cluster.cli; print('ccxt' in sys.modules)"
    repo = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"  # a cache hit or --help never pays for ccxt


def test_a_changed_dataset_names_both_fingerprints() -> None:
    dataset = load_candles(SyntheticSource("1h", JAN_1_2024, 100, 1))
    check_fingerprint(dataset, dataset.manifest.fingerprint)
    other = load_candles(SyntheticSource("1h", JAN_1_2024, 100, 2)).manifest.fingerprint
    with pytest.raises(
        DataChanged, match=f"recorded fingerprint {other}, now {dataset.manifest.fingerprint}"
    ):
        check_fingerprint(dataset, other)
