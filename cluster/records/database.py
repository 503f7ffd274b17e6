"""Which PostgreSQL the records go to, and how to name it without leaking a password.

`DATABASE_URL` (or `--database-url`) selects a server; without one the embedded server
(`cluster.records.pg_server`) is started for the duration of the command. A password belongs
in libpq's password file (`PGPASSFILE`, default `~/.pgpass`), never in a URL that may
end up in a log, a Ray runtime_env or a record.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

EMBEDDED_DATABASE = "reprotune"


def redact(conninfo: str) -> str:
    """A printable name of a connection string: URL-like, password replaced by ***."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:  # unparseable: say so, without echoing it
        return "<unparseable connection string>"
    user = str(params.get("user", ""))
    secret = ":***" if params.get("password") else ""
    host = str(params.get("host", ""))
    port = f":{params['port']}" if params.get("port") else ""
    at = "@" if user or secret else ""
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{user}{secret}{at}/{params.get('dbname', '')}?host={host}"
    return f"postgresql://{user}{secret}{at}{host}{port}/{params.get('dbname', '')}"


def has_password(conninfo: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return bool(conninfo_to_dict(conninfo).get("password"))
    except Exception:
        return False


@contextmanager
def database(url: str | None = None) -> Iterator[str]:
    """The connection string to use: `url`, else `$DATABASE_URL`, else the embedded
    server's `reprotune` database (created if missing; the server stops on exit)."""
    url = url or os.environ.get("DATABASE_URL") or None
    if url is not None:
        if has_password(url):
            print(
                f"warning: the database URL {redact(url)} carries a password; put it in "
                "PGPASSFILE (~/.pgpass) instead",
                file=sys.stderr,
            )
        yield url
        return
    from cluster.records.pg_server import embedded_server

    with embedded_server() as server:
        ensure_database(server.conninfo("postgres"), EMBEDDED_DATABASE)
        yield server.conninfo(EMBEDDED_DATABASE)


def ensure_database(admin_conninfo: str, name: str) -> None:
    """CREATE DATABASE `name` unless it exists (safe when two processes race)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            pass
        except psycopg.errors.UniqueViolation:  # the race hits the catalog index instead
            pass
