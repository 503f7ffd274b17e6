"""`python -m cluster run JOB.toml`: run a job's seeds as a new ensemble and record it."""

from __future__ import annotations

import argparse
from typing import Any

from cluster.records.command_options import add_database_argument, records_command

HELP = "run a job file's seeds as one ensemble on Ray, recording every trial"

EPILOG = """\
The job file's fields are described in docs/jobs.md. Without --address (or RAY_ADDRESS)
a local Ray starts for the run; without --database-url (or DATABASE_URL) an embedded
PostgreSQL does. Exit codes: 0 complete, 2 invalid input (nothing was run or recorded),
3 interrupted (finish it with `resume ENSEMBLE`), 1 anything else."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("job", metavar="JOB.toml", help="the job file")
    add_execution_arguments(parser)
    parser.add_argument(
        "--seeds",
        metavar="LIST",
        help="seeds instead of the job file's: 42,123,456 or 42..73 (inclusive) or a mix",
    )
    add_database_argument(parser)


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that change how a run executes, never what it records."""
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="Ray cluster to run on (default: $RAY_ADDRESS, else a new local Ray)",
    )
    parser.add_argument(
        "--max-concurrent-trials",
        type=_positive,
        metavar="N",
        help="trials running at once (default: the job file's, else one per CPU)",
    )
    parser.add_argument(
        "--storage-path",
        metavar="DIR",
        help="where Tune keeps its logs (shared storage on a multi-node cluster); resume "
        "never reads it",
    )
    parser.add_argument(
        "--chunk-size",
        type=_positive,
        metavar="N",
        help="at most N candidates per Tune trial (default: about half a second of work; 1: "
        "one backtest per Tune trial); never changes a record",
    )
    parser.add_argument(
        "--suggestion-processes",
        type=_positive,
        metavar="N",
        help="pinned processes computing Bayesian suggestions on this host (default: the "
        "free cores)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress display while it runs"
    )
    parser.add_argument(
        "--exchange-url",
        metavar="URL",
        help="base URL replacing a ccxt exchange's REST API (a mirror or a local replay)",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="start the Ray dashboard (on 127.0.0.1) with a local Ray",
    )


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "database_url": args.database_url,
        "ray_address": args.address,
        "max_concurrent_trials": args.max_concurrent_trials,
        "storage_path": args.storage_path,
        "chunk_size": args.chunk_size,
        "suggestion_processes": args.suggestion_processes,
        "progress": not args.no_progress,
        "dashboard": args.dashboard,
        "exchange_url": args.exchange_url,
    }


def add_platform_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-platform-change",
        action="store_true",
        help="continue a Bayesian ensemble whose suggestions were computed on another "
        "numeric platform (CPU architecture, library builds): its new trials may differ "
        "from what the original platform would have suggested; the run records it",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


@records_command
def run(args: argparse.Namespace) -> int:
    from cluster.job.driver import run_job
    from cluster.job.parse import parse_seeds

    seeds = None if args.seeds is None else parse_seeds(args.seeds)
    run_job(args.job, seeds=seeds, **execution_options(args))
    return 0
