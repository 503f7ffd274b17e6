"""The Parquet cache file: location, atomic writes, and checks that catch corruption."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.candles import cache as cache_module
from cluster.candles.cache import (
    METADATA_KEY,
    CacheContent,
    CacheKey,
    read_cache,
    resolve_cache_dir,
    write_cache,
)
from cluster.candles.table import CandleColumns

KEY = CacheKey("binanceus", "BTC/USDT", "5m")


@pytest.fixture
def content(fixture_candles_path: Path) -> CacheContent:
    columns = CandleColumns.from_table(pq.read_table(fixture_candles_path), "fixture")
    return CacheContent(
        columns, ((int(columns.timestamp[0]), int(columns.timestamp[-1]) + 300_000),)
    )


def same(a: CandleColumns, b: CandleColumns) -> bool:
    names = ("timestamp", "open", "high", "low", "close", "volume")
    return all(np.array_equal(getattr(a, n), getattr(b, n)) for n in names)


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPROTUNE_HOME", str(tmp_path / "home"))
    assert resolve_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_cache_dir() == tmp_path / "home" / "candles"
    monkeypatch.delenv("REPROTUNE_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "reprotune" / "candles"
    assert KEY.path(tmp_path) == tmp_path / "binanceus" / "BTC-USDT" / "5m.parquet"
    assert CacheKey("x", "BTC/USDT:USDT", "1h").path(tmp_path).parent.name == "BTC-USDT_USDT"


def test_round_trip_leaves_no_temporary_file(tmp_path: Path, content: CacheContent) -> None:
    path = KEY.path(tmp_path)
    write_cache(path, KEY, content)
    loaded = read_cache(path, KEY)
    assert loaded is not None and loaded.covered == content.covered
    assert same(loaded.columns, content.columns)
    assert sorted(p.name for p in path.parent.iterdir()) == ["5m.parquet"]
    assert read_cache(KEY.path(tmp_path / "nothing"), KEY) is None


def test_a_failed_write_keeps_the_old_file(
    tmp_path: Path, content: CacheContent, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = KEY.path(tmp_path)
    write_cache(path, KEY, content)
    before = path.read_bytes()

    def crash(table: object, sink: object, **options: object) -> None:
        sink.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_cache(path, KEY, CacheContent(content.columns.take(slice(0, 10)), content.covered))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["5m.parquet"]


def corrupt_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt_flipped_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 64):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_one_value_validly(path: Path) -> None:
    """A well-formed Parquet file whose content no longer matches its fingerprint."""
    table = pq.read_table(path)
    close = table["close"].to_numpy().copy()
    close[100] += 0.01
    pq.write_table(table.set_column(4, "close", pa.array(close)), path)


def corrupt_metadata_rows(path: Path) -> None:
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta["rows"] += 1
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), path)


def corrupt_rows_outside_coverage(path: Path) -> None:
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta["covered"] = [[meta["covered"][0][0], meta["covered"][0][0] + 300_000 * 10]]
    pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()}), path)


def corrupt_not_parquet(path: Path) -> None:
    path.write_text("not a parquet file")


@pytest.mark.parametrize(
    "corrupt",
    [
        corrupt_truncated,
        corrupt_flipped_bytes,
        corrupt_one_value_validly,
        corrupt_metadata_rows,
        corrupt_rows_outside_coverage,
        corrupt_not_parquet,
    ],
)
def test_corruption_is_detected_and_moved_aside(
    corrupt: object, tmp_path: Path, content: CacheContent, caplog: pytest.LogCaptureFixture
) -> None:
    path = KEY.path(tmp_path)
    write_cache(path, KEY, content)
    corrupt(path)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING, logger="reprotune.candles"):
        assert read_cache(path, KEY) is None
    assert "is corrupt" in caplog.text
    assert not path.exists() and path.with_name("5m.parquet.corrupt").exists()


def test_a_file_for_another_key_is_refused(tmp_path: Path, content: CacheContent) -> None:
    path = KEY.path(tmp_path)
    write_cache(path, KEY, content)
    assert read_cache(path, CacheKey("binanceus", "BTC/USDT", "1h")) is None
