"""`python -m cluster data ...`: download candles into the cache and show what is there.

    data fetch --exchange binanceus --pair BTC/USDT --timeframe 5m \
               --start 2024-01-01 --end 2024-02-01
    data fetch --exchange binanceus --pair BTC/USDT --timeframe 1h --last 5000
    data show                                   # every cache entry
    data show --exchange binanceus --pair BTC/USDT --timeframe 5m [--start ... --end ...]
    data show --parquet FILE --timeframe 1h
    data show --synthetic --timeframe 5m --start 2024-01-01 --bars 100000 --data-seed 7

`fetch` prints progress and a summary on stderr, then the dataset's manifest (JSON) on
stdout. `show` never contacts an exchange.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cluster.errors import InvalidInput

HELP = "candle data: fetch from an exchange into the local cache, show cached data"
LISTED = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    fetch = commands.add_parser(
        "fetch",
        help="download a range into the cache (only what is missing) and print its manifest",
        description="Download candles into the cache (only what is missing, unless "
        "--refresh) and print the dataset's manifest. Times are ISO 8601, UTC; the range "
        "[start, end) is half-open over candle open times and must be on the timeframe's grid.",
    )
    _market_arguments(fetch, required=True)
    fetch.add_argument("--start", help="first candle's open time, e.g. 2024-01-01")
    fetch.add_argument("--end", help="open time after the last candle (exclusive)")
    fetch.add_argument(
        "--last",
        type=int,
        metavar="N",
        help="instead of --start/--end: the N newest finished candles",
    )
    fetch.add_argument(
        "--refresh",
        action="store_true",
        help="re-download the range and report candles the exchange has revised",
    )
    _cleaning_arguments(fetch)
    _cache_argument(fetch)
    fetch.add_argument("--api-url", help="base URL replacing the exchange's REST API (a mirror)")
    fetch.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    fetch.add_argument("--retries", type=int, default=5, help="retries after network errors (5)")
    fetch.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: on a terminal)",
    )

    show = commands.add_parser(
        "show",
        help="list the cache, or show one cache entry or dataset (never downloads)",
        description="Without options: list the cache. With --exchange/--pair/--timeframe: "
        "that entry's covered ranges and gaps, or with --start/--end the dataset's manifest. "
        "With --parquet or --synthetic: that source's manifest.",
    )
    _market_arguments(show, required=False)
    show.add_argument("--start", help="first candle's open time (ISO 8601, UTC)")
    show.add_argument("--end", help="open time after the last candle (exclusive)")
    show.add_argument(
        "--parquet", metavar="FILE", help="a Parquet file with the six candle columns"
    )
    show.add_argument("--synthetic", action="store_true", help="the synthetic generator")
    show.add_argument("--bars", type=int, help="synthetic: number of candles")
    show.add_argument("--data-seed", type=int, default=0, help="synthetic: data seed (0)")
    show.add_argument(
        "--rows", type=int, default=0, metavar="K", help="also print the first and last K rows"
    )
    _cleaning_arguments(show)
    _cache_argument(show)


def _market_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--exchange", required=required, help="ccxt exchange id, e.g. binanceus")
    parser.add_argument("--pair", required=required, help="market symbol, e.g. BTC/USDT")
    parser.add_argument(
        "--timeframe", required=required, help="1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d"
    )


def _cleaning_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gap-policy",
        choices=("reject", "fill"),
        default="reject",
        help="missing candles: reject (default) or fill",
    )
    parser.add_argument(
        "--max-fill-share",
        type=float,
        default=0.0,
        help="with --gap-policy fill: the largest share of the range to fill (e.g. 0.01)",
    )


def _cache_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        help="cache root (default: $REPROTUNE_HOME/candles, else the user cache dir)",
    )


def run(args: argparse.Namespace) -> int:
    from cluster.candles.exchange import ExchangeFailure

    try:
        if args.data_command == "fetch":
            return _fetch(args)
        return _show(args)
    except ExchangeFailure as error:  # refused for good (e.g. authentication): no traceback
        print(f"error: {error}", file=sys.stderr)
        return 1


def _fetch(args: argparse.Namespace) -> int:
    from cluster.candles.cache import resolve_cache_dir
    from cluster.candles.dataset import load_candles, resolve_last_candles
    from cluster.candles.exchange import DownloadSettings
    from cluster.candles.incremental import ensure_cached
    from cluster.candles.sources import CcxtSource

    settings = DownloadSettings(
        timeout_s=args.timeout,
        max_retries=args.retries,
        api_url=args.api_url,
        progress=args.progress,
    )
    if args.last is not None:
        if args.start or args.end:
            raise InvalidInput("give either --last or --start/--end, not both")
        source = resolve_last_candles(
            args.exchange, args.pair, args.timeframe, args.last, settings=settings
        )
    else:
        start, end = _times(args)
        source = CcxtSource(args.exchange, args.pair, args.timeframe, start, end)
    root = resolve_cache_dir(args.cache_dir)
    _, report = ensure_cached(source, root, settings, refresh=args.refresh)
    _report_fetch(report)
    try:
        dataset = load_candles(
            source,
            gap_policy=args.gap_policy,
            max_fill_share=args.max_fill_share,
            cache_dir=root,
            settings=settings,
            client_factory=_offline,
        )
    except InvalidInput as error:
        raise InvalidInput(
            [*error.problems, f"(the downloaded candles are cached in {report.path})"]
        ) from None
    _summary(dataset.manifest)
    print(dataset.manifest.to_json(indent=2))
    return 0


def _report_fetch(report: Any) -> None:
    from cluster.candles.times import count, format_range

    if report.cache_hit:
        print(f"cache hit: {report.path} (no request)", file=sys.stderr)
        return
    spans = ", ".join(format_range(span) for span in report.fetched)
    gaps = sum(stats.gap_requests for stats in report.stats)
    print(
        f"fetched {spans} in {count(report.requests, 'request')} "
        f"({count(gaps, 're-request')} of gaps) "
        f"into {report.path}",
        file=sys.stderr,
    )
    if report.revisions:
        revised = count(len(report.revisions), "candle")
        print(f"{revised} revised by the exchange:", file=sys.stderr)
        for revision in report.revisions[:LISTED]:
            print(f"  {revision.describe()}", file=sys.stderr)
        if len(report.revisions) > LISTED:
            print(f"  ... {len(report.revisions) - LISTED} more", file=sys.stderr)


def _summary(manifest: Any) -> None:
    from cluster.candles.times import format_range

    filled = (
        f", {manifest.filled_rows} filled in {len(manifest.filled_ranges)} gaps"
        if manifest.filled_ranges
        else ""
    )
    print(
        f"{manifest.pair or manifest.source.kind} {manifest.timeframe} "
        f"{format_range((manifest.start, manifest.end))}: {manifest.rows} candles{filled}; "
        f"fingerprint {manifest.fingerprint}",
        file=sys.stderr,
    )


def _offline(exchange_id: str, settings: Any) -> Any:
    raise InvalidInput(
        f"this range of {exchange_id} is not (completely) in the cache, and this command does "
        "not download: run `python -m cluster data fetch ...` first"
    )


def _times(args: argparse.Namespace) -> tuple[int, int]:
    from cluster.candles.times import parse_utc

    if not (args.start and args.end):
        raise InvalidInput("give both --start and --end (ISO 8601, UTC)")
    return parse_utc(args.start, "--start"), parse_utc(args.end, "--end")


def _show(args: argparse.Namespace) -> int:
    from cluster.candles.sources import CcxtSource, ParquetSource, SyntheticSource
    from cluster.candles.times import parse_utc

    if args.parquet or args.synthetic:
        if not args.timeframe:
            raise InvalidInput("--timeframe is required with --parquet and --synthetic")
        if args.parquet:
            start = parse_utc(args.start, "--start") if args.start else None
            end = parse_utc(args.end, "--end") if args.end else None
            source: Any = ParquetSource(args.parquet, args.timeframe, start, end)
        else:
            if not args.start or args.bars is None:
                raise InvalidInput("--synthetic needs --start and --bars")
            source = SyntheticSource(
                args.timeframe, parse_utc(args.start, "--start"), args.bars, args.data_seed
            )
        return _show_dataset(source, args)
    market = [args.exchange, args.pair, args.timeframe]
    if not any(market):
        return _list_cache(args)
    if not all(market):
        raise InvalidInput("give all of --exchange, --pair and --timeframe")
    if args.start or args.end:
        start, end = _times(args)
        return _show_dataset(CcxtSource(args.exchange, args.pair, args.timeframe, start, end), args)
    return _show_entry(args)


def _show_dataset(source: Any, args: argparse.Namespace) -> int:
    from cluster.candles.dataset import load_candles

    dataset = load_candles(
        source,
        gap_policy=args.gap_policy,
        max_fill_share=args.max_fill_share,
        cache_dir=args.cache_dir,
        client_factory=_offline,
    )
    _summary(dataset.manifest)
    if args.rows > 0:
        frame = dataset.table.to_pandas()
        shown = (
            frame
            if len(frame) <= 2 * args.rows
            else frame.iloc[list(range(args.rows)) + list(range(-args.rows, 0))]
        )
        print(shown.to_string(), file=sys.stderr)
    print(dataset.manifest.to_json(indent=2))
    return 0


def _show_entry(args: argparse.Namespace) -> int:
    from cluster.candles.cache import CacheKey, read_cache, resolve_cache_dir
    from cluster.candles.cleaning import find_gaps
    from cluster.candles.times import format_range
    from cluster.timeframes import timeframe_ms

    key = CacheKey(args.exchange, args.pair, args.timeframe)
    path = key.path(resolve_cache_dir(args.cache_dir))
    content = read_cache(path, key)
    if content is None:
        raise InvalidInput(
            f"nothing cached for {args.exchange} {args.pair} {args.timeframe} ({path})"
        )
    step = timeframe_ms(args.timeframe)
    gaps = []
    for low, high in content.covered:
        _, rows = content.rows_in(low, high)
        gaps.extend(find_gaps(rows.timestamp, low, high, step))
    entry = {
        "path": str(path),
        "rows": len(content.columns),
        "covered": [format_range(span) for span in content.covered],
        "real_gaps": len(gaps),
        "missing_candles": sum(b - a for a, b in gaps) // step,
        "first_gaps": [format_range(gap) for gap in gaps[:LISTED]],
    }
    print(json.dumps(entry, indent=2))
    return 0


def _list_cache(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from cluster.candles.cache import METADATA_KEY, resolve_cache_dir
    from cluster.candles.times import format_range

    root = resolve_cache_dir(args.cache_dir)
    entries = []
    for path in sorted(Path(root).glob("*/*/*.parquet")):
        try:
            meta = json.loads((pq.read_schema(path).metadata or {})[METADATA_KEY])
            covered = [format_range((a, b)) for a, b in meta["covered"]]
            name = f"{meta['exchange']} {meta['pair']} {meta['timeframe']}"
            entries.append(f"{name}: {meta['rows']} rows, covered {', '.join(covered)}")
        except (OSError, KeyError, ValueError) as error:
            entries.append(f"{path}: unreadable ({type(error).__name__})")
    print(f"candle cache {root}: {len(entries)} entries", file=sys.stderr)
    for entry in entries:
        print(entry)
    return 0
