"""`python -m cluster resume ENSEMBLE`: finish an interrupted ensemble from its records."""

from __future__ import annotations

import argparse

from cluster.job.command_run import (
    add_execution_arguments,
    add_platform_argument,
    execution_options,
)
from cluster.records.command_options import add_database_argument, records_command

HELP = "finish an interrupted ensemble: rebuild its searchers from the records, run the rest"

EPILOG = """\
Only what is missing runs; the searchers are rebuilt from the recorded trials and must
re-suggest the recorded params bit for bit. Refused (exit 2) when the code's
RECORDS_VERSION, a library that decides result bits, or the candles differ from the
ones the ensemble recorded, and (for a Bayesian ensemble) when this machine's numeric
platform differs from the one its suggestions were computed on. Exit codes: 0 complete
(also when it already was), 2 refused, 3 interrupted again (resume again), 1 anything
else (a non-determinism found, say)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("ensemble", metavar="ENSEMBLE", help="ensemble id or its first characters")
    add_execution_arguments(parser)
    add_platform_argument(parser)
    add_database_argument(parser)


@records_command
def run(args: argparse.Namespace) -> int:
    from cluster.job.resume import resume_job

    resume_job(
        args.ensemble,
        allow_platform_change=args.allow_platform_change,
        **execution_options(args),
    )
    return 0
