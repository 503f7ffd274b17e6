"""`SuggestionPool`: the pinned processes on the driver's host that compute Bayesian batches.

How the driver uses it, for every Bayesian ensemble (the other kinds ignore the pool):

    with SuggestionPool() as pool:                      # size: the driver's free cores
        platform = pool.platform                        # record it with the ensemble
        searchers = {seed: make_searcher("bayesian", ..., seed=seed, pool=pool)
                     for seed in seeds}                 # or rebuild_searchers(..., pool=pool)
        tuner = Tuner(..., search_alg=TuneSearcher(searchers, on_result))
        tuner.fit()

What it guarantees:
- Pinned numerics: each process starts with `search.pinned.pinned_environment()`, so
  numpy, scipy and scikit-learn load pinned; the pool checks what each process reports
  (`pin_problems`) and refuses to run in one that is not pinned. `pool.platform` is the
  numeric platform those processes see (`search.pinned.numeric_platform`).
- Never blocking Tune: a searcher submits a due batch (`submit` returns a future at
  once) and its `ask()` returns nothing until the batch arrives; the future's callbacks
  wake the interleaver. Several seeds' due batches run in parallel, one per process.
- Same bits whatever the pool: a batch is a pure function of its request (its seed's
  space, options, history and batch index), computed by a process that keeps nothing
  from one request to the next, so the pool size, which process computes which batch
  and in what order never change a suggestion.
- A process that dies mid-computation (killed, out of memory) is replaced and the
  request computed again, up to `max_attempts` times; then the future fails with
  `SuggestionError`, and so does a computation that raises.
- Processes live on this host only (searchers run on the driver's host, never as Ray
  tasks), start with the pool and stop at `close()` (or the end of the `with` block);
  if the driver dies, they see their stdin close and exit.

The size is execution-only: it is never part of a job's identity, and any size gives
the same records. `default_pool_size()` is the driver's free cores: the cores this
process may run on, minus one for the driver itself (Tune's loop, the records), between
1 and 8; pass `size` when Ray trials share this host. Each process holds numpy, scipy,
scikit-learn and bayes_opt in memory (~190 MB resident here) and takes ~1.5 s of CPU
to start.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from search.pinned import pinned_environment
from search.pool_worker import read_frame, write_pickled

logger = logging.getLogger(__name__)

MAX_DEFAULT_SIZE = 8
# The directory holding the `search` package: the processes run this very code.
_CODE_ROOT = str(Path(__file__).resolve().parent.parent)
# Not `-m search.pool_worker`: importing the package imports that module already.
_WORKER_MAIN = "import sys; from search.pool_worker import main; sys.exit(main())"


class SuggestionError(RuntimeError):
    """A batch could not be computed in the pool (its computation raised, its process
    kept dying, or no process with pinned numerics could be started)."""


class _StartFailed(Exception):
    pass


def default_pool_size() -> int:
    """The driver's free cores (see the module docstring)."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover (not Linux)
        cores = os.cpu_count() or 1
    return max(1, min(cores - 1, MAX_DEFAULT_SIZE))


def _describe(request: Any) -> str:
    return f"seed {getattr(request, 'seed', '?')} batch {getattr(request, 'batch', '?')}"


@dataclass
class _Job:
    request: Any
    future: Future[Any]


