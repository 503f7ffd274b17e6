"""Job files (TOML) and seed lists in, a validated `JobSpec` out, or every problem at once.

`load_job_file(path)` reads a job file; `parse_job(table, ...)` checks a parsed table;
`parse_seeds(text)` reads the command line's `--seeds 42,123,456` / `--seeds 42..73`.
Each problem names its field (`searcher.xi`, `seeds[2]`, `strategy.space.pierce_depth`)
and says what is wrong; unknown keys come with a did-you-mean hint. Nothing is
scheduled or written here: `InvalidInput` carries the list (exit code 2).

The fields are documented for users in docs/jobs.md; keep the two in step.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import numbers
import os
import tomllib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster.candles.cleaning import check_gap_policy
from cluster.candles.sources import CcxtSource, source_from_dict
from cluster.errors import InvalidInput
from cluster.job.out_of_sample import parse_holdout, parse_walk_forward
from cluster.job.space import build_space, overrides_of
from cluster.job.spec import (
    DEFAULT_SEEDS,
    MAX_ITERATIONS,
    MAX_SEED,
    MAX_SEEDS,
    DataSpec,
    Execution,
    JobSpec,
    LastCandles,
)
from search.registry import SEARCHERS, make_searcher, option_problems, searcher_defaults
from search.space import IntRange, Space
from trainable.declaration import DEFAULT_FEE, DEFAULT_MIN_TRADES, DEFAULT_SLIPPAGE, SCORE_PENALTY
from trainable.strategies import DEFAULT_STRATEGY, get_strategy

TOP_KEYS = (
    "name",
    "data",
    "strategy",
    "searcher",
    "iterations",
    "batch_size",
    "seeds",
    "fee",
    "slippage",
    "min_trades",
    "holdout",
    "walk_forward",
    "execution",
)
DATA_CLEANING_KEYS = ("gap_policy", "max_fill_share")
EXECUTION_KEYS = (
    "max_concurrent_trials",
    "cpus_per_trial",
    "max_failures",
    "storage_path",
    "chunk_size",
    "suggestion_processes",
)
MAX_JOB_FILE_BYTES = 1_000_000
MAX_NAME_LENGTH = 200


def load_job_file(path: str | os.PathLike[str], *, seeds: tuple[int, ...] | None = None) -> JobSpec:
    """The job of a TOML file; `seeds` (from the command line) replaces its seed list.

    Relative paths inside it (a Parquet file) are read from the file's directory.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"job file {str(path)!r}: no such file")
    if path.stat().st_size > MAX_JOB_FILE_BYTES:
        raise InvalidInput(
            f"job file {str(path)!r}: {path.stat().st_size:,} bytes is not a job file "
            f"(at most {MAX_JOB_FILE_BYTES:,})"
        )
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise InvalidInput(f"job file {str(path)!r}: not UTF-8 text ({error.reason})") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"job file {str(path)!r} is not valid TOML: {error}") from None
    return parse_job(table, base_dir=path.resolve().parent, default_name=path.stem, seeds=seeds)


