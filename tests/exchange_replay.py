"""A local Binance(US) REST server over known candles, for the real ccxt client offline.

It implements what ../shared/data/README.md states about the exchange:
- `GET /api/v3/klines?symbol&interval&limit&startTime&endTime`: rows whose open time
  lies in `[startTime, endTime]` (both inclusive), oldest first, at most `limit`
  (default 500, more than 1,000 is an error); without `startTime`, the newest `limit`
  rows up to `endTime` (or now). A row is the 12-field array `[openTime, "open", "high",
  "low", "close", "volume", closeTime, "quoteVolume", trades, "takerBase",
  "takerQuote", "0"]` with 8-decimal strings and `closeTime = openTime + interval - 1`.
  Candles opening after the server's clock do not exist yet; the one in progress is
  served with half its final volume (so a client that stored it would be caught).
  An unknown symbol answers HTTP 400 `{"code": -1121, "msg": "Invalid symbol."}`.
- `GET /api/v3/time` answers `{"serverTime": ms}`; `GET /api/v3/exchangeInfo` lists the
  symbols (`status: "TRADING"`, assets, precisions, PRICE_FILTER/LOT_SIZE/NOTIONAL).

Faults (`server.faults`, consumed by klines requests in arrival order): 429 with
`Retry-After`, 5xx, slow answers (client timeouts), always failing, short pages for
requests starting inside a range, rows omitted from the first answer that holds them,
a conflicting duplicate row, overlapping pages (rows before startTime, or a page's
first rows sent twice), every request failing after the first N, an answer that stalls
mid-response (headers and half the body sent, then nothing: `stalling` is set when one
starts, `release_stalls()` ends them). The server's
clock is settable (`server_time_ms`) and can fail (`faults.time_status`); `revise()`
changes a candle. Every request is
logged (`requests`, `klines_requests()`), so tests can assert what was asked for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow.parquet as pq

from cluster.candles.table import CandleColumns
from cluster.timeframes import timeframe_ms

INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")


def read_candles(path: Path) -> CandleColumns:
    """The six candle columns of a Parquet file."""
    return CandleColumns.from_table(pq.read_table(path), str(path))


@dataclass
class Faults:
    """Fault knobs; counters are decremented as klines requests consume them."""

    rate_limited: int = 0
    retry_after: str = "0"
    server_errors: int = 0
    server_error_status: int = 503
    slow: int = 0
    slow_delay_s: float = 0.6
    always_status: int | None = None
    always_body: Any = "<html>unavailable</html>"
    short_page_rows: int | None = None
    short_page_from: int = 0
    short_page_until: int = 2**62
    omitted_once: set[int] = field(default_factory=set)
    conflicting_duplicate_at: int | None = None
    overlap_rows: int = 0
    repeated_rows: int = 0
    fail_after_requests: int | None = None
    time_status: int | None = None
    stall_after_requests: int | None = None  # klines answers sent whole before stalls begin
    stalls: int = 0  # how many answers then stall mid-response


@dataclass(frozen=True)
class Request:
    path: str
    params: dict[str, str]


@dataclass
class _Market:
    base: str
    quote: str
    candles: dict[str, CandleColumns]


class ReplayExchange:
    """Serve `markets` ({"BTC/USDT": {"5m": CandleColumns, ...}}) on 127.0.0.1."""

    def __init__(
        self, markets: dict[str, dict[str, CandleColumns]], *, listed_only: tuple[str, ...] = ()
    ):
        self.markets: dict[str, _Market] = {}
        for pair, by_interval in markets.items():
            base, quote = pair.split("/")
            self.markets[base + quote] = _Market(base, quote, dict(by_interval))
        for pair in listed_only:  # listed in exchangeInfo, but klines say "Invalid symbol"
            base, quote = pair.split("/")
            self.markets[base + quote] = _Market(base, quote, {})
        self._unserved = {pair.replace("/", "") for pair in listed_only}
        self.faults = Faults()
        self.server_time_ms: int | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self.stalling = threading.Event()  # set when an answer starts to stall
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control -------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v3"

    def start(self) -> ReplayExchange:
        handler = type("Handler", (_Handler,), {"replay": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def release_stalls(self) -> None:
        self._release.set()

    def stop(self) -> None:
        self.release_stalls()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def now(self) -> int:
        return self.server_time_ms if self.server_time_ms is not None else time.time_ns() // 10**6

    def klines_requests(self) -> list[dict[str, str]]:
        with self._lock:
            return [r.params for r in self.requests if r.path.endswith("/klines")]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def revise(self, pair: str, interval: str, timestamp: int, **values: float) -> None:
        """Change one candle's values (the exchange revising history)."""
        candles = self.markets[pair.replace("/", "")].candles[interval]
        index = int(np.searchsorted(candles.timestamp, timestamp))
        assert candles.timestamp[index] == timestamp, "no candle at that time"
        columns = {
            name: getattr(candles, name).copy()
            for name in ("timestamp", "open", "high", "low", "close", "volume")
        }
        for name, value in values.items():
            columns[name][index] = value
        self.markets[pair.replace("/", "")].candles[interval] = CandleColumns(**columns)

    # --- answers ---------------------------------------------------------------
    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests.append(Request(path, params))
        if path == "/api/v3/time":
            if self.faults.time_status is not None:
                return self.faults.time_status, {}, "<html>no clock</html>"
            return 200, {}, {"serverTime": self.now()}
        if path == "/api/v3/ping":
            return 200, {}, {}
        if path == "/api/v3/exchangeInfo":
            return 200, {}, self._exchange_info()
        if path == "/api/v3/klines":
            fault = self._consume_fault()
            if fault is not None:
                return fault
            return self._klines(params)
        return 404, {}, {"code": -1, "msg": f"unknown path {path}"}

    def take_stall(self) -> bool:
        """Whether this klines answer stalls mid-response (consumes the knob)."""
        with self._lock:
            faults = self.faults
            if faults.stall_after_requests is None or faults.stalls <= 0:
                return False
            if faults.stall_after_requests > 0:
                faults.stall_after_requests -= 1
                return False
            faults.stalls -= 1
            return True

    def stall(self, wfile: Any, payload: bytes) -> None:
        """Send half the body, then nothing until released (or 60 s, a bound)."""
        wfile.write(payload[: len(payload) // 2])
        wfile.flush()
        self.stalling.set()
        self._release.wait(60)

    def _consume_fault(self) -> tuple[int, dict[str, str], Any] | None:
        with self._lock:
            faults = self.faults
            if faults.fail_after_requests is not None:
                if faults.fail_after_requests <= 0:
                    return 503, {}, "<html>unavailable</html>"
                faults.fail_after_requests -= 1
            if faults.always_status is not None:
                return faults.always_status, {}, faults.always_body
            if faults.rate_limited > 0:
                faults.rate_limited -= 1
                body = {"code": -1003, "msg": "Too many requests."}
                return 429, {"Retry-After": faults.retry_after}, body
            if faults.server_errors > 0:
                faults.server_errors -= 1
                return faults.server_error_status, {}, "<html>bad gateway</html>"
            if faults.slow > 0:
                faults.slow -= 1
                delay = faults.slow_delay_s
            else:
                delay = 0.0
        if delay:
            time.sleep(delay)
        return None

    def _klines(self, params: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        symbol, interval = params.get("symbol", ""), params.get("interval", "")
        market = self.markets.get(symbol)
        if market is None or symbol in self._unserved:
            return 400, {}, {"code": -1121, "msg": "Invalid symbol."}
        if interval not in INTERVALS or interval not in market.candles:
            return 400, {}, {"code": -1120, "msg": "Invalid interval."}
        limit = int(params.get("limit", 500))
        if not 1 <= limit <= 1000:
            return 400, {}, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."}
        step = timeframe_ms(interval)
        candles = market.candles[interval]
        ts = candles.timestamp
        now = self.now()
        visible = int(np.searchsorted(ts, now, side="right"))  # open time <= now
        end_time = int(params["endTime"]) if "endTime" in params else now
        stop = min(visible, int(np.searchsorted(ts, end_time, side="right")))
        if "startTime" in params:
            start_time = int(params["startTime"])
            first = int(np.searchsorted(ts, start_time))
            indices = list(range(first, min(stop, first + limit)))
            indices = self._page_faults(indices, start_time, candles)
        else:
            indices = list(range(max(0, stop - limit), stop))
        rows = [_kline(candles, i, step, now) for i in indices]
        duplicate_at = self.faults.conflicting_duplicate_at
        for row in list(rows):
            if row[0] == duplicate_at:
                twin = list(row)
                twin[4] = f"{float(row[4]) + 1.0:.8f}"
                rows.insert(rows.index(row) + 1, twin)
        return 200, {}, rows

    def _page_faults(
        self, indices: list[int], start_time: int, candles: CandleColumns
    ) -> list[int]:
        faults = self.faults
        if (
            faults.short_page_rows is not None
            and faults.short_page_from <= start_time < faults.short_page_until
        ):
            indices = indices[: faults.short_page_rows]
        if faults.repeated_rows and indices:
            indices = indices[: faults.repeated_rows] + indices
        if faults.overlap_rows and indices:
            indices = list(range(max(0, indices[0] - faults.overlap_rows), indices[0])) + indices
        with self._lock:
            omitted = {i for i in indices if int(candles.timestamp[i]) in faults.omitted_once}
            faults.omitted_once -= {int(candles.timestamp[i]) for i in omitted}
        return [i for i in indices if i not in omitted]

    def _exchange_info(self) -> dict[str, Any]:
        symbols = [
            {
                "symbol": symbol,
                "status": "TRADING",
                "baseAsset": market.base,
                "baseAssetPrecision": 8,
                "quoteAsset": market.quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "permissions": ["SPOT"],
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.01000000",
                        "maxPrice": "1000000.00000000",
                        "tickSize": "0.01000000",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.00001000",
                        "maxQty": "9000.00000000",
                        "stepSize": "0.00001000",
                    },
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": "10.00000000",
                        "applyMinToMarket": True,
                        "maxNotional": "9000000.00000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    },
                ],
            }
            for symbol, market in self.markets.items()
        ]
        return {
            "timezone": "UTC",
            "serverTime": self.now(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }


def _decimal(value: float) -> str:
    text = f"{value:.8f}"
    assert float(text) == value, f"{value!r} does not survive 8 decimals"
    return text


def _kline(candles: CandleColumns, i: int, step: int, now: int) -> list[Any]:
    open_time = int(candles.timestamp[i])
    o, h, low, c, v = (
        float(getattr(candles, n)[i]) for n in ("open", "high", "low", "close", "volume")
    )
    if open_time + step > now:  # in progress: the volume so far
        v = v / 2
    return [
        open_time,
        _decimal(o),
        _decimal(h),
        _decimal(low),
        _decimal(c),
        _decimal(v),
        open_time + step - 1,
        f"{v * c:.8f}",
        100,
        f"{v / 2:.8f}",
        f"{v * c / 2:.8f}",
        "0",
    ]


class _Handler(BaseHTTPRequestHandler):
    replay: ReplayExchange

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = {key: values[-1] for key, values in parse_qs(url.query).items()}
        status, headers, body = self.replay.answer(url.path, params)
        payload = (body if isinstance(body, str) else json.dumps(body)).encode()
        stalls = url.path.endswith("/klines") and status == 200 and self.replay.take_stall()
        try:
            self.send_response(status)
            content_type = "text/html" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if stalls:
                self.replay.stall(self.wfile, payload)
                return
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def replay_exchange(
    markets: dict[str, dict[str, CandleColumns]], **options: Any
) -> Iterator[ReplayExchange]:
    """A started server, stopped on exit whatever happened."""
    server = ReplayExchange(markets, **options).start()
    try:
        yield server
    finally:
        server.stop()
