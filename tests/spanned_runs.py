"""One job run at several max_concurrent_trials with an instrumented strategy, for the
out-of-sample pipeline tests: what each run recorded, and what its strategy saw.

`spanned_runs` registers the production strategy under `name`, writing the span of
every candle series it evaluates (tests/job_strategies.py `spanning`), runs the job once
per concurrency into a fresh database of its own, and yields {concurrency: SpannedRun};
the databases are dropped afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import FIXTURE_CANDLES, fresh_database
from job_strategies import spanning

from cluster.job.driver import run_job
from cluster.job.parse import parse_job
from trainable.strategies import get_strategy


def read_spans(path: Path) -> list[tuple[int, int, int]]:
    """What a `spanning` strategy wrote: (first open, last open, length) per evaluation."""
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()]  # type: ignore[misc]


@dataclass(frozen=True)
class SpannedRun:
    ensemble: str
    database: str
    spans: list[tuple[int, int, int]]  # what the strategy evaluated during the run, in order
    printed: str


def spanned_runs(
    pg_session: Any,
    tmp_path_factory: Any,
    job: Callable[[str], dict],
    name: str,
    *,
    chunk_size: int,
    concurrencies: tuple[int, ...] = (1, 4),
) -> Iterator[dict[int, SpannedRun]]:
    """The runs of `job(name)` (a job table over the fixture candles), one per
    concurrency; `name` is part of the spec_id, so every run has the same spec."""
    from trainable.backtest import warm_up

    warm_up()
    spans = tmp_path_factory.mktemp("spans") / "spans.txt"
    spanning(get_strategy("key_level_reversal"), spans, name)
    found: dict[int, SpannedRun] = {}
    databases = []
    try:
        for concurrent in concurrencies:
            base = tmp_path_factory.mktemp(f"{name}{concurrent}")
            before = len(read_spans(spans))
            database = fresh_database(pg_session)
            databases.append(database)
            url = next(database)
            out = io.StringIO()
            ensemble = run_job(
                parse_job(job(name), base_dir=str(FIXTURE_CANDLES.parent)),
                database_url=url, storage_path=str(base / "tune"), progress=False, out=out,
                max_concurrent_trials=concurrent, chunk_size=chunk_size,
            )  # fmt: skip
            found[concurrent] = SpannedRun(
                str(ensemble), url, read_spans(spans)[before:], out.getvalue()
            )
        yield found
    finally:
        for database in databases:
            database.close()  # drops it