def parse_job(
    table: Mapping[str, Any],
    *,
    base_dir: str | Path = ".",
    default_name: str | None = None,
    seeds: tuple[int, ...] | None = None,
) -> JobSpec:
    """The `JobSpec` a parsed job file describes (see the module docstring)."""
    problems: list[str] = []
    if not table:
        raise InvalidInput("the job file is empty: it needs at least [data] and iterations")
    problems += _unknown(table, TOP_KEYS, "")
    name = _name(table.get("name", default_name), problems)
    data = _data(table.get("data"), problems)
    iterations = _int(table, "iterations", problems, low=1, high=MAX_ITERATIONS, required=True)
    fee = _fraction(table, "fee", DEFAULT_FEE, problems)
    slippage = _fraction(table, "slippage", DEFAULT_SLIPPAGE, problems)
    min_trades = _int(table, "min_trades", problems, low=0, high=2**31 - 1)
    min_trades = DEFAULT_MIN_TRADES if min_trades is None else min_trades
    if seeds is None:
        seeds = check_seeds(table.get("seeds", list(DEFAULT_SEEDS)), "seeds", problems)
    strategy_name, space = _strategy(table.get("strategy", {}), problems)
    execution = _execution(table.get("execution", {}), problems)
    kind, options = _searcher(table, space, iterations, problems)
    holdout = parse_holdout(table.get("holdout"), data.source if data else None, problems)
    walk_forward = parse_walk_forward(table.get("walk_forward"), problems)
    if problems:
        raise InvalidInput(problems)
    assert data is not None and space is not None and iterations is not None
    assert kind is not None and options is not None and seeds is not None
    return JobSpec(
        data=data,
        strategy=strategy_name,
        space=space,
        searcher=kind,
        searcher_options=options,
        iterations=iterations,
        fee=fee,
        slippage=slippage,
        min_trades=min_trades,
        seeds=tuple(seeds),
        holdout=holdout,
        walk_forward=walk_forward,
        name=name,
        execution=execution,
        base_dir=str(base_dir),
    )


