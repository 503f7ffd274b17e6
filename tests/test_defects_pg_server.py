"""The embedded server when the command that owns it is signalled during start-up or its
first initdb (known defect 6, fault scenario 8), with real commands and real signals at
named points (hook REPROTUNE_TEST_SIGNAL_IN_PG_START, cluster/records/pg_server.py)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import REPO_ROOT

pytestmark = pytest.mark.postgres
HOOK = "REPROTUNE_TEST_SIGNAL_IN_PG_START"


def command(home: Path, hook: str | None = None) -> subprocess.CompletedProcess:
    """`python -m cluster list` on the embedded server in `home`."""
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", HOOK)}
    environment.update(REPROTUNE_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    if hook:
        environment[HOOK] = hook
    return subprocess.run(
        [sys.executable, "-m", "cluster", "list"],
        env=environment,
        cwd="/tmp",
        capture_output=True,
        text=True,
        timeout=300,
    )


def left_behind(home: Path) -> list[psutil.Process]:
    """Live processes working on `home` (postgres, initdb, pg_ctl)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if str(home) in " ".join(process.info["cmdline"] or []) and (
                process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def clean_up(home: Path) -> None:
    """Whatever a failed test left running on `home` (never other processes)."""
    for process in left_behind(home):
        for child in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                child.kill()


def assert_nothing_left(home: Path) -> None:
    data_dir = home / "pg"
    assert left_behind(home) == []
    assert not (data_dir / "postmaster.pid").exists()
    assert json.loads((data_dir / ".handle_pids.json").read_text()) == []
    assert not (home / ".pg.initdb").exists()


@pytest.mark.reliability("defect-6")
def test_sigterm_or_sigint_during_start_up_leaves_no_server(short_tmp):
    home = short_tmp / "home"
    try:
        for hook in ("start:SIGTERM", "started:SIGINT", "started:SIGTERM", "start:SIGINT"):
            stopped = command(home, hook)
            assert stopped.returncode == 3, (hook, stopped.stderr)  # interrupted
            assert "interrupted" in stopped.stderr and "Traceback" not in stopped.stderr
            assert (home / "pg" / "server.log").exists()  # a server did start
            assert_nothing_left(home)  # and is stopped: no need to wait for the next command
    finally:
        clean_up(home)


@pytest.mark.reliability("defect-6", "fault-8")
def test_a_sigkill_during_the_first_initdb_leaves_nothing_running_and_a_rerun_works(short_tmp):
    home = short_tmp / "home"
    try:
        # The hook freezes initdb (SIGSTOP) before it SIGKILLs the command, so an initdb
        # that outlived its owner would stay, frozen, for the assertion below to see.
        killed = command(home, "initdb:SIGKILL")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert (home / ".pg.initdb").exists()  # the fault happened mid-initdb
        _, alive = psutil.wait_procs(left_behind(home), timeout=30)
        assert alive == []  # initdb died with its owner
        done = command(home)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("no ensembles recorded")
        assert_nothing_left(home)
    finally:
        clean_up(home)


@pytest.mark.reliability("fault-8")
@pytest.mark.parametrize("point", ["start", "started", "serving"])
def test_the_next_command_recovers_from_an_owner_sigkilled_at_any_point(short_tmp, point):
    home = short_tmp / "home"
    try:
        assert command(home).returncode == 0  # the data dir exists: start-up only
        killed = command(home, f"{point}:SIGKILL")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        if point != "start":  # (killed while pg_ctl waits, the server may be starting)
            assert [p.name() for p in left_behind(home)].count("postgres") >= 1
        done = command(home)
        assert done.returncode == 0, done.stderr
        assert_nothing_left(home)
    finally:
        clean_up(home)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
@pytest.mark.reliability("defect-6")
def test_a_refused_home_directory_is_left_untouched(short_tmp):
    private = short_tmp / "home-like"
    private.mkdir(mode=0o700)
    done = command(private / "reprotune")
    assert done.returncode == 2 and "cannot enter" in done.stderr, done.stderr
    assert list(private.iterdir()) == []  # no .pg.lock, no directory
