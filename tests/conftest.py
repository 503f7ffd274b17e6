"""Fixtures shared by the whole suite.

Ray starts at most once per test module (`ray_local`, module scope) and is always shut
down, even when a test fails. A module that needs other Ray settings sets
`RAY_INIT = {...}` at module level (e.g. `{"num_cpus": 4}`); they are merged over the
defaults below.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = REPO_ROOT / "tests" / "data"
FIXTURE_CANDLES = FIXTURE_DIR / "binance_BTC-USDT_5m_0-4999.parquet"

# Tune writes ~33 KB of logs per trial through its default callbacks; tests read
# results from the ResultGrid, not from those files.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

# No timing thresholds: Hypothesis's default 200 ms deadline per example and its
# "too slow" health check fail tests on a machine loaded by other processes.
hypothesis.settings.register_profile(
    "reprotune",
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("reprotune")

RAY_DEFAULTS = {
    # "local" always starts a new instance; without it ray.init() would join any
    # cluster a `ray start` left in /tmp/ray/ray_current_cluster.
    "address": "local",
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 512 * 1024**2,
    "log_to_driver": False,
}


def pytest_configure(config: pytest.Config) -> None:
    # With CI=true a skipped test fails the run unless tests/allowed_skips.txt lists it.
    from tests.skip_gate import configure

    configure(config)


def shared_data_dir() -> Path | None:
    """`../shared/data` beside the repository (real candle files), when it exists."""
    candidate = Path(os.environ.get("REPROTUNE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def fixture_candles_path() -> Path:
    """The committed 5,000-row BTC/USDT 5m slice (tests/data/README.md)."""
    return FIXTURE_CANDLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real candle files of ../shared/data; tests using it skip on a bare clone."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not present on this machine")
    return path


@pytest.fixture(scope="module")
def ray_local(request: pytest.FixtureRequest) -> Iterator[object]:
    """A real local Ray for one test module, shut down afterwards whatever happened."""
    import ray

    if ray.is_initialized():  # a previous module leaked one: do not inherit its settings
        ray.shutdown()
    settings = {**RAY_DEFAULTS, **getattr(request.module, "RAY_INIT", {})}
    # A short private temp dir: Ray's Unix socket paths must stay under ~100 bytes.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    settings.setdefault("_temp_dir", temp_dir)
    ray.init(**settings)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


# =======================================================================================
# PostgreSQL for the records layer (issue 5)
#
# `pg_session`: one real server for the whole session: $DATABASE_URL's when it is set
# (it must allow CREATE DATABASE), else the embedded server in a fresh short dir
# /tmp/rt-XXXX (Unix socket paths must stay under ~100 bytes), stopped at the end even
# when tests fail. `pg_url`: a fresh, empty database on it for one test.
# `debian_pg`: Debian's PostgreSQL 15 over TCP with a password read from PGPASSFILE,
# started on a free port in a temp dir (as a non-root user) and stopped at the end;
# tests using it skip when /usr/lib/postgresql/15/bin is absent.
# =======================================================================================

import itertools  # noqa: E402
import secrets  # noqa: E402
import socket  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

DEBIAN_PG_BIN = Path("/usr/lib/postgresql/15/bin")
_database_numbers = itertools.count()


@dataclass(frozen=True)
class PgServer:
    """A server tests may create databases on; `restart` is None when tests must not."""

    kind: str  # "embedded", "external" ($DATABASE_URL) or "debian15"
    admin_conninfo: str
    restart: Callable[[], None] | None = None

    def conninfo(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.admin_conninfo, dbname=dbname)


def short_temp_dir() -> Path:
    """A fresh /tmp/rt-XXXX that the embedded server's system user may enter."""
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    path.chmod(0o755)  # our own new dir: root runs the server as user pgserver
    return path


@pytest.fixture(scope="session")
def pg_session() -> Iterator[PgServer]:
    """The session's PostgreSQL (see the section comment)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield PgServer("external", url)
        return
    from cluster.records.pg_server import embedded_server

    base = short_temp_dir()
    try:
        with embedded_server(base / "pg") as server:
            yield PgServer("embedded", server.conninfo("postgres"), server.restart)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(server: PgServer) -> Iterator[str]:
    """CREATE DATABASE for one test; DROP it (closing leftover sessions) afterwards."""
    import psycopg
    from psycopg import sql

    name = f"rt_test_{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.conninfo(name)
    finally:
        with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_url(pg_session: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server."""
    yield from fresh_database(pg_session)