class SuggestionPool:
    """`size` pinned processes computing submitted requests; see the module docstring.

    `unpinned_control_for_tests` starts the processes with the driver's environment as
    it is and accepts them unpinned: it exists only for the test that shows the pin is
    what makes CPUs agree. Never use it elsewhere.
    """

    def __init__(
        self,
        size: int | None = None,
        *,
        max_attempts: int = 3,
        unpinned_control_for_tests: bool = False,
    ) -> None:
        size = default_pool_size() if size is None else size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"pool size must be an int >= 1, got {size!r}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.size = size
        self.max_attempts = max_attempts
        self._pinned = not unpinned_control_for_tests
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._hello = threading.Event()
        self._platform: dict[str, Any] | None = None
        self._broken: str | None = None
        self._state = "new"
        self.restarts = 0  # processes replaced after dying mid-request

    # -- lifecycle ------------------------------------------------------------------
    def __enter__(self) -> SuggestionPool:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the processes (in the background: `submit` may be called at once)."""
        if self._state != "new":
            raise RuntimeError(f"the pool is {self._state}; start it once")
        self._state = "running"
        for slot in range(self.size):
            thread = threading.Thread(
                target=self._serve, args=(slot,), name=f"suggestion-pool-{slot}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Cancel what has not started, let running computations end, stop the processes."""
        if self._state != "running":
            self._state = "closed"
            return
        self._state = "closed"
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=60)
        with self._lock:
            leftover = list(self._processes.values())
        for process in leftover:  # only when a thread did not end in time
            process.kill()
            process.wait()

    # -- what searchers and the driver call -----------------------------------------
    def submit(self, request: Any) -> Future[Any]:
        """A future of `request.compute()` computed in a pinned process; returns at once."""
        if self._state != "running":
            raise RuntimeError(f"the suggestion pool is {self._state}, not running")
        if self._broken is not None:
            raise SuggestionError(self._broken)
        future: Future[Any] = Future()
        self._jobs.put(_Job(request, future))
        return future

    @property
    def platform(self) -> dict[str, Any]:
        """The numeric platform of the pool's processes (waits for the first to start)."""
        if self._state == "new":
            raise RuntimeError("start the pool first")
        self._hello.wait()
        if self._platform is None:
            raise SuggestionError(self._broken or "no suggestion process started")
        return copy.deepcopy(self._platform)

    def pids(self) -> list[int]:
        """Process ids of the live processes (for tests and diagnostics)."""
        with self._lock:
            return sorted(p.pid for p in self._processes.values())

    # -- the threads that feed the processes ----------------------------------------
    def _serve(self, slot: int) -> None:
        process: subprocess.Popen[bytes] | None = None
        try:
            with contextlib.suppress(_StartFailed):  # recorded in _broken; jobs fail below
                process = self._spawn(slot)
            while (job := self._jobs.get()) is not None:
                if job.future.set_running_or_notify_cancel():
                    process = self._run(slot, process, job)
        finally:
            if process is not None:
                self._stop(slot, process)

    def _run(
        self, slot: int, process: subprocess.Popen[bytes] | None, job: _Job
    ) -> subprocess.Popen[bytes] | None:
        """Compute one job, replacing the process while it dies; the process after."""
        try:
            request = pickle.dumps(job.request, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            job.future.set_exception(
                SuggestionError(f"{_describe(job.request)} cannot be sent: {error}")
            )
            return process
        for _ in range(self.max_attempts):
            try:
                if process is None:
                    process = self._spawn(slot)
                assert process.stdin is not None and process.stdout is not None
                write_pickled(process.stdin, request)
                reply = read_frame(process.stdout)
            except _StartFailed as error:
                job.future.set_exception(SuggestionError(str(error)))
                return None
            except OSError:  # the pipe broke: the process is gone
                reply = None
            except Exception as error:  # a garbled reply (the process's state is unknown)
                if process is not None:
                    self._reap(slot, process)
                job.future.set_exception(
                    SuggestionError(f"{_describe(job.request)}: {type(error).__name__}: {error}")
                )
                return None
            if reply is None:
                assert process is not None
                logger.warning(
                    "suggestion process %s died computing %s (exit code %s); replacing it",
                    process.pid, _describe(job.request), self._reap(slot, process),
                )  # fmt: skip
                process = None
                with self._lock:
                    self.restarts += 1
                continue
            status, value = reply
            if status == "ok":
                job.future.set_result(value)
            else:
                job.future.set_exception(SuggestionError(f"{_describe(job.request)}: {value}"))
            return process
        job.future.set_exception(
            SuggestionError(
                f"suggestion processes died {self.max_attempts} times computing "
                f"{_describe(job.request)}"
            )
        )
        return None

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        """A new process in `slot`, started and checked; _StartFailed breaks the pool."""
        if self._broken is not None:
            raise _StartFailed(self._broken)
        process = None
        try:
            env = pinned_environment() if self._pinned else dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [_CODE_ROOT, env.get("PYTHONPATH")]))
            process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_MAIN],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            with self._lock:
                self._processes[slot] = process
            assert process.stdout is not None
            hello = read_frame(process.stdout)
            if hello is None:
                problem = f"a suggestion process exited with {self._reap(slot, process)} at start"
            elif hello["problems"] and self._pinned:
                problem = "a suggestion process's numerics are not pinned: " + "; ".join(
                    hello["problems"]
                )
            else:
                problem = None
        except Exception as error:  # cannot start Python, a garbled hello
            problem = f"a suggestion process could not start: {type(error).__name__}: {error}"
        if problem is not None:
            if process is not None:
                self._reap(slot, process)
            with self._lock:
                self._broken = self._broken or problem
            self._hello.set()
            raise _StartFailed(problem)
        assert process is not None and hello is not None
        with self._lock:
            if self._platform is None:
                self._platform = hello["platform"]
        self._hello.set()
        return process

    def _reap(self, slot: int, process: subprocess.Popen[bytes]) -> int | None:
        """Make sure `process` is gone; its exit code."""
        with self._lock:
            if self._processes.get(slot) is process:
                del self._processes[slot]
        process.kill()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        return process.wait()

    def _stop(self, slot: int, process: subprocess.Popen[bytes]) -> None:
        """End a process the normal way (its stdin closes), killing it if it lingers."""
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._reap(slot, process)
