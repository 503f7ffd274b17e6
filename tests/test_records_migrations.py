"""Migrations: the schema they build (written out here, not read from the SQL), a
second run that does nothing, concurrent runners, and the runner's refusals."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from cluster.records.migrations import SQL_DIR, MigrationError, discover, migrate
from cluster.records.types import EnsembleStatus, JobStatus, TrialStatus
from trainable.declaration import METRICS

pytestmark = pytest.mark.postgres

TZ = "timestamp with time zone"
# (column, type, NOT NULL) in table order: DESIGN.md contracts 1, 2, 5 and the list.
EXPECTED_COLUMNS = {
    "datasets": [
        ("fingerprint", "text", True),
        ("manifest", "jsonb", True),
        ("recorded_at", TZ, True),
    ],
    "ensembles": [
        ("id", "uuid", True),
        ("name", "text", False),
        ("spec_id", "text", True),
        ("spec", "jsonb", True),
        ("seeds", "integer[]", True),
        ("dataset_fingerprint", "text", True),
        ("records_version", "integer", True),
        ("library_versions", "jsonb", True),
        ("host", "jsonb", True),
        ("status", "ensemble_status", True),
        ("created_at", TZ, True),
        ("started_at", TZ, False),
        ("finished_at", TZ, False),
    ],
    "training_jobs": [
        ("id", "bigint", True),
        ("ensemble_id", "uuid", True),
        ("seed", "integer", True),
        ("spec_id", "text", True),
        ("searcher", "text", True),
        ("searcher_options", "jsonb", True),
        ("budget", "integer", True),
        ("status", "job_status", True),
        ("best_trial_index", "integer", False),
        ("best_params", "jsonb", False),
        ("best_score", "finite_double", False),
        ("created_at", TZ, True),
        ("started_at", TZ, False),
        ("finished_at", TZ, False),
    ],
    "trials": [
        ("training_job_id", "bigint", True),
        ("trial_index", "integer", True),
        ("seed", "integer", True),
        ("spec_id", "text", True),
        ("params", "jsonb", True),
        ("params_exact", "text", True),
        ("status", "trial_status", True),
        ("score", "finite_double", True),
        ("sharpe", "finite_double", False),
        ("sortino", "finite_double", False),
        ("calmar", "finite_double", False),
        ("total_return", "finite_double", False),
        ("max_drawdown", "finite_double", False),
        ("n_trades", "integer", False),
        ("win_rate", "finite_double", False),
        ("profit_factor", "finite_double", False),
        ("exposure", "finite_double", False),
        ("mean_bars_held", "finite_double", False),
        ("message", "text", False),
        ("node", "text", False),
        ("attempts", "integer", True),
        ("started_at", TZ, False),
        ("finished_at", TZ, False),
        ("duration_s", "double precision", False),
        ("recorded_at", TZ, True),
    ],
    "ensemble_runs": [
        ("id", "uuid", True),
        ("ensemble_id", "uuid", True),
        ("kind", "text", True),
        ("execution", "jsonb", True),
        ("platform", "jsonb", True),
        ("platform_change_allowed", "boolean", True),
        ("manifest", "jsonb", True),
        ("host", "jsonb", True),
        ("started_at", TZ, True),
        ("finished_at", TZ, False),
        ("outcome", "text", False),
    ],
    "evaluations": [
        ("ensemble_id", "uuid", True),
        ("kind", "text", True),
        ("label", "text", True),
        ("params", "jsonb", True),
        ("params_exact", "text", True),
        ("basis", "jsonb", True),
        ("dataset_fingerprint", "text", True),
        ("status", "trial_status", True),
        ("score", "finite_double", True),
        ("sharpe", "finite_double", False),
        ("sortino", "finite_double", False),
        ("calmar", "finite_double", False),
        ("total_return", "finite_double", False),
        ("max_drawdown", "finite_double", False),
        ("n_trades", "integer", False),
        ("win_rate", "finite_double", False),
        ("profit_factor", "finite_double", False),
        ("exposure", "finite_double", False),
        ("mean_bars_held", "finite_double", False),
        ("message", "text", False),
        ("recorded_at", TZ, True),
    ],
    "ensemble_datasets": [
        ("ensemble_id", "uuid", True),
        ("role", "text", True),
        ("dataset_fingerprint", "text", True),
        ("recorded_at", TZ, True),
    ],
    "walk_forward_windows": [
        ("ensemble_id", "uuid", True),
        ("seed", "integer", True),
        ("window_index", "integer", True),
        ("search_seed", "bigint", True),
        ("train_start", "integer", True),
        ("train_stop", "integer", True),
        ("test_start", "integer", True),
        ("test_stop", "integer", True),
        ("train_from", "bigint", True),
        ("test_from", "bigint", True),
        ("test_until", "bigint", True),
        ("budget", "integer", True),
        ("status", "job_status", True),
        ("created_at", TZ, True),
        ("finished_at", TZ, False),
    ],
    "walk_forward_trials": [
        ("ensemble_id", "uuid", True),
        ("seed", "integer", True),
        ("window_index", "integer", True),
        ("trial_index", "integer", True),
        ("params", "jsonb", True),
        ("params_exact", "text", True),
        ("status", "trial_status", True),
        ("score", "finite_double", True),
        ("sharpe", "finite_double", False),
        ("sortino", "finite_double", False),
        ("calmar", "finite_double", False),
        ("total_return", "finite_double", False),
        ("max_drawdown", "finite_double", False),
        ("n_trades", "integer", False),
        ("win_rate", "finite_double", False),
        ("profit_factor", "finite_double", False),
        ("exposure", "finite_double", False),
        ("mean_bars_held", "finite_double", False),
        ("message", "text", False),
        ("node", "text", False),
        ("attempts", "integer", True),
        ("started_at", TZ, False),
        ("finished_at", TZ, False),
        ("duration_s", "double precision", False),
        ("recorded_at", TZ, True),
    ],
    "robustness": [
        ("ensemble_id", "uuid", True),
        ("analysis", "text", True),
        ("label", "text", True),
        ("settings", "jsonb", True),
        ("result", "jsonb", True),
        ("result_exact", "text", True),
        ("recorded_at", TZ, True),
    ],
    "schema_migrations": [
        ("version", "character varying(128)", True),
        ("name", "text", True),
        ("checksum", "text", True),
        ("applied_at", TZ, True),
    ],
}
EXPECTED_KEYS = {  # primary (p) and unique (u) constraints: the natural keys
    ("datasets", "p", ("fingerprint",)),
    ("ensembles", "p", ("id",)),
    ("ensembles", "u", ("id", "spec_id")),
    ("training_jobs", "p", ("id",)),
    ("training_jobs", "u", ("ensemble_id", "seed")),
    ("training_jobs", "u", ("id", "seed", "spec_id")),
    ("trials", "p", ("training_job_id", "trial_index")),
    ("ensemble_runs", "p", ("id",)),
    ("evaluations", "p", ("ensemble_id", "kind", "label")),
    ("ensemble_datasets", "p", ("ensemble_id", "role")),
    ("walk_forward_windows", "p", ("ensemble_id", "seed", "window_index")),
    ("walk_forward_trials", "p", ("ensemble_id", "seed", "window_index", "trial_index")),
    ("robustness", "p", ("ensemble_id", "analysis", "label")),
    ("schema_migrations", "p", ("version",)),
}
EXPECTED_ENUMS = {
    "ensemble_status": ["running", "interrupted", "complete"],
    "job_status": ["pending", "running", "interrupted", "complete"],
    "trial_status": ["ok", "invalid"],
}


def _columns(conn: psycopg.Connection) -> dict[str, list[tuple[str, str, bool]]]:
    rows = conn.execute(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
    ).fetchall()
    tables: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, kind, not_null in rows:
        tables.setdefault(table, []).append((column, kind, not_null))
    return tables


def test_migrating_an_empty_database_gives_the_expected_schema(pg_url):
    assert migrate(pg_url) == ["001", "002", "003", "004"]
    with psycopg.connect(pg_url) as conn:
        assert _columns(conn) == EXPECTED_COLUMNS
        keys = conn.execute(
            "SELECT c.conrelid::regclass::text, c.contype::text, "
            "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) "
            "      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n "
            "      ORDER BY k.i) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = 'public' AND c.contype IN ('p', 'u')"
        ).fetchall()
        assert {(t, kind, tuple(cols)) for t, kind, cols in keys} == EXPECTED_KEYS
        enums = conn.execute(
            "SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) "
            "FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid GROUP BY t.typname"
        ).fetchall()
        assert dict(enums) == EXPECTED_ENUMS
        # The nod to the old system: seed defaults to 42 and is indexed.
        default = conn.execute(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_name = 'training_jobs' AND column_name = 'seed'"
        ).fetchone()
        assert default == ("42",)
        indexed = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'training_jobs' "
            "AND indexdef LIKE '%(seed)'"
        ).fetchall()
        assert len(indexed) == 1
        views = conn.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = 'public' "
            "ORDER BY table_name"
        ).fetchall()
        assert views == [("ensemble_overview",), ("training_job_overview",)]
        uncommented = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') "
            "AND obj_description(c.oid, 'pg_class') IS NULL"
        ).fetchall()
        assert uncommented == []


def test_metric_columns_follow_the_strategy_declaration():
    # The expected schema above was written from STRATEGY.md; the declaration must agree.
    trial_columns = [name for name, _, _ in EXPECTED_COLUMNS["trials"]]
    metric_columns = trial_columns[trial_columns.index("score") : trial_columns.index("message")]
    assert metric_columns == [m.name for m in METRICS]
    kinds = {name: kind for name, kind, _ in EXPECTED_COLUMNS["trials"]}
    for metric in METRICS:
        assert kinds[metric.name] == ("integer" if metric.kind == "int" else "finite_double")


def test_python_enums_mirror_the_sql_enums(pg_url):
    migrate(pg_url)
    with psycopg.connect(pg_url) as conn:
        for python_enum, sql_type in (
            (EnsembleStatus, "ensemble_status"),
            (JobStatus, "job_status"),
            (TrialStatus, "trial_status"),
        ):
            (values,) = conn.execute(f"SELECT enum_range(NULL::{sql_type})::text[]").fetchone()
            assert values == [member.value for member in python_enum]


def test_a_second_run_is_a_no_op(pg_url):
    migrate(pg_url)
    with psycopg.connect(pg_url) as conn:
        before = conn.execute(
            "SELECT version, checksum, applied_at FROM schema_migrations"
        ).fetchall()
    assert migrate(pg_url) == []
    with psycopg.connect(pg_url) as conn:
        after = conn.execute(
            "SELECT version, checksum, applied_at FROM schema_migrations"
        ).fetchall()
    assert after == before
    expected_checksum = hashlib.sha256((SQL_DIR / "001_init.sql").read_bytes()).hexdigest()
    assert after[0][:2] == ("001", expected_checksum)


def test_concurrent_runners_apply_each_migration_once(pg_url):
    runners = 4
    barrier = threading.Barrier(runners)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(migrate(pg_url))
        except BaseException as error:  # collected: a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [[], [], [], ["001", "002", "003", "004"]]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (4,)


def _copy_sql(tmp_path: Path) -> Path:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    return sql_dir


def test_a_migration_edited_after_it_was_applied_is_an_error(pg_url, tmp_path):
    sql_dir = _copy_sql(tmp_path)
    migrate(pg_url, sql_dir)
    with open(sql_dir / "001_init.sql", "a") as f:
        f.write("\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=r"001_init\.sql changed after it was applied"):
        migrate(pg_url, sql_dir)


def test_a_version_unknown_to_the_code_is_an_error(pg_url, tmp_path):
    sql_dir = _copy_sql(tmp_path)
    (sql_dir / "005_more.sql").write_text("CREATE TABLE more (x integer);\n")
    assert migrate(pg_url, sql_dir) == ["001", "002", "003", "004", "005"]
    with pytest.raises(MigrationError, match="has migration 005, which this code does not know"):
        migrate(pg_url)  # the real sql/ has only 001 to 004


def test_a_failing_migration_leaves_nothing_behind(pg_url, tmp_path):
    sql_dir = _copy_sql(tmp_path)
    (sql_dir / "005_broken.sql").write_text("CREATE TABLE half (x integer);\nSELECT 1/0;\n")
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(pg_url, sql_dir)
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        half = conn.execute("SELECT to_regclass('half')").fetchone()
    assert versions == [("001",), ("002",), ("003",), ("004",)] and half == (None,)


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["001_init.sql", "2_short.sql"], "2_short.sql: not a migration name"),
        (["001_init.sql", "002_Upper.sql"], "002_Upper.sql: not a migration name"),
        (["001_init.sql", "notes.txt"], "notes.txt: not a migration name"),
        (["001_init.sql", "003_gap.sql"], "003_gap.sql: expected version 002"),
        (["001_init.sql", "001_again.sql"], "expected version 002"),
    ],
)
def test_file_names_are_strict(tmp_path, names, problem):
    for name in names:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=problem):
        discover(tmp_path)


def test_the_repository_migrations_are_well_formed():
    assert [(m.version, m.name) for m in discover()] == [
        ("001", "init"),
        ("002", "ensemble_runs"),
        ("003", "evaluations"),
        ("004", "out_of_sample"),
    ]