def table_of_resolved(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved spec (`JobSpec.resolved()`, as recorded) as a job-file table, so that
    `parse_job` checks it the same way; every default is explicit in it."""
    options = dict(resolved["searcher"]["options"])
    table: dict[str, Any] = {
        "data": {
            **resolved["data"]["source"],
            "gap_policy": resolved["data"]["gap_policy"],
            "max_fill_share": resolved["data"]["max_fill_share"],
        },
        "strategy": {
            "name": resolved["strategy"]["name"],
            "space": overrides_of(Space.from_dict(resolved["strategy"]["space"])),
        },
        "iterations": resolved["iterations"],
        "fee": resolved["fee"],
        "slippage": resolved["slippage"],
        "min_trades": resolved["min_trades"],
    }
    for optional in ("holdout", "walk_forward"):
        if optional in resolved:
            table[optional] = dict(resolved[optional])
    if resolved["searcher"]["kind"] == "bayesian":
        table["batch_size"] = options.pop("batch_size")
    table["searcher"] = {"kind": resolved["searcher"]["kind"], **options}
    return table


# -- seeds ------------------------------------------------------------------------------


def parse_seeds(text: str) -> tuple[int, ...]:
    """`42,123,456`, `42..73` (inclusive) or a mix, as the command line gives them."""
    problems: list[str] = []
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        low, dots, high = part.partition("..")
        try:
            if dots:
                first, last = int(low), int(high)
                if last < first:
                    problems.append(f"--seeds: range {part!r} runs backwards")
                    continue
                if last - first >= MAX_SEEDS:
                    problems.append(f"--seeds: range {part!r} has more than {MAX_SEEDS} seeds")
                    continue
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            problems.append(
                f"--seeds: {part!r} is not a seed or a range (use e.g. 42,123,456 or 42..73)"
            )
    checked = check_seeds(seeds, "--seeds", problems) if not problems else None
    if problems or checked is None:
        raise InvalidInput(problems)
    return checked


def check_seeds(value: object, where: str, problems: list[str]) -> tuple[int, ...] | None:
    """Seeds as a tuple, or None after appending every problem to `problems`."""
    if not isinstance(value, list | tuple):
        problems.append(f"{where}: expected a list of integers, got {value!r}")
        return None
    found: list[str] = []
    if not value:
        found.append(f"{where}: the list is empty; give at least one seed")
    if len(value) > MAX_SEEDS:
        found.append(f"{where}: {len(value):,} seeds, at most {MAX_SEEDS} per ensemble")
    for i, seed in enumerate(value):
        if isinstance(seed, bool) or not isinstance(seed, int):
            found.append(f"{where}[{i}]: expected an integer, got {seed!r}")
        elif not 0 <= seed <= MAX_SEED:
            found.append(f"{where}[{i}]: {seed} is outside [0, {MAX_SEED}]")
    counts = Counter(s for s in value if isinstance(s, int) and not isinstance(s, bool))
    repeated = sorted(s for s, n in counts.items() if n > 1)
    if repeated and len(value) <= MAX_SEEDS:
        found.append(f"{where}: repeated seeds {', '.join(map(repr, repeated))}")
    problems += found
    return None if found else tuple(int(s) for s in value)


# -- sections ---------------------------------------------------------------------------


def _unknown(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> list[str]:
    problems = []
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}{key}: unknown key{hint}; the keys are {', '.join(known)}")
    return problems


def _name(value: object, problems: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        problems.append(f"name: expected a text of 1 to {MAX_NAME_LENGTH} characters")
        return None
    return value


def _int(
    table: Mapping[str, Any],
    key: str,
    problems: list[str],
    *,
    low: int,
    high: int,
    required: bool = False,
    where: str = "",
) -> int | None:
    if key not in table:
        if required:
            problems.append(f"{where}{key}: missing (an integer in [{low}, {high:,}])")
        return None
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{where}{key}: expected an integer, got {value!r}")
        return None
    if not low <= value <= high:
        problems.append(f"{where}{key}: {value:,} is outside [{low}, {high:,}]")
        return None
    return value


def _fraction(table: Mapping[str, Any], key: str, default: float, problems: list[str]) -> float:
    value = table.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0.0 <= value < 1.0
    ):
        problems.append(f"{key}: expected a fraction in [0, 1) (0.001 is 0.1%), got {value!r}")
        return default
    return float(value)


def _data(value: object, problems: list[str]) -> DataSpec | None:
    if value is None:
        problems.append("data: missing; a [data] table names the candles (kind = ...)")
        return None
    if not isinstance(value, Mapping):
        problems.append(f"data: expected a table, got {value!r}")
        return None
    fields = {k: _time_text(v) for k, v in value.items() if k not in DATA_CLEANING_KEYS}
    gap_policy = value.get("gap_policy", "reject")
    max_fill_share = value.get("max_fill_share", 0.0)
    found: list[str] = []
    try:
        check_gap_policy(gap_policy, max_fill_share)
    except InvalidInput as error:
        found += [f"data.{p}" for p in error.problems]
    source: Any = None
    try:
        if fields.get("kind") == "ccxt" and "last_candles" in fields:
            source = _last_candles(fields)
        else:
            source = source_from_dict(fields)
    except InvalidInput as error:
        found += [f"data: {p}" for p in error.problems]
    problems += found
    if found:
        return None
    return DataSpec(source, str(gap_policy), float(max_fill_share))


def _last_candles(fields: Mapping[str, Any]) -> LastCandles:
    extra = sorted(set(fields) - {"kind", "exchange", "pair", "timeframe", "last_candles"})
    if extra:
        raise InvalidInput(f"ccxt source: last_candles excludes {', '.join(extra)}")
    count = fields["last_candles"]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 50_000_000:
        raise InvalidInput(f"ccxt source: last_candles must be an integer >= 1, got {count!r}")
    missing = [k for k in ("exchange", "pair", "timeframe") if k not in fields]
    if missing:
        raise InvalidInput(f"ccxt source: missing field(s) {', '.join(missing)}")
    from cluster.timeframes import timeframe_ms

    timeframe = fields["timeframe"]
    step = timeframe_ms(timeframe) if isinstance(timeframe, str) else 60_000
    CcxtSource(fields["exchange"], fields["pair"], timeframe, 0, step)  # checks the fields
    return LastCandles(fields["exchange"], fields["pair"], timeframe, count)


def _time_text(value: object) -> object:
    """TOML's own dates and datetimes as ISO text (a datetime without offset is UTC)."""
    if isinstance(value, dt.datetime | dt.date) and not isinstance(value, dt.time):
        return value.isoformat()
    return value


def _strategy(value: object, problems: list[str]) -> tuple[str, Space | None]:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        problems.append(f"strategy: expected a table (name, space), got {value!r}")
        return DEFAULT_STRATEGY, None
    problems += _unknown(value, ("name", "space"), "strategy.")
    name = value.get("name", DEFAULT_STRATEGY)
    if not isinstance(name, str):
        problems.append(f"strategy.name: expected a strategy's name, got {name!r}")
        return DEFAULT_STRATEGY, None
    try:
        strategy = get_strategy(name)
    except KeyError as error:
        problems.append(f"strategy.name: {error.args[0]}")
        return str(name), None
    space, found = build_space(strategy, value.get("space", {}), "strategy.space")
    problems += found
    return name, space


def _execution(value: object, problems: list[str]) -> Execution:
    if not isinstance(value, Mapping):
        problems.append(f"execution: expected a table, got {value!r}")
        return Execution()
    problems += _unknown(value, EXECUTION_KEYS, "execution.")
    concurrent = _int(value, "max_concurrent_trials", problems, low=1, high=100_000,
                      where="execution.")  # fmt: skip
    failures = _int(value, "max_failures", problems, low=0, high=1000, where="execution.")
    chunk = _int(value, "chunk_size", problems, low=1, high=1_000_000, where="execution.")
    processes = _int(value, "suggestion_processes", problems, low=1, high=256,
                     where="execution.")  # fmt: skip
    cpus = value.get("cpus_per_trial", 1.0)
    if (
        isinstance(cpus, bool)
        or not isinstance(cpus, int | float)
        or not math.isfinite(cpus)
        or not 0 < cpus <= 1024
    ):
        problems.append(f"execution.cpus_per_trial: expected a number in (0, 1024], got {cpus!r}")
        cpus = 1.0
    storage = value.get("storage_path")
    if storage is not None and (not isinstance(storage, str) or not storage.strip()):
        problems.append(f"execution.storage_path: expected a directory path, got {storage!r}")
        storage = None
    return Execution(
        max_concurrent_trials=concurrent,
        cpus_per_trial=float(cpus),
        max_failures=3 if failures is None else failures,
        storage_path=storage,
        chunk_size=chunk,
        suggestion_processes=processes,
    )


def _searcher(
    table: Mapping[str, Any], space: Space | None, iterations: int | None, problems: list[str]
) -> tuple[str | None, dict[str, Any] | None]:
    value = table.get("searcher", "bayesian")
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping):
        problems.append(f"searcher: expected a name or a table (kind, options), got {value!r}")
        return None, None
    kind = value.get("kind", "bayesian")
    options = {k: v for k, v in value.items() if k != "kind"}
    found = [f"searcher: {p}" for p in option_problems(str(kind), options)]
    if "batch_size" in options and kind in SEARCHERS:
        found.append("searcher.batch_size: set batch_size at the top level of the job file")
    batch_size = _int(table, "batch_size", found, low=1, high=100_000)
    if batch_size is not None and kind != "bayesian":
        found.append(
            f"batch_size: only the bayesian searcher has batches; the {kind} searcher "
            "suggests every trial independently"
        )
    if found:
        problems += found
        return None, None
    resolved = {**searcher_defaults(kind), **options}
    if kind == "bayesian" and batch_size is not None:
        resolved["batch_size"] = batch_size
    if kind == "grid" and space is not None:
        resolved["values"] = _grid_values(resolved["values"], space)
    if space is None or iterations is None:
        return kind, resolved
    try:  # the searcher checks its own option values and budget
        make_searcher(
            kind, space=space, seed=0, iterations=iterations, invalid_score=SCORE_PENALTY,
            **resolved,
        )  # fmt: skip
    except (ValueError, TypeError) as error:
        problems.append(f"searcher: {error}")
        return None, None
    return kind, resolved


def _grid_values(values: object, space: Space) -> object:
    """Explicit grid values sorted and deduplicated (their order does not change the
    grid), so that it does not change the spec's identity either."""
    if not isinstance(values, Mapping):
        return values
    canonical: dict[str, object] = {}
    for name, listed in values.items():
        if (
            name in space
            and isinstance(listed, list)
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in listed)
        ):
            cast = int if isinstance(space[name], IntRange) else float
            if cast is float or all(isinstance(v, numbers.Integral) for v in listed):
                canonical[name] = sorted({cast(v) for v in listed})
                continue
        canonical[name] = listed
    return canonical
