"""`python -m cluster verify A B` / `verify --rerun A`: are the records identical?"""

from __future__ import annotations

import argparse

from cluster.errors import EXIT_FAILED, EXIT_OK, InvalidInput
from cluster.job.command_run import (
    add_execution_arguments,
    add_platform_argument,
    execution_options,
)
from cluster.records.command_options import add_database_argument, records_command

HELP = "compare two ensembles' trial records bit for bit, or rerun one and compare"

EPILOG = """\
The comparison joins the two canonical exports on (seed, trial_index) over the seeds
both ensembles have, after checking that they saw the same candles and ran the same
spec (--force compares anyway). It prints the first difference. Exit codes: 0 identical,
1 different, 2 not comparable (or a wrong id), 3 the rerun was interrupted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "ensembles", metavar="ENSEMBLE", nargs="+", help="two ensembles, or one with --rerun"
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="run the ensemble's recorded spec again (same seeds) into a new ensemble and compare",
    )
    parser.add_argument(
        "--force", action="store_true", help="compare even when data or specs differ"
    )
    add_execution_arguments(parser)
    add_platform_argument(parser)
    add_database_argument(parser)


@records_command
def run(args: argparse.Namespace) -> int:
    from cluster.job.verify import rerun_and_verify, verify_ensembles

    if args.rerun:
        if len(args.ensembles) != 1:
            raise InvalidInput("verify --rerun takes one ensemble")
        same = rerun_and_verify(
            args.ensembles[0],
            allow_platform_change=args.allow_platform_change,
            **execution_options(args),
        )
    else:
        if len(args.ensembles) != 2:
            raise InvalidInput("verify takes two ensembles (or one with --rerun)")
        same = verify_ensembles(*args.ensembles, force=args.force, database_url=args.database_url)
    return EXIT_OK if same else EXIT_FAILED
