"""The embedded server's lifecycle with real processes: where it lives, who stops it,
and the server a SIGKILLed owner left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from cluster.errors import InvalidInput
from cluster.records.pg_server import HANDLES_FILE, default_data_dir, embedded_server

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parent.parent
OWNER = """
import sys
from pathlib import Path
from cluster.records.pg_server import embedded_server
with embedded_server(Path(sys.argv[1])):
    print("up", flush=True)
    sys.stdin.readline()  # wait until told to leave (or killed)
"""


def _owner(data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(data_dir)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    assert owner.stdout.readline() == "up\n"
    return owner


def _postmaster(data_dir: Path) -> int | None:
    """The pid of a live postmaster for `data_dir`, read from its postmaster.pid."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (FileNotFoundError, psutil.NoSuchProcess):
        return None
    return pid if alive else None


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _handles(data_dir: Path) -> list[int]:
    return json.loads((data_dir / HANDLES_FILE).read_text())


def _select_one(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT 1").fetchone()[0]


def test_the_data_dir_follows_reprotune_home_then_root_then_the_user_dir():
    assert default_data_dir({"REPROTUNE_HOME": "/srv/rt"}, euid=0) == Path("/srv/rt/pg")
    assert default_data_dir({"REPROTUNE_HOME": "/srv/rt"}, euid=1000) == Path("/srv/rt/pg")
    assert default_data_dir({}, euid=0) == Path("/var/lib/reprotune/pg")  # never under /root
    user_dir = default_data_dir({"HOME": "/home/quant"}, euid=1000)
    assert user_dir.name == "pg" and user_dir.parent.name == "reprotune"
    assert not str(user_dir).startswith("/var/lib")


def test_a_server_left_by_a_sigkilled_owner_is_stopped_and_replaced(short_tmp):
    data_dir = short_tmp / "pg"
    owner = _owner(data_dir)
    orphan = _postmaster(data_dir)
    owner.kill()  # SIGKILL: the owner cannot stop its server
    owner.wait()
    assert orphan is not None and _postmaster(data_dir) == orphan  # still serving, orphaned
    with embedded_server(data_dir) as server:
        replacement = _postmaster(data_dir)
        assert replacement not in (None, orphan)
        assert _gone(orphan)
        assert _select_one(server.conninfo()) == 1
        assert _handles(data_dir) == [os.getpid()]
    assert _postmaster(data_dir) is None and _gone(replacement)
    assert _handles(data_dir) == []


def test_the_last_process_out_stops_the_server(short_tmp):
    data_dir = short_tmp / "pg"
    owner = _owner(data_dir)
    postmaster = _postmaster(data_dir)
    try:
        with embedded_server(data_dir) as server:  # joins the running server
            assert _postmaster(data_dir) == postmaster
            assert sorted(_handles(data_dir)) == sorted([owner.pid, os.getpid()])
            owner.communicate("leave\n")  # the first owner exits normally...
            assert owner.returncode == 0
            assert _select_one(server.conninfo()) == 1  # ...and the server stays for us
            assert _handles(data_dir) == [os.getpid()]
        assert _postmaster(data_dir) is None and _gone(postmaster)
    finally:
        owner.kill()
        owner.wait()


def test_nested_uses_in_one_process_share_the_server(short_tmp):
    data_dir = short_tmp / "pg"
    with embedded_server(data_dir) as outer:
        with embedded_server(data_dir) as inner:
            assert inner == outer
        assert _select_one(outer.conninfo()) == 1  # the inner exit did not stop it
    assert _postmaster(data_dir) is None


def test_a_long_data_dir_gets_a_short_socket_dir(short_tmp):
    data_dir = short_tmp / ("d" * 90) / "pg"
    assert len(str(data_dir / ".s.PGSQL.5432").encode()) > 100
    socket_dirs = []
    try:
        with embedded_server(data_dir) as server:
            socket_dirs.append(server.socket_dir)
            assert len(str(server.socket_dir / ".s.PGSQL.5432").encode()) < 100
            assert _select_one(server.conninfo()) == 1
    finally:
        for socket_dir in socket_dirs:  # outside short_tmp: remove it ourselves
            shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_root_refuses_a_directory_the_server_user_cannot_enter_and_changes_nothing(short_tmp):
    private = short_tmp / "home-like"
    private.mkdir(mode=0o700)
    refused = pytest.raises(InvalidInput, match=r"cannot enter .*home-like \(mode drwx------\)")
    with refused, embedded_server(private / "pg"):
        pass
    assert private.stat().st_mode & 0o777 == 0o700
    assert not (private / "pg").exists()
