"""Failures with real processes and real server errors: a SIGKILLed driver leaves an
interrupted ensemble, transient errors are retried, and a spent budget says so."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from records_factory import FAST_RETRY, new_ensemble, ok_trial

from cluster.records.database import ensure_database
from cluster.records.pg_server import embedded_server, run_server_program
from cluster.records.recorder import Recorder
from cluster.records.retry import RetryPolicy, call_with_retry
from cluster.records.types import EnsembleStatus, RecordsUnavailable

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parent.parent
QUICK = RetryPolicy(attempts=3, first_delay_s=0.01, max_delay_s=0.02, connect_timeout_s=1.0)
LOCK_HOLDER = """
import sys, time, uuid
from cluster.records.recorder import Recorder
with Recorder(sys.argv[1]) as recorder, recorder.running(uuid.UUID(sys.argv[2])):
    print("locked", flush=True)
    time.sleep(600)
"""


def _python(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env,
        cwd=REPO_ROOT,
    )  # fmt: skip


def _wait_for(condition, what: str, timeout_s: float = 30.0) -> None:
    """Poll a condition that must become true (a liveness wait, not a speed check)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        time.sleep(0.05)


def test_a_sigkilled_driver_leaves_an_interrupted_ensemble(pg_url):
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        ensemble_id = new_ensemble(recorder)
        holder = _python(LOCK_HOLDER, pg_url, str(ensemble_id))
        try:
            assert holder.stdout.readline() == "locked\n"
            assert recorder.ensemble_status(ensemble_id) is EnsembleStatus.RUNNING
            holder.kill()  # SIGKILL: no finally, no status update
            holder.wait()
            _wait_for(
                lambda: recorder.ensemble_status(ensemble_id) is EnsembleStatus.INTERRUPTED,
                "the killed driver's lock release",
            )
        finally:
            holder.kill()
            holder.wait()
    with psycopg.connect(pg_url) as conn:  # what the dead driver last wrote is now stale
        assert conn.execute("SELECT status::text FROM ensembles").fetchone() == ("running",)


def _recording(errors: list[str], action):
    """Wrap an action to note the class of every error it raises."""

    def wrapped():
        try:
            return action()
        except Exception as error:
            errors.append(type(error).__name__)
            raise

    return wrapped


def test_an_admin_shutdown_is_retried(pg_url):
    errors: list[str] = []

    def action() -> int:
        with psycopg.connect(pg_url) as conn:
            if not errors:  # first attempt: the server ends this session, as a restart would
                conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            return conn.execute("SELECT 42").fetchone()[0]

    assert call_with_retry(_recording(errors, action), QUICK, "a query") == 42
    assert errors == ["AdminShutdown"]


def _two_conflicting_transactions(pg_url: str, setup: str, steps) -> list[str]:
    """Run `steps(conn, me, first_attempt, barrier)` in two threads, each retried; the
    error classes seen, in any order."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(setup)
    barrier = threading.Barrier(2, timeout=30)
    errors: list[str] = []
    failures: list[BaseException] = []

    def run(me: int) -> None:
        attempts = [0]

        def transaction() -> None:
            attempts[0] += 1
            with psycopg.connect(pg_url) as conn:
                steps(conn, me, attempts[0] == 1, barrier)

        try:
            call_with_retry(_recording(errors, transaction), QUICK, f"transaction {me}")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(me,)) for me in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return errors


def test_a_deadlock_is_retried(pg_url):
    def steps(conn, me, first_attempt, barrier):
        other = 3 - me
        conn.execute("UPDATE accounts SET n = n + 1 WHERE id = %s", [me])
        if first_attempt:
            barrier.wait()  # both hold their first row: each now waits for the other's
        conn.execute("UPDATE accounts SET n = n + 10 WHERE id = %s", [other])

    errors = _two_conflicting_transactions(
        pg_url, "CREATE TABLE accounts (id int PRIMARY KEY, n int); "
        "INSERT INTO accounts VALUES (1, 0), (2, 0)", steps,
    )  # fmt: skip
    assert errors == ["DeadlockDetected"]
    with psycopg.connect(pg_url) as conn:  # both transfers happened exactly once
        assert conn.execute("SELECT n FROM accounts ORDER BY id").fetchall() == [(11,), (11,)]


def test_a_serialization_failure_is_retried(pg_url):
    def steps(conn, me, first_attempt, barrier):
        # Write skew: each reads the count, then inserts; serializable refuses one.
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        (count,) = conn.execute("SELECT count(*) FROM oncall").fetchone()
        if first_attempt:
            barrier.wait()
        conn.execute("INSERT INTO oncall VALUES (%s, %s)", [me, count])

    errors = _two_conflicting_transactions(pg_url, "CREATE TABLE oncall (who int, seen int)", steps)
    assert errors and set(errors) == {"SerializationFailure"}  # usually exactly one
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT seen FROM oncall ORDER BY seen").fetchall()
    assert rows == [(0,), (1,)]  # as if serial: the one that committed last saw the other


def test_other_errors_are_not_retried(pg_url):
    errors: list[str] = []

    def action() -> None:
        with psycopg.connect(pg_url) as conn:
            conn.execute("SELECT 1/0")

    with pytest.raises(psycopg.errors.DivisionByZero):
        call_with_retry(_recording(errors, action), QUICK, "a division")
    assert errors == ["DivisionByZero"]


def test_a_spent_budget_names_the_attempts_and_the_last_error(pg_url):
    def action() -> None:
        with psycopg.connect(pg_url) as conn:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(RecordsUnavailable, match=r"gave up on a query after 3 attempts .*"
                       r"AdminShutdown: terminating connection"):  # fmt: skip
        call_with_retry(action, QUICK, "a query")


def test_a_recorder_whose_server_is_gone_gives_up_with_a_clear_error(short_tmp):
    policy = RetryPolicy(attempts=3, first_delay_s=0.05, max_delay_s=0.1, connect_timeout_s=0.5)
    with embedded_server(short_tmp / "pg") as server:
        ensure_database(server.conninfo(), "records")
        with Recorder(server.conninfo("records"), retry=policy) as recorder:
            recorder.migrate()
            ensemble_id = new_ensemble(recorder, seeds=(1,))
            recorder.record_trial(ensemble_id, ok_trial(1, 0))
            run_server_program(
                server.bin_dir / "pg_ctl", server.system_user, "stop", "-w", "-m", "fast",
                "-D", str(server.data_dir),
            )  # fmt: skip
            with pytest.raises(RecordsUnavailable) as raised:
                recorder.record_trial(ensemble_id, ok_trial(1, 1))
    message = str(raised.value)
    assert (
        f"recording 1 trial(s) of ensemble {ensemble_id} at postgresql://postgres@/records"
        in message
    )
    assert "after 3 attempts" in message


def test_a_password_never_shows_in_errors(debian_pg):
    url = debian_pg.admin_conninfo.replace("postgres@", "postgres:hunter2-secret@")
    with pytest.raises(RecordsUnavailable) as raised:
        Recorder(url, retry=QUICK)
    assert "hunter2" not in str(raised.value)
    assert "postgresql://postgres:***@127.0.0.1" in str(raised.value)


def test_the_password_comes_from_the_password_file(debian_pg):
    # The URL has no password: libpq reads it from PGPASSFILE (set by the fixture).
    assert ":" not in debian_pg.admin_conninfo.split("@")[0].removeprefix("postgresql://")
    with Recorder(debian_pg.admin_conninfo, retry=QUICK) as recorder:
        assert recorder.where.startswith("postgresql://postgres@127.0.0.1:")
