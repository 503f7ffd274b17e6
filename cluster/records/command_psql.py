"""`python -m cluster psql [-- PSQL ARGS]`: an interactive psql on the records.

With `$DATABASE_URL` (or `--database-url`) it connects there; otherwise it starts the
embedded server for the session (it stops when psql exits) and uses the psql program
that ships with it, so no PostgreSQL client needs to be installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from cluster.records.command_options import add_database_argument, records_command

HELP = "open psql on the records (the embedded server or $DATABASE_URL)"

EPILOG = """\
Arguments after -- go to psql, e.g.
  python -m cluster psql -- -c "SELECT seed, count(*), max(score) FROM trials GROUP BY seed"
The tables: datasets, ensembles, ensemble_runs, training_jobs, trials (README.md)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_database_argument(parser)
    parser.add_argument("psql_args", nargs=argparse.REMAINDER, metavar="-- PSQL ARGS")


# libpq's environment variables for the connection settings psql needs: the connection
# goes through the environment, never the command line (which other users can read).
_ENVIRONMENT = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE",
}


@records_command
def run(args: argparse.Namespace) -> int:
    from psycopg.conninfo import conninfo_to_dict

    from cluster.records.database import database
    from cluster.records.pg_binaries import wheel_bin_dir
    from cluster.records.recorder import Recorder

    extra = list(args.psql_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    bundled = wheel_bin_dir() / "psql"
    program = str(bundled) if bundled.exists() else shutil.which("psql")
    if program is None:
        print("error: no psql program found (install PostgreSQL's client)", file=sys.stderr)
        return 1
    with database(args.database_url) as conninfo:
        with Recorder(conninfo) as recorder:
            recorder.migrate()
        settings = conninfo_to_dict(conninfo)
        # Unset fields fall back to the user's own PG* variables, as they do for psycopg.
        environment = {
            **os.environ,
            **{_ENVIRONMENT[k]: str(v) for k, v in settings.items() if k in _ENVIRONMENT},
        }
        return subprocess.call([program, *extra], env=environment)