@pytest.fixture(scope="module")
def pg_module_url(pg_session: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session's server, shared by one test module."""
    yield from fresh_database(pg_session)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def debian_pg() -> Iterator[PgServer]:
    """Debian's PostgreSQL 15 over TCP, password in a PGPASSFILE (see the section comment)."""
    if not (DEBIAN_PG_BIN / "pg_ctl").exists():
        pytest.skip(f"Debian's PostgreSQL 15 is not installed ({DEBIAN_PG_BIN} is absent)")
    import pwd

    from cluster.records.pg_server import run_server_program, server_system_user

    user = server_system_user()  # PostgreSQL refuses to run as root
    base = short_temp_dir()
    data, password, port = base / "data", secrets.token_hex(16), _free_port()
    (base / "pwfile").write_text(password + "\n")
    passfile = base / "pgpass"
    passfile.write_text(f"127.0.0.1:{port}:*:postgres:{password}\n")
    passfile.chmod(0o600)  # libpq ignores a password file others can read
    data.mkdir(mode=0o700)
    if user is not None:
        account = pwd.getpwnam(user)
        for path in (data, base / "pwfile"):
            os.chown(path, account.pw_uid, account.pw_gid)
    run_server_program(
        DEBIAN_PG_BIN / "initdb", user, "-D", str(data), "-U", "postgres",
        "--auth-host=scram-sha-256", "--auth-local=peer", f"--pwfile={base / 'pwfile'}",
    )  # fmt: skip
    pg_ctl = [str(DEBIAN_PG_BIN / "pg_ctl"), "-w", "-t", "60", "-D", str(data)]
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"

    def pg_ctl_run(*args: str) -> None:
        run_server_program(Path(pg_ctl[0]), user, *pg_ctl[1:], *args)

    previous_passfile = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(passfile)
    try:
        pg_ctl_run("start", "-l", str(data / "server.log"), "-o", options)
        try:
            yield PgServer(
                "debian15",
                f"postgresql://postgres@127.0.0.1:{port}/postgres",
                lambda: pg_ctl_run("restart", "-m", "fast", "-l", str(data / "server.log")),
            )
        finally:
            pg_ctl_run("stop", "-m", "fast")
    finally:
        if previous_passfile is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = previous_passfile
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["embedded", "debian15"])
def any_pg(request: pytest.FixtureRequest) -> PgServer:
    """Each core recorder test runs on the session server and on Debian's PostgreSQL 15."""
    if request.param == "embedded":
        return request.getfixturevalue("pg_session")
    return request.getfixturevalue("debian_pg")


@pytest.fixture
def any_pg_url(any_pg: PgServer) -> Iterator[str]:
    """A fresh, empty database on `any_pg`."""
    yield from fresh_database(any_pg)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A fresh /tmp/rt-XXXX for one test's own embedded server; removed afterwards."""
    path = short_temp_dir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# =======================================================================================
# The reliability suite (tests/reliability.py): `@pytest.mark.reliability(ID)` ties a
# test to a known defect or fault scenario; `--reliability-json=PATH` writes each marked
# test's outcome and duration, from which RELIABILITY.md is rendered.
# =======================================================================================

import json  # noqa: E402

_reliability_results: dict[str, dict[str, object]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-json",
        metavar="PATH",
        default=None,
        help="write the outcome and duration of every reliability-marked test to PATH",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from reliability import SCENARIOS

    for item in items:
        for marker in item.iter_markers("reliability"):
            if not marker.args or not set(marker.args) <= set(SCENARIOS):
                raise pytest.UsageError(
                    f"{item.nodeid}: reliability marker {marker.args} names no id, or one "
                    "that is not in tests/reliability.py"
                )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """One record per (test, id) of its reliability markers (set up below)."""
    for key, entry in report.user_properties:
        if key != "reliability":
            continue
        record = _reliability_results.setdefault(
            f"{entry} {report.nodeid}",
            {"id": entry, "nodeid": report.nodeid, "outcome": "passed", "duration_s": 0.0},
        )
        record["duration_s"] = float(str(record["duration_s"])) + report.duration
        if report.failed:
            record["outcome"] = "failed"
        elif report.skipped and record["outcome"] == "passed":
            record["outcome"] = "skipped"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("reliability"):
        item.user_properties.extend(("reliability", entry) for entry in marker.args)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--reliability-json")
    if path:
        Path(path).write_text(json.dumps(list(_reliability_results.values()), indent=2) + "\n")
