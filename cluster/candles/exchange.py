"""The ccxt side: one exchange client with bounded retries, its clock, and its pages.

Errors: the NetworkError family (RequestTimeout, ExchangeNotAvailable, DDoSProtection,
RateLimitExceeded, ...) is retried with exponential backoff (a rate limit waits at
least the server's Retry-After), at most `max_retries` times, then raises
`ExchangeUnavailable` (exit 3: run again to resume; finished chunks are cached).
BadSymbol, BadRequest and NotSupported fail at once as `InvalidInput` (exit 2: the
exchange, pair or timeframe is wrong); AuthenticationError and any other exchange
error fail at once as `ExchangeFailure` (exit 1). ccxt's own rate limiter stays on.
ccxt is imported only when a client is built, so cache hits never pay for it.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cluster.candles.table import CandleColumns
from cluster.errors import Interrupted, InvalidInput

log = logging.getLogger("reprotune.candles")
T = TypeVar("T")
DEFAULT_PAGE_LIMIT = 500


class ExchangeUnavailable(Interrupted):
    """The exchange kept failing with network errors after every retry (resumable)."""


class ExchangeFailure(RuntimeError):
    """The exchange refused a request in a way no retry fixes (e.g. authentication)."""


def local_clock_ms() -> int:
    """This machine's clock in int ms UTC (the fallback when the exchange has none)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class DownloadSettings:
    """How to talk to the exchange. Execution settings: they never change the data.

    `timeout_s`: per request. `max_retries`: extra attempts per request after network
    errors; the wait before attempt k+1 is min(backoff_max_s, backoff_initial_s * 2**k).
    `page_limit`: candles per request (None: the exchange's maximum per ccxt, else 500).
    `checkpoint_s`: finished pages are written to the cache when this many seconds passed
    since the last write (0: after every page; None: when ten times the last write's
    duration passed, so that writes cost at most ~10% at any cache size), so that an
    interrupted download resumes there. `api_url`: replaces every REST base URL of
    the ccxt client (a local replay server or a mirror). `progress`: a progress bar on
    stderr (None: only on a terminal, and only once a download takes over a second).
    """

    timeout_s: float = 10.0
    max_retries: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    page_limit: int | None = None
    checkpoint_s: float | None = None
    api_url: str | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("timeout_s", "backoff_initial_s", "backoff_max_s", "checkpoint_s"):
            value = getattr(self, name)
            if value is None and name == "checkpoint_s":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(f"{name}: expected a number >= 0, got {value!r}")
        for name, low in (("max_retries", 0), ("page_limit", 1)):
            value = getattr(self, name)
            if value is None and name == "page_limit":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                problems.append(f"{name}: expected an integer >= {low}, got {value!r}")
        if problems:
            raise InvalidInput(problems)


