"""Running the embedded server's programs (initdb, pg_ctl), and the signals around it
(used by cluster.records.pg_server; its docstring states the contract).

- `run_server_program` runs a program as the server's user; on Linux the program gets
  PR_SET_PDEATHSIG, so it dies with the process that ran it (even by SIGKILL).
- `HeldSignals` holds SIGINT and SIGTERM while the server is started, joined or
  stopped; `sigterm_interrupts` makes SIGTERM raise KeyboardInterrupt while it is used.
- `kill_programs_on` ends programs still working on a directory (an initdb whose owner
  died where PR_SET_PDEATHSIG does not exist).

Test hook (never set outside tests): `REPROTUNE_TEST_SIGNAL_IN_PG_START=POINT:SIGNAL`
sends SIGNAL (SIGKILL, SIGTERM, SIGINT) to this process at POINT (`signal_hook(POINT)`
marks the points; see cluster.records.pg_server). At `initdb` the program is frozen with
SIGSTOP first, so that one outliving its owner would stay for a test to see.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROGRAM_TIMEOUT_S = 60
SIGNAL_HOOK = "REPROTUNE_TEST_SIGNAL_IN_PG_START"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started or stopped; the message says why."""


class HeldSignals:
    """SIGINT and SIGTERM are recorded, not acted on, inside the block (main thread only);
    `deliver()` raises them again once the previous handlers are back."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._caught: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> HeldSignals:
        if threading.current_thread() is threading.main_thread():
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._hold)
        return self

    def _hold(self, number: int, frame: object) -> None:
        self._caught.append(number)

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def deliver(self) -> None:
        caught, self._caught = self._caught, []
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does) while the server is in use, when
    nothing else handles it: the default would end the process without stopping it."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is signal.default_int_handler:  # still ours
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def signal_hook(point: str, program: subprocess.Popen[str] | None = None) -> None:
    """The test hook of the module docstring."""
    where, _, name = os.environ.get(SIGNAL_HOOK, "").partition(":")
    if where != point or name not in ("SIGKILL", "SIGTERM", "SIGINT"):
        return
    if program is not None and point == "initdb":
        program.send_signal(signal.SIGSTOP)
    os.kill(os.getpid(), getattr(signal, name))


def kill_programs_on(directory: Path) -> None:
    """Kill what still runs on `directory` (an initdb whose owner was SIGKILLed where
    programs do not die with their parent). The caller holds the data dir's lock, so no
    live command can be using it."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if str(directory) in " ".join(process.info["cmdline"] or []):
                found.extend([*process.children(recursive=True), process])
        except psutil.Error:
            continue
    for process in found:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(found, timeout=PROGRAM_TIMEOUT_S)


def run_server_program(program: Path, user: str | None, *args: str, hook: str = "") -> None:
    """Run a PostgreSQL program (as `user` when given); raise with its output on failure.

    On Linux the program is SIGKILLed if this process dies first (a SIGKILLed command
    must not leave an initdb writing into a data dir the next command is making).
    """
    command = [str(program), *args]
    process = subprocess.Popen(
        command,
        user=user,
        cwd="/",  # the server user may not be allowed into our working directory
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_die_with_parent if _PRCTL is not None else None,
    )
    with process:
        if hook:
            signal_hook(hook, process)
        try:
            output, _ = process.communicate(timeout=PROGRAM_TIMEOUT_S + 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise EmbeddedServerError(f"{program.name} {' '.join(args)} did not finish") from None
        except BaseException:
            process.kill()
            raise
    if process.returncode != 0:
        raise EmbeddedServerError(
            f"{program.name} {' '.join(args)} failed (exit {process.returncode}): {output.strip()}"
        )


def _load_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec (after its user changed, which would clear it)."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
