"""The job spec: a frozen, validated description of one search, and its identity.

A job is a market's candles, a strategy and its search space, a searcher with its
options, a budget of `iterations` trials per seed, the trading costs, and a list of
seeds; optionally a holdout range and walk-forward windows (cluster.job.out_of_sample).
`cluster.job.parse` builds a `JobSpec` from a TOML job file (docs/jobs.md describes the
fields); every check happens there, so a `JobSpec` is always valid.

Identity (`spec_id`): the sha256 of the canonical JSON of `resolved()`, the spec with
every default filled in, "the last N candles" replaced by the fixed range they meant
when the job ran, and the code's RECORDS_VERSION. It leaves out the seed list and the
execution-only settings (`name`, `execution`, `base_dir`): they decide where and how
fast a search runs, never what it finds. A seed's job is (spec_id, seed).

Canonical JSON: keys sorted, no spaces, ASCII only, ints as integers and floats in
Python's shortest round-trip form (`repr`), so equal specs give equal bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cluster.candles.sources import ParquetSource, Source
from cluster.job.out_of_sample import Holdout, WalkForward
from cluster.versions import RECORDS_VERSION
from search.space import Space
from trainable.backtest import JobConstants
from trainable.declaration import SCORE_PENALTY
from trainable.strategies import Strategy, get_strategy

DEFAULT_SEEDS = (42,)
MAX_SEED = 2**31 - 1  # seeds are recorded as PostgreSQL integers
MAX_SEEDS = 1024
MAX_ITERATIONS = 1_000_000


@dataclass(frozen=True)
class LastCandles:
    """ "The last `count` candles" of a ccxt market: resolved to a fixed range once."""

    exchange: str
    pair: str
    timeframe: str
    count: int


@dataclass(frozen=True)
class DataSpec:
    """Where candles come from and how gaps are treated (see cluster.candles)."""

    source: Source | LastCandles
    gap_policy: str = "reject"
    max_fill_share: float = 0.0

    @property
    def timeframe(self) -> str:
        return self.source.timeframe


@dataclass(frozen=True)
class Execution:
    """How a run executes: never part of a job's identity.

    `max_concurrent_trials` None means as many as the cluster has CPUs for;
    `max_failures` is the retry budget of a trial that fails for infrastructure reasons
    (a worker or node died); `storage_path` is where Tune keeps its logs (a directory
    every node can reach on a multi-node cluster; resume never reads it); `chunk_size`
    caps the candidates one Tune trial evaluates (None: about half a second of work,
    spread over the trial slots; 1: one candidate per Tune trial);
    `suggestion_processes` is the size of a Bayesian job's pool of pinned suggestion
    processes on the driver's host (None: the driver's free cores).
    """

    max_concurrent_trials: int | None = None
    cpus_per_trial: float = 1.0
    max_failures: int = 3
    storage_path: str | None = None
    chunk_size: int | None = None
    suggestion_processes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_concurrent_trials": self.max_concurrent_trials,
            "cpus_per_trial": self.cpus_per_trial,
            "max_failures": self.max_failures,
            "storage_path": self.storage_path,
            "chunk_size": self.chunk_size,
            "suggestion_processes": self.suggestion_processes,
        }


@dataclass(frozen=True)
class JobSpec:
    """A validated job (see the module docstring); build it with `cluster.job.parse`."""

    data: DataSpec
    strategy: str
    space: Space
    searcher: str
    searcher_options: Mapping[str, Any]
    iterations: int
    fee: float
    slippage: float
    min_trades: int
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    holdout: Holdout | None = None
    walk_forward: WalkForward | None = None
    name: str | None = None
    execution: Execution = field(default_factory=Execution)
    base_dir: str = "."

    # -- identity ---------------------------------------------------------------------
    @property
    def is_resolved(self) -> bool:
        return not isinstance(self.data.source, LastCandles)

    def resolved(self) -> dict[str, Any]:
        """The resolved spec as plain JSON-able data (what `spec_id` hashes).

        `holdout` and `walk_forward` are in it only when the job has them, so that the
        jobs without them keep their identity (cluster.job.out_of_sample).
        """
        if isinstance(self.data.source, LastCandles):
            raise ValueError("resolve the data range first (cluster.job.data.resolve_data)")
        optional: dict[str, Any] = {}
        if self.holdout is not None:
            optional["holdout"] = self.holdout.to_dict()
        if self.walk_forward is not None:
            optional["walk_forward"] = self.walk_forward.to_dict()
        return {
            "records_version": RECORDS_VERSION,
            "data": {
                "source": self.data.source.to_dict(),
                "gap_policy": self.data.gap_policy,
                "max_fill_share": self.data.max_fill_share,
            },
            "strategy": {"name": self.strategy, "space": self.space.to_dict()},
            "searcher": {"kind": self.searcher, "options": _plain(self.searcher_options)},
            "iterations": self.iterations,
            "fee": self.fee,
            "slippage": self.slippage,
            "min_trades": self.min_trades,
            "score_penalty": SCORE_PENALTY,
            **optional,
        }

    @property
    def spec_id(self) -> str:
        return spec_id_of(self.resolved())

    # -- what the driver needs -----------------------------------------------------------
    def strategy_object(self) -> Strategy:
        return get_strategy(self.strategy)

    def constants(self) -> JobConstants:
        from cluster.timeframes import timeframe_minutes

        return JobConstants(
            timeframe_minutes=timeframe_minutes(self.data.timeframe),
            fee=self.fee,
            slippage=self.slippage,
            min_trades=self.min_trades,
        )

    def data_source(self) -> Source:
        """The resolved source, a relative Parquet path read from `base_dir`."""
        source = self.data.source
        if isinstance(source, LastCandles):
            raise ValueError("resolve the data range first (cluster.job.data.resolve_data)")
        if isinstance(source, ParquetSource) and not Path(source.path).is_absolute():
            return replace(source, path=str(Path(self.base_dir) / source.path))
        return source

    def with_seeds(self, seeds: tuple[int, ...]) -> JobSpec:
        return replace(self, seeds=tuple(seeds))


def canonical_json(value: Any) -> str:
    """The canonical JSON text of plain data (see the module docstring)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def spec_id_of(resolved: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(resolved).encode("ascii")).hexdigest()


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, recursively (canonical JSON input)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
