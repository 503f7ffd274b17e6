"""The migration runner: `sql/NNN_name.sql`, each applied once, in order.

Convention (dbmate's `schema_migrations` table, plus a checksum):
- File names are strict: three digits, an underscore, lower-case words, `.sql`;
  numbers run 001, 002, ... without gaps or duplicates. Anything else in `sql/` is an
  error, so a misnamed file is never silently skipped.
- Each file runs in its own transaction together with the row recording it, so a
  migration is applied entirely or not at all.
- The whole run holds a session advisory lock: two drivers starting at once apply each
  file once (the second waits, then finds nothing to do).
- A file whose content changed after it was applied (sha256 differs), or a version the
  database has but this code does not know, is an error: migrations are forward-only
  and never edited once landed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
FILE_NAME = re.compile(r"^(?P<version>\d{3})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")
IGNORED_FILES = {".gitkeep", "README.md"}
# pg_advisory_lock key of the runner: the first 8 bytes of sha256("reprotune.migrations").
LOCK_KEY = int.from_bytes(hashlib.sha256(b"reprotune.migrations").digest()[:8], "big", signed=True)
LOCK_TIMEOUT = "120s"  # a runner waiting longer than this for another is stuck: fail loudly

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    varchar(128) PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_migrations IS
    'Migrations applied from sql/NNN_name.sql (dbmate convention, plus a sha256 checksum).';
"""


class MigrationError(RuntimeError):
    """The migration files or the database's migration history are inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: str  # "001"
    name: str  # "init"
    path: Path
    sql: str
    checksum: str  # sha256 of the file's bytes, hex


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    """The migrations of `sql_dir` in order; MigrationError names every bad file."""
    problems: list[str] = []
    migrations: list[Migration] = []
    for path in sorted(sql_dir.iterdir()):
        if path.name in IGNORED_FILES:
            continue
        match = FILE_NAME.match(path.name)
        if match is None or not path.is_file():
            problems.append(f"{path.name}: not a migration name (expected NNN_lower_words.sql)")
            continue
        content = path.read_bytes()
        migrations.append(
            Migration(
                match["version"],
                match["name"],
                path,
                content.decode("utf-8"),
                hashlib.sha256(content).hexdigest(),
            )
        )
    for expected, migration in enumerate(migrations, start=1):
        if int(migration.version) != expected:
            problems.append(
                f"{migration.path.name}: expected version {expected:03d} (versions must run "
                "001, 002, ... without gaps or duplicates)"
            )
    if problems:
        raise MigrationError(f"bad migration files in {sql_dir}: " + "; ".join(problems))
    return migrations


def migrate(conninfo: str, sql_dir: Path = SQL_DIR) -> list[str]:
    """Apply every migration the database lacks; return the versions applied (may be [])."""
    migrations = discover(sql_dir)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            conn.execute(CREATE_TABLE)
            applied = _applied(conn)
            _check_history(migrations, applied)
            done = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        [migration.version, migration.name, migration.checksum],
                    )
                done.append(migration.version)
            return done
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _applied(conn: psycopg.Connection) -> dict[str, str]:
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def _check_history(migrations: list[Migration], applied: dict[str, str]) -> None:
    known = {m.version: m for m in migrations}
    problems = [
        f"the database has migration {version}, which this code does not know "
        "(was it applied by a newer version?)"
        for version in sorted(set(applied) - set(known))
    ]
    problems += [
        f"{known[version].path.name} changed after it was applied (checksum "
        f"{checksum[:12]}... in the database, {known[version].checksum[:12]}... on disk)"
        for version, checksum in sorted(applied.items())
        if version in known and known[version].checksum != checksum
    ]
    if problems:
        raise MigrationError("; ".join(problems))
