"""Fault scenarios around the records (issue 13, faults 5-7): PostgreSQL restarted or gone
mid-run, a connection cut after its COMMIT was sent, two drivers for one ensemble.

Each scenario first asserts that its fault really happened, then that the records are
the undisturbed run's (the golden digest) with every trial recorded exactly once.
Drivers run in this process on the module's Ray (tests/faults.py), except where a
scenario needs driver processes of their own (two drivers).
"""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psutil
import psycopg
import pytest
from conftest import fresh_database
from faults import (
    RETRY,
    TOTAL,
    assert_golden,
    at_recorded,
    digest,
    driver,
    driver_command,
    driver_environment,
    run,
    trial_rows,
)
from job_strategies import register_toys, ship_by_value
from pg_proxy import PgProxy
from psycopg.conninfo import conninfo_to_dict
from records_factory import new_ensemble, ok_trial

from cluster.errors import Interrupted
from cluster.job.resume import resume_job
from cluster.records.database import ensure_database
from cluster.records.pg_server import (
    LOG_FILE,
    EmbeddedServer,
    _start_options,
    embedded_server,
    run_server_program,
)
from cluster.records.recorder import Recorder
from cluster.records.retry import RetryPolicy
from cluster.records.types import NonDeterministicRetry, RecordsUnavailable

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]
RAY_INIT = {"num_cpus": 2}


@pytest.fixture(scope="module", autouse=True)
def toys(ray_local):
    register_toys()
    ship_by_value()


@pytest.fixture(scope="module")
def golden(pg_session, tmp_path_factory) -> str:
    """The digest of the job run with no fault."""
    with contextmanager(fresh_database)(pg_session) as database:
        ensemble = run(database, tmp_path_factory.mktemp("golden"))
        assert len(trial_rows(database)) == TOTAL
        return digest(database, ensemble)


@pytest.fixture
def private_pg(short_tmp) -> Iterator[EmbeddedServer]:
    """An embedded server of the test's own: the scenarios restart and stop it."""
    with embedded_server(short_tmp / "pg") as server:
        ensure_database(server.conninfo(), "records")
        yield server


def pg_ctl(server: EmbeddedServer, *args: str) -> None:
    run_server_program(
        server.bin_dir / "pg_ctl", server.system_user, *args, "-w", "-D", str(server.data_dir)
    )


def shutdowns(server: EmbeddedServer) -> int:
    return (server.data_dir / LOG_FILE).read_text().count("received fast shutdown request")


# --- fault 5: PostgreSQL restarted mid-run, or down past the retry budget ----------------


@pytest.mark.reliability("fault-5")
def test_a_restart_mid_run_is_ridden_out(private_pg, golden, monkeypatch, tmp_path):
    url = private_pg.conninfo("records")
    with at_recorded(monkeypatch, 6, lambda: private_pg.restart("fast")) as fired:
        ensemble = run(url, tmp_path)
    assert fired and fired[0] < 6  # it came before a write that still had to be made
    assert shutdowns(private_pg) == 1  # the server's log shows the restart
    assert_golden(url, golden, ensemble)


@pytest.mark.reliability("fault-5")
def test_an_outage_past_the_budget_stops_resumable_and_resume_finishes(
    private_pg, golden, monkeypatch, tmp_path
):
    url = private_pg.conninfo("records")
    with (
        at_recorded(monkeypatch, 6, lambda: pg_ctl(private_pg, "stop", "-m", "fast")) as fired,
        pytest.raises(Interrupted) as stopped,
    ):
        run(url, tmp_path)
    assert fired and shutdowns(private_pg) == 1
    message = str(stopped.value)
    assert "gave up on recording" in message
    assert "at postgresql://postgres@/records?host=" in message and "after 4 attempts" in message
    assert "python -m cluster resume " in message

    log = str(private_pg.data_dir / LOG_FILE)
    pg_ctl(private_pg, "start", "-l", log,
           *_start_options(private_pg.data_dir, private_pg.socket_dir, {}))  # fmt: skip
    kept = len(trial_rows(url))
    assert kept == fired[0] < 6  # what was committed stayed; nothing after the outage
    with Recorder(url) as recorder:
        ensemble = recorder.latest_ensemble()
    resume_job(ensemble, database_url=url, storage_path=str(tmp_path / "tune"),
               progress=False, out=io.StringIO(), records_retry=RETRY)  # fmt: skip
    assert_golden(url, golden, ensemble)


# --- fault 6: a connection cut after the COMMIT was sent ---------------------------------


