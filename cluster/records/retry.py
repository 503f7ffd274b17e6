"""Which database errors are worth another attempt, and how many attempts there are.

Retrying a write is safe because every write is an idempotent upsert: a transaction
whose commit was lost in a dropped connection is retried and finds its own rows (a
no-op), never a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg_pool import PoolTimeout

from cluster.records.types import RecordsUnavailable

T = TypeVar("T")

# SQLSTATEs that end one session or transaction but not the next one.
TRANSIENT_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is restarting (pg_ctl restart -m fast)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: the server is starting up
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """A bounded budget: at most `attempts` tries, sleeping `first_delay_s`, doubling up
    to `max_delay_s`, between them; each try waits at most `connect_timeout_s` for a
    connection. The defaults ride out a restart of ~20 s."""

    attempts: int = 10
    first_delay_s: float = 0.1
    max_delay_s: float = 5.0
    connect_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if not 0 <= self.first_delay_s <= self.max_delay_s:
            raise ValueError("need 0 <= first_delay_s <= max_delay_s")
        if self.connect_timeout_s <= 0:
            raise ValueError("connect_timeout_s must be > 0")

    def delays(self) -> Iterator[float]:
        """The sleeps between attempts (attempts - 1 of them)."""
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


def is_transient(error: BaseException) -> bool:
    """A lost or refused connection, a server shutdown, a serialization failure or a
    deadlock: the same transaction may succeed on another try."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = error.sqlstate
    if sqlstate is None:  # raised by the client: the connection failed or broke
        return True
    return sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08")


def call_with_retry(
    action: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    before_retry: Callable[[], None] | None = None,
) -> T:
    """Run `action` until it succeeds, a non-transient error is raised, or the budget is
    spent; then RecordsUnavailable names `what`, the attempts and the last error."""
    delays = policy.delays()
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            if attempt > 1 and before_retry is not None:
                before_retry()
            return action()
        except Exception as error:
            if not is_transient(error):
                raise
            delay = next(delays, None)
            if delay is None:
                elapsed = time.monotonic() - started
                raise RecordsUnavailable(
                    f"gave up on {what} after {attempt} attempts in {elapsed:.1f} s; last "
                    f"error: {type(error).__name__}: {' '.join(str(error).split())}"
                ) from error
            time.sleep(delay)
