"""`python -m cluster export ENSEMBLE`: the canonical export (cluster.records.export) of an
ensemble or some of its jobs, as CSV, Parquet or just its sha256."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.errors import InvalidInput
from cluster.records.command_options import add_database_argument, open_records, records_command

if TYPE_CHECKING:
    from cluster.records.export import Export

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
    if args.output is not None:
        check_output(args.output)
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
        write_file(args.output, lambda temporary: write_parquet(export, temporary))
    elif args.format == "digest":
        _write_text(args.output, export.digest + "\n")
    elif args.output is None:
        write_csv(export, sys.stdout)
    else:
        write_file(args.output, lambda temporary: _csv_file(export, temporary))
    return 0


def check_output(path: Path) -> None:
    """InvalidInput naming `path` unless a file can be created there (before any query)."""
    if path.is_dir():
        raise InvalidInput(f"--output {path}: is a directory; give a file name")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise InvalidInput(f"--output {path}: the directory {parent} does not exist")


def write_file(path: Path, write: Callable[[Path], object]) -> None:
    """`write(temporary)` beside `path`, then renamed over it: a failed write leaves no
    partial file. An OS error is InvalidInput naming the path."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        raise InvalidInput(f"--output {path}: cannot write it ({error.strerror})") from None
    finally:
        temporary.unlink(missing_ok=True)


def _csv_file(export: Export, path: Path) -> None:
    from cluster.records.export import write_csv

    with open(path, "w", newline="", encoding="utf-8") as out:
        write_csv(export, out)


def _write_text(path: Path | None, text: str) -> None:
    if path is None:
        sys.stdout.write(text)
    else:
        write_file(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