@pytest.fixture
def proxied(pg_session) -> Iterator[tuple[PgProxy, str]]:
    """A fresh database behind a cutting proxy: (proxy, the proxy's conninfo for it)."""
    if pg_session.kind != "embedded":
        pytest.skip("the proxy needs a server that trusts its Unix socket")
    with ExitStack() as stack:
        database = stack.enter_context(contextmanager(fresh_database)(pg_session))
        proxy = stack.enter_context(PgProxy(database))
        yield proxy, proxy.conninfo(conninfo_to_dict(database)["dbname"])


@pytest.mark.reliability("fault-6")
def test_a_lost_commit_reply_is_retried_into_the_identical_row_or_refused(proxied):
    proxy, url = proxied
    once = RetryPolicy(attempts=1, connect_timeout_s=1.0)
    with Recorder(url, retry=RETRY) as recorder:
        recorder.migrate()
        ensemble = new_ensemble(recorder, seeds=(1,), budget=5)
        proxy.cut_trial_commit = 1
        recorder.record_trials(ensemble, [ok_trial(1, 0, score=0.5)])  # retried inside
        assert proxy.dropped == 1  # the reply of a COMMIT the server did run was lost
    with Recorder(url, retry=once) as recorder:  # a writer that cannot retry by itself
        proxy.cut_trial_commit = proxy.trial_commits + 1
        with pytest.raises(RecordsUnavailable):
            recorder.record_trials(ensemble, [ok_trial(1, 1, score=1.0)])
        assert proxy.dropped == 2
        # Its caller retries with another payload: refused, and the stored row stays.
        with pytest.raises(NonDeterministicRetry, match=r"trial_index=1\b.*score"):
            recorder.record_trials(ensemble, [ok_trial(1, 1, score=2.0)])
        stored = recorder.recorded_trials(ensemble, 1)
    assert [(t.trial_index, t.score) for t in stored] == [(0, 0.5), (1, 1.0)]


@pytest.mark.reliability("fault-6")
def test_an_ensemble_whose_commit_reply_was_lost_ends_golden(proxied, golden, tmp_path):
    proxy, url = proxied
    proxy.cut_trial_commit = 1  # (a run may commit all its trials in two writes)
    ensemble = run(url, tmp_path)
    assert proxy.dropped == 1
    assert_golden(url, golden, ensemble)


# --- fault 7: two drivers for one ensemble ------------------------------------------------


def lock_holders(url: str) -> list[str]:
    """application_name of every session holding an advisory lock."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
        ).fetchall()
    return [row[0] for row in rows]


def records_state(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT count(*) FROM trials").fetchone(),
            conn.execute("SELECT id, outcome FROM ensemble_runs ORDER BY id").fetchall(),
            conn.execute("SELECT seed, status::text FROM training_jobs ORDER BY seed").fetchall(),
            conn.execute("SELECT status::text FROM ensembles").fetchall(),
        )


@pytest.mark.reliability("fault-7")
def test_a_second_driver_for_a_running_ensemble_is_refused_before_ray_and_writes(
    pg_url, golden, monkeypatch, tmp_path, ray_local
):
    # An interrupted ensemble: the database lost for good before the 6th trial's write.
    def lost() -> None:
        raise RecordsUnavailable("the database went away (injected)")

    with at_recorded(monkeypatch, 6, lost) as fired, pytest.raises(Interrupted):
        run(pg_url, tmp_path)
    monkeypatch.undo()
    assert fired and len(trial_rows(pg_url)) < TOTAL
    with Recorder(pg_url) as recorder:
        ensemble = str(recorder.latest_ensemble())

    # The first driver joins this module's Ray (no start of its own to wait for).
    gcs = ray_local._private.worker.global_worker.node.gcs_address
    common = ["--database-url", pg_url, "--storage-path", str(tmp_path / "tune"), "--no-progress"]
    first = subprocess.Popen(
        driver_command("resume", ensemble, *common, "--address", gcs), cwd="/tmp",
        env=driver_environment(RAY_AUTH_MODE="token"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        holder = f"reprotune driver pid {first.pid} on "
        deadline = time.monotonic() + 300  # a bound on a wait for a state, not a timing
        while not any(name.startswith(holder) for name in lock_holders(pg_url)):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first driver never took the lock"
            time.sleep(0.02)
        psutil.Process(first.pid).suspend()  # it holds the lock, and will keep it
        before = records_state(pg_url)
        # The second driver is pointed at a Ray that does not exist: had it got as far
        # as starting Ray, it would fail with that instead of the refusal.
        second = driver("resume", ensemble, *common, "--address", "127.0.0.1:1")
        assert second.returncode == 1, second.stderr
        assert f"is running elsewhere ('{holder}" in second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.splitlines()) == 1
        assert records_state(pg_url) == before  # it wrote nothing
        psutil.Process(first.pid).resume()
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert_golden(pg_url, golden)
