"""`python -m cluster data ...` as a user runs it: output, exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from exchange_replay import ReplayExchange, read_candles, replay_exchange

from cluster.candles.times import format_utc
from cluster.cli import main

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
FIVE = read_candles(DATA / "binance_BTC-USDT_5m_0-4999.parquet")
HOURLY = read_candles(DATA / "binance_BTC-USDT_1h_3300-7699.parquet")
TS = FIVE.timestamp


@pytest.fixture
def replay() -> Iterator[ReplayExchange]:
    with replay_exchange({"BTC/USDT": {"5m": FIVE, "1h": HOURLY}}) as server:
        yield server


def fetch_args(
    server: ReplayExchange, cache: Path, *extra: str, timeframe: str = "5m"
) -> list[str]:
    # No retries (the tests count requests), so a generous timeout: on a machine loaded
    # by other processes a local answer may take well over the 0.5 s this once had.
    return [
        "data", "fetch", "--exchange", "binanceus", "--pair", "BTC/USDT", "--timeframe", timeframe,
        "--api-url", server.url, "--cache-dir", str(cache), "--timeout", "30", "--retries", "0",
        "--no-progress", *extra,
    ]  # fmt: skip


def test_fetch_prints_the_manifest_then_hits_the_cache(
    replay: ReplayExchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    span = ["--start", format_utc(int(TS[0])), "--end", format_utc(int(TS[2000]))]
    assert main(fetch_args(replay, tmp_path, *span)) == 0
    out = capsys.readouterr()
    manifest = json.loads(out.out)
    assert (
        manifest["rows"] == 2000
        and manifest["start"] == int(TS[0])
        and manifest["end"] == int(TS[2000])
    )
    assert manifest["source"]["kind"] == "ccxt" and manifest["pair"] == "BTC/USDT"
    assert "fetched [2021-09-29T09:00Z, 2021-10-06T07:40Z)" in out.err
    replay.clear_log()
    assert main(fetch_args(replay, tmp_path, *span)) == 0
    again = capsys.readouterr()
    assert "cache hit" in again.err and json.loads(again.out) == manifest
    assert replay.requests == []

    assert main(["data", "show", "--cache-dir", str(tmp_path)]) == 0
    assert "binanceus BTC/USDT 5m: 2000 rows" in capsys.readouterr().out
    entry = [
        "data",
        "show",
        "--cache-dir",
        str(tmp_path),
        "--exchange",
        "binanceus",
        "--pair",
        "BTC/USDT",
    ]
    assert main([*entry, "--timeframe", "5m"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["rows"] == 2000 and shown["real_gaps"] == 0
    assert main([*entry, "--timeframe", "5m", *span, "--rows", "2"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["fingerprint"] == manifest["fingerprint"]
    assert "42442.0" in out.err  # the first row's open, printed by --rows
    later = ["--start", format_utc(int(TS[0])), "--end", format_utc(int(TS[3000]))]
    assert main([*entry, "--timeframe", "5m", *later]) == 2
    assert "run `python -m cluster data fetch" in capsys.readouterr().err
    assert replay.requests == []  # show never downloads


def test_gaps_are_rejected_with_advice_then_filled_on_request(
    replay: ReplayExchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    span = ["--start", "2018-01-01T22:00", "--end", "2018-07-06T10:00"]
    assert main(fetch_args(replay, tmp_path, *span, timeframe="1h")) == 2
    err = capsys.readouterr().err
    assert "5 gaps, 52 of 4452 candles missing" in err
    assert "gap [2018-02-08T01:00Z, 2018-02-09T10:00Z): 33 candles" in err
    assert "the downloaded candles are cached in" in err
    fill = ["--gap-policy", "fill", "--max-fill-share", "0.02"]
    assert main(fetch_args(replay, tmp_path, *span, *fill, timeframe="1h")) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["filled_rows"] == 52 and len(manifest["filled_ranges"]) == 5


def test_refresh_reports_revised_candles(
    replay: ReplayExchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    span = ["--start", format_utc(int(TS[0])), "--end", format_utc(int(TS[1000]))]
    assert main(fetch_args(replay, tmp_path, *span)) == 0
    before = json.loads(capsys.readouterr().out)["fingerprint"]
    replay.revise("BTC/USDT", "5m", int(TS[10]), high=float(FIVE.high[10]) + 5.0)
    assert main(fetch_args(replay, tmp_path, *span, "--refresh")) == 0
    out = capsys.readouterr()
    assert f"1 candle revised by the exchange:\n  {format_utc(int(TS[10]))}: cached" in out.err
    assert json.loads(out.out)["fingerprint"] != before


def test_last_n_is_resolved_once_by_the_exchange_clock(
    replay: ReplayExchange, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay.server_time_ms = int(TS[-1]) + 60_000  # one minute into the last candle
    assert main(fetch_args(replay, tmp_path, "--last", "50")) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (manifest["start"], manifest["end"], manifest["rows"]) == (int(TS[-51]), int(TS[-1]), 50)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--timeframe", "7m", "--start", "2021-10-01", "--end", "2021-10-02"],
            "timeframe '7m' is not supported",
        ),
        (
            ["--start", "2021-10-01T00:01", "--end", "2021-10-02"],
            "start: 2021-10-01T00:01Z is not aligned",
        ),
        (["--start", "2021-10-01"], "give both --start and --end"),
        (["--last", "5", "--start", "2021-10-01"], "either --last or --start/--end"),
        (["--start", "yesterday", "--end", "2021-10-02"], "'yesterday' is not an ISO 8601"),
        (
            ["--pair", "DOGE/USDT", "--start", "2021-10-01", "--end", "2021-10-02"],
            "'DOGE/USDT' is not listed",
        ),
        (["--start", "2021-10-01", "--end", "2099-01-01"], "is unfinished"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    extra: list[str],
    message: str,
    replay: ReplayExchange,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = fetch_args(replay, tmp_path) + extra  # a repeated --timeframe/--pair: the last wins
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert replay.klines_requests() == []


def test_show_parquet_and_synthetic(capsys: pytest.CaptureFixture[str]) -> None:
    path = DATA / "binance_BTC-USDT_5m_0-4999.parquet"
    assert main(["data", "show", "--parquet", str(path), "--timeframe", "5m"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 5000
    synthetic = ["data", "show", "--synthetic", "--timeframe", "1h", "--start", "2024-01-01"]
    assert main([*synthetic, "--bars", "500", "--data-seed", "4"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    start = 1_704_067_200_000  # 2024-01-01T00:00Z
    expected = {"kind": "synthetic", "timeframe": "1h", "start": start, "bars": 500, "data_seed": 4}
    assert manifest["source"] == expected
    assert main(["data", "show", "--synthetic", "--timeframe", "1h"]) == 2
    assert "--synthetic needs --start and --bars" in capsys.readouterr().err


def test_the_command_line_in_a_fresh_process(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "REPROTUNE_HOME": str(tmp_path)}
        return subprocess.run(
            [sys.executable, "-m", "cluster", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=env,
        )

    helped = run("data", "fetch", "--help")
    assert helped.returncode == 0 and "--gap-policy {reject,fill}" in helped.stdout
    shown = run(
        "data", "show", "--synthetic", "--timeframe", "1h", "--start", "2024-01-01", "--bars", "100"
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["rows"] == 100
    bad = run("data", "fetch", "--exchange", "binanceus", "--pair", "BTC/USDT", "--timeframe", "1M",
              "--start", "2024-01-01", "--end", "2024-02-01")  # fmt: skip
    assert bad.returncode == 2 and "timeframe '1M' is not supported" in bad.stderr
    assert "Traceback" not in bad.stderr
    listed = run("data", "show")
    assert (
        listed.returncode == 0
        and f"candle cache {tmp_path / 'candles'}: 0 entries" in listed.stderr
    )
