"""Which PostgreSQL the records go to, and how to name it without leaking a password.

`DATABASE_URL` (or `--database-url`) selects a server; without one the embedded server
(`cluster.records.pg_server`) is started for the duration of the command. A password belongs
in libpq's password file (`PGPASSFILE`, default `~/.pgpass`), never in the URL: a URL ends
up in process lists, shell history, logs and Ray's job table. A URL that carries one is
refused (`InvalidInput`, exit 2), as is every URL libpq cannot use; the message is one
line and never repeats the URL's text (libpq's own parse errors quote it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from cluster.errors import InvalidInput

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


_EXAMPLE = "postgresql://USER@HOST:PORT/DBNAME"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# The names a user typed before "=" (option and query-parameter names, never values).
_KEY = re.compile(r"(?:^|[\s?&])([A-Za-z_][A-Za-z0-9_]*)\s*=")
_QUOTED = re.compile(r'"([^"]*)"')


def resolve_database_url(url: str | None = None) -> str | None:
    """`url` (from --database-url), else `$DATABASE_URL`, checked by `check_database_url`;
    None when neither is set (the embedded server)."""
    if url:
        check_database_url(url, "--database-url")
        return url
    from_environment = os.environ.get("DATABASE_URL")
    if from_environment:
        check_database_url(from_environment, "DATABASE_URL")
        return from_environment
    return None


def check_database_url(url: str, origin: str) -> None:
    """InvalidInput naming `origin` unless libpq can use `url` and it carries no password.

    The message is one line and never quotes the URL, so no part of a password can show.
    """
    from psycopg.conninfo import conninfo_to_dict

    def refuse(problem: str) -> None:
        raise InvalidInput(f"{origin}: {problem}")

    if url != url.strip():
        refuse("the database URL starts or ends with whitespace; remove it")
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("postgresql", "postgres"):
        name = scheme.group(1)
        if name.lower().startswith(("postgresql+", "postgres+")):
            refuse(
                f"{name!r} is SQLAlchemy's dialect+driver form, which libpq does not read; "
                f"use {_EXAMPLE}"
            )
        refuse(f"scheme {name!r} is not PostgreSQL's; use {_EXAMPLE}")
    try:
        params = conninfo_to_dict(url)
    except Exception as error:  # libpq's message quotes parts of the URL: keep only names
        keys = set(_KEY.findall(url))
        detail = _QUOTED.sub(
            lambda m: m.group(0) if m.group(1) in keys or m.group(1) == "=" else '"..."',
            " ".join(str(error).split()),
        )
        refuse(f"not a PostgreSQL URL ({_EXAMPLE}) or key=value connection string ({detail})")
    if params.get("password"):
        refuse(
            "the database URL carries a password, which would end up in process lists, logs "
            "and Ray's job table; remove it and put it in a password file (PGPASSFILE, "
            "default ~/.pgpass: a line HOST:PORT:DBNAME:USER:PASSWORD, mode 0600)"
        )
    for port in str(params.get("port", "")).split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            refuse(f"port {port!r} is not a port number (1-65535)")


@contextmanager
def database(url: str | None = None) -> Iterator[str]:
    """The connection string to use: `url`, else `$DATABASE_URL` (both checked by
    `check_database_url`), else the embedded server's `reprotune` database (created if
    missing; the server stops on exit)."""
    url = resolve_database_url(url)
    if url is not None:
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
