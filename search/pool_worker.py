"""One suggestion process of a `search.pool.SuggestionPool` (its `main()`).

Started by the pool with the pinned environment (`search.pinned`) already in place,
so numpy, scipy and scikit-learn load pinned. It says hello (its numeric platform and
any reason its numerics are not the pinned ones), then answers requests one at a time
until its stdin closes: each request is an object with `compute()` (a
`search.bayesian.BatchRequest`), each reply ("ok", result) or ("error", message).
Messages are pickles behind an 8-byte length, on stdin and on a private copy of
stdout (anything printed goes to stderr, so it cannot corrupt a reply). It ignores
SIGINT: the driver decides when it ends, by closing its stdin.

Test hook: with `REPROTUNE_TEST_KILL_POOL_WORKER="<seed>:<batch>:<marker file>"` in its
environment, the process SIGKILLs itself on receiving that seed's batch, once (it
creates the marker file first; a replacement finds it and computes normally).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
from typing import IO, Any

KILL_HOOK_ENV = "REPROTUNE_TEST_KILL_POOL_WORKER"
_LENGTH = struct.Struct("<Q")


class Ping:
    """A request that computes nothing: its round trip is the pool's own overhead."""

    def compute(self) -> int:
        return os.getpid()


def write_frame(stream: IO[bytes], message: Any) -> None:
    write_pickled(stream, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def write_pickled(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any | None:
    """The next message, or None at the end of the stream (the other side is gone)."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)


def _kill_hook(request: Any) -> None:
    hook = os.environ.get(KILL_HOOK_ENV)
    if not hook:
        return
    seed, batch, marker = hook.split(":", 2)
    if (getattr(request, "seed", None), getattr(request, "batch", None)) != (int(seed), int(batch)):
        return
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    import search.bayesian  # noqa: F401  (load the numerics before describing them)
    from search.pinned import numeric_platform, pin_problems

    hello = {"pid": os.getpid(), "platform": numeric_platform(), "problems": pin_problems()}
    write_frame(replies, hello)
    while (request := read_frame(requests)) is not None:
        _kill_hook(request)
        try:
            reply: tuple[str, Any] = ("ok", request.compute())
        except Exception as error:  # the driver re-raises it with the request named
            reply = ("error", f"{type(error).__name__}: {error}")
        write_frame(replies, reply)
    return 0