class ExchangeClient:
    """A ccxt exchange (built lazily) with retries; counts the requests it makes."""

    def __init__(
        self,
        exchange_id: str,
        settings: DownloadSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        local_clock: Callable[[], int] = local_clock_ms,
    ) -> None:
        self.exchange_id = exchange_id
        self.settings = settings
        self.requests = 0
        self._sleep = sleep
        self._local_clock = local_clock
        self._exchange: Any = None
        self._checked: set[tuple[str, str]] = set()

    @property
    def exchange(self) -> Any:
        if self._exchange is None:
            self._exchange = _build_exchange(self.exchange_id, self.settings)
        return self._exchange

    def call(self, what: str, request: Callable[[], T]) -> T:
        """`request()` with the retry policy of the module docstring."""
        import ccxt

        attempt = 0
        while True:
            self.requests += 1
            try:
                return request()
            except (ccxt.BadRequest, ccxt.NotSupported) as error:
                raise InvalidInput(f"{what}: {type(error).__name__}: {error}") from None
            except ccxt.NetworkError as error:
                if attempt >= self.settings.max_retries:
                    raise ExchangeUnavailable(
                        f"{what}: {self.exchange_id} still failing after {attempt + 1} "
                        f"attempts ({type(error).__name__}: {_short(error)})"
                    ) from error
                delay = self._backoff(attempt, error)
                log.warning(
                    "%s: %s (%s), retry %d of %d in %.2f s",
                    what,
                    type(error).__name__,
                    _short(error),
                    attempt + 1,
                    self.settings.max_retries,
                    delay,
                )
                self._sleep(delay)
                attempt += 1
            except ccxt.BaseError as error:
                raise ExchangeFailure(f"{what}: {type(error).__name__}: {_short(error)}") from None

    def _backoff(self, attempt: int, error: Exception) -> float:
        import ccxt

        settings = self.settings
        delay = settings.backoff_initial_s * 2**attempt
        if isinstance(error, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            headers = getattr(self._exchange, "last_response_headers", None) or {}
            retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
            # An HTTP-date Retry-After does not parse: keep the exponential delay then.
            with contextlib.suppress(ValueError):
                delay = max(delay, float(str(retry_after))) if retry_after is not None else delay
        return float(min(settings.backoff_max_s, delay))

    def server_time(self) -> int:
        """The exchange's clock (ms); this machine's clock if the exchange has none or
        cannot be reached for it (logged)."""
        try:
            server_ms = self.call("fetch_time", lambda: self.exchange.fetch_time())
        except (InvalidInput, ExchangeUnavailable, ExchangeFailure) as error:
            log.warning(
                "%s: no exchange clock (%s), using the local clock", self.exchange_id, error
            )
            return self._local_clock()
        if not isinstance(server_ms, int):
            log.warning(
                "%s: fetch_time gave %r, using the local clock", self.exchange_id, server_ms
            )
            return self._local_clock()
        return server_ms

    def check_market(self, pair: str, timeframe: str) -> None:
        """Markets loaded; the pair listed; the timeframe offered; else InvalidInput.
        Checked once per client and market."""
        import ccxt

        if (pair, timeframe) in self._checked:
            return
        exchange = self.exchange
        self.call("load_markets", lambda: exchange.load_markets())
        if not exchange.has.get("fetchOHLCV"):
            raise InvalidInput(f"exchange {self.exchange_id!r} offers no candles (fetchOHLCV)")
        try:
            exchange.market(pair)
        except ccxt.BadSymbol:
            close = difflib.get_close_matches(pair, list(exchange.markets), n=3)
            hint = f" (close: {', '.join(close)})" if close else ""
            raise InvalidInput(f"pair {pair!r} is not listed on {self.exchange_id}{hint}") from None
        offered = getattr(exchange, "timeframes", None) or {}
        if offered and timeframe not in offered:
            raise InvalidInput(
                f"timeframe {timeframe!r} is not offered by {self.exchange_id} "
                f"(it offers {', '.join(offered)})"
            )
        self._checked.add((pair, timeframe))

    def page_limit(self) -> int:
        """Candles per request: the setting, capped by the exchange's documented maximum."""
        features = getattr(self.exchange, "features", None) or {}
        maximum = ((features.get("spot") or {}).get("fetchOHLCV") or {}).get("limit")
        limit = self.settings.page_limit or maximum or DEFAULT_PAGE_LIMIT
        return int(min(limit, maximum)) if maximum else int(limit)

    def page(self, pair: str, timeframe: str, since: int, limit: int) -> CandleColumns:
        """One `fetch_ohlcv(pair, timeframe, since, limit)`: the rows as the exchange sent
        them (ccxt sorts them by time; duplicates and unfinished candles stay in)."""
        rows = self.call(
            f"fetch_ohlcv {pair} {timeframe} since={since} limit={limit}",
            lambda: self.exchange.fetch_ohlcv(pair, timeframe, since=since, limit=limit),
        )
        return CandleColumns.from_rows(rows)


def _build_exchange(exchange_id: str, settings: DownloadSettings) -> Any:
    import ccxt

    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id, ccxt.exchanges, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InvalidInput(f"exchange {exchange_id!r} is not a ccxt exchange{hint}")
    exchange = getattr(ccxt, exchange_id)(
        {"enableRateLimit": True, "timeout": int(settings.timeout_s * 1000)}
    )
    if settings.api_url:
        api = exchange.urls.get("api")
        if isinstance(api, dict):
            for key, value in api.items():
                if isinstance(value, str):
                    api[key] = settings.api_url
        else:
            exchange.urls["api"] = settings.api_url
    return exchange


def _short(error: Exception, limit: int = 200) -> str:
    text = str(error)
    return text if len(text) <= limit else text[:limit] + "..."


def progress_bar(total: int, description: str, enabled: bool | None) -> Any:
    """A tqdm bar on stderr that appears only after a second (None: only on a tty)."""
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(
        total=total, desc=description, unit="candle", delay=1.0, disable=not enabled, leave=False
    )
