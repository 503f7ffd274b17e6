"""What the records commands (list, show, export) share: the database option and a
recorder opened on a migrated database, with record errors turned into exit codes."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cluster.errors import EXIT_FAILED, InvalidInput

if TYPE_CHECKING:
    from cluster.records.recorder import Recorder


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help="PostgreSQL to use (default: $DATABASE_URL, else the embedded server); a URL "
        "with a password is refused: keep it in PGPASSFILE (~/.pgpass)",
    )


@contextmanager
def open_records(args: argparse.Namespace) -> Iterator[Recorder]:
    """A recorder on the chosen database, migrated; the embedded server stops on exit."""
    from cluster.records.database import database
    from cluster.records.recorder import Recorder

    with database(args.database_url) as conninfo, Recorder(conninfo) as recorder:
        recorder.migrate()
        yield recorder


def records_command(
    run: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """Exit 2 for a name that is not recorded, 1 with a one-line message when the
    database cannot be used, the ensemble is running elsewhere, or a write would change
    a record (no traceback: none of these is a bug in this program)."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        from cluster.records.migrations import MigrationError
        from cluster.records.pg_server import EmbeddedServerError
        from cluster.records.types import (
            EnsembleBusy,
            NonDeterministicRetry,
            NotRecorded,
            RecordsUnavailable,
        )

        try:
            return run(args)
        except NotRecorded as error:
            raise InvalidInput(str(error)) from None
        except (
            RecordsUnavailable,
            EmbeddedServerError,
            MigrationError,
            EnsembleBusy,
            NonDeterministicRetry,
        ) as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_FAILED

    return wrapped


def format_score(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
