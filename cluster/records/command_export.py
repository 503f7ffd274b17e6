"""`python -m cluster export ENSEMBLE`: the canonical export (cluster.records.export) of an
ensemble or some of its jobs, as CSV, Parquet or just its sha256."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster.errors import InvalidInput
from cluster.records.command_options import add_database_argument, open_records, records_command

HELP = "export an ensemble's deterministic trial records (csv, parquet) or their sha256"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ensemble", metavar="ENSEMBLE", help="ensemble id or its first characters")
    parser.add_argument(
        "--format",
        choices=("csv", "parquet", "digest"),
        default="csv",
        help="csv (default), parquet, or digest: the sha256 that determinism checks compare",
    )
    parser.add_argument(
        "--output", type=Path, help="file to write (default: stdout; parquet needs one)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        action="append",
        dest="seeds",
        metavar="SEED",
        help="only this seed's job (repeat for several; default: every job)",
    )
    add_database_argument(parser)


@records_command
def run(args: argparse.Namespace) -> int:
    from cluster.records.export import build_export, write_csv, write_parquet

    if args.format == "parquet" and args.output is None:
        raise InvalidInput("--format parquet needs --output PATH")
    with open_records(args) as recorder:
        ensemble_id = recorder.find_ensemble(args.ensemble)
        if args.seeds:
            seeds = {s for e in recorder.ensembles() if e.id == ensemble_id for s in e.seeds}
            unknown = sorted(set(args.seeds) - seeds)
            if unknown:
                raise InvalidInput(
                    f"ensemble {ensemble_id} has no seed {unknown} (seeds: {sorted(seeds)})"
                )
        export = build_export(recorder.ensemble_trials(ensemble_id, args.seeds))
    if args.format == "parquet":
        write_parquet(export, args.output)
    elif args.format == "digest":
        _write_text(args.output, export.digest + "\n")
    elif args.output is None:
        write_csv(export, sys.stdout)
    else:
        with open(args.output, "w", newline="", encoding="utf-8") as out:
            write_csv(export, out)
    return 0


def _write_text(path: Path | None, text: str) -> None:
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
