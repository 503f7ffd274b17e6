"""Candle data at 1,000,000 candles: load from the cache, clean, fingerprint.

    /work/venv/bin/python bench/candles.py [--rows 1000000] [--repeats 7]

Builds 1M synthetic 5m candles, writes them into a cache in a temporary directory as
`data fetch` would, then times (median and best of --repeats, after one warm-up run):
- cache load: `ensure_cached` on a covered range (lock, read, every integrity check,
  including the content fingerprint) plus slicing the range;
- clean: the rules and the gap check (`clean`, gap policy "reject");
- fill: `clean` with 1% of the rows removed and gap policy "fill";
- fingerprint: sha256 over the documented layout;
- load_candles end to end on a cache hit (cache load + clean + table + fingerprint).
Targets (issue 4): cache load <= 0.5 s, clean <= 0.5 s, fingerprint <= 0.2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.candles.cache import CacheContent, CacheKey, write_cache
from cluster.candles.cleaning import clean
from cluster.candles.dataset import load_candles
from cluster.candles.exchange import DownloadSettings
from cluster.candles.fingerprint import fingerprint
from cluster.candles.incremental import ensure_cached
from cluster.candles.sources import CcxtSource, SyntheticSource
from cluster.candles.synthetic import generate

START = 1_577_836_800_000  # 2020-01-01T00:00Z


def timed(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    run()  # warm-up: imports, page cache
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return statistics.median(times), min(times)


def no_client(exchange_id: str, settings: DownloadSettings) -> object:
    raise AssertionError("a cache hit must not build an exchange client")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    began = time.perf_counter()
    synthetic = SyntheticSource("5m", START, args.rows, 1)
    candles = generate(synthetic)
    generate_s = time.perf_counter() - began
    source = CcxtSource("binanceus", "BTC/USDT", "5m", synthetic.start, synthetic.end)
    table = candles.to_table()
    gappy = candles.take(np.arange(args.rows) % 100 != 50)  # 1% missing, never the first row

    with tempfile.TemporaryDirectory() as root:
        key = CacheKey(source.exchange, source.pair, source.timeframe)
        write_cache(key.path(Path(root)), key, CacheContent(candles, ((source.start, source.end),)))
        size_mb = key.path(Path(root)).stat().st_size / 1e6
        settings = DownloadSettings()

        def cache_load() -> object:
            content, _ = ensure_cached(source, Path(root), settings, client_factory=no_client)  # type: ignore[arg-type]
            return content.rows_in(source.start, source.end)

        def cleaning() -> object:
            return clean(
                candles,
                start=source.start,
                end=source.end,
                timeframe="5m",
                gap_policy="reject",
                max_fill_share=0.0,
            )

        def filling() -> object:
            return clean(
                gappy,
                start=source.start,
                end=source.end,
                timeframe="5m",
                gap_policy="fill",
                max_fill_share=0.02,
            )

        def end_to_end() -> object:
            return load_candles(source, cache_dir=root, client_factory=no_client)  # type: ignore[arg-type]

        results = {
            "cache load (read + checks + slice)": (timed(cache_load, args.repeats), 0.5),
            "clean (rules + gaps, reject)": (timed(cleaning, args.repeats), 0.5),
            "clean with 1% gaps filled": (timed(filling, args.repeats), None),
            "fingerprint (sha256)": (timed(lambda: fingerprint(table), args.repeats), 0.2),
            "load_candles on a cache hit": (timed(end_to_end, args.repeats), None),
        }
    print(f"{args.rows:,} synthetic 5m candles, generated in {generate_s:.2f} s")
    print(f"cache file {size_mb:.1f} MB")
    print(f"{'step':38} {'median s':>9} {'best s':>8} {'target s':>9}")
    for name, ((median, best), target) in results.items():
        goal = f"{target:.1f}" if target else "-"
        print(f"{name:38} {median:9.3f} {best:8.3f} {goal:>9}")


if __name__ == "__main__":
    main()
