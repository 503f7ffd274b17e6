"""Ray for a run: the cluster address checked before anything is written, then the Ray
the run uses (joined, or started locally) with the kernel compiled meanwhile."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cluster.errors import Failed, InvalidInput

RAY_CONNECT_TIMEOUT_S = 5.0


def check_ray_address(address: str | None) -> None:
    """Refuse a cluster address (`--address`, else $RAY_ADDRESS) where nothing answers,
    before anything is written: `ray.init` would wait many minutes for it.

    Only `host:port` forms are tried ("auto" and "local" are Ray's to resolve); a TCP
    connection to the GCS port is enough to tell a cluster that is not there.
    """
    import socket

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return  # ray_session uses the Ray this process is connected to
    flag = "--address"
    if not address:
        address, flag = os.environ.get("RAY_ADDRESS"), "RAY_ADDRESS"
    if not address or address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1].rstrip("/")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInput(f"{flag} {address}: expected HOST:PORT of a Ray cluster's head")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidInput(
            f"{flag} {address}: no Ray cluster answers there ({reason}); start one with "
            f"`ray start --head` or leave the address out to run on a local Ray"
        ) from None


@contextmanager
def ray_session(
    address: str | None = None, *, dashboard: bool = False, warm: bool = True
) -> Iterator[None]:
    """Ray for the run: the one already initialized in this process, the cluster at
    `address` (or $RAY_ADDRESS, as `ray job submit` sets it), else a new local one.
    Only what this function started or joined is shut down afterwards. `warm` compiles
    the backtest kernel meanwhile (see `_start_warm_up`)."""
    import ray

    if ray.is_initialized():
        yield
        return
    address = address or os.environ.get("RAY_ADDRESS")
    _hide_token_auth_notice()
    warming = _start_warm_up() if warm else None
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except ConnectionError as error:
            raise Failed(
                f"cannot connect to the Ray cluster at {address}: {str(error).splitlines()[0]}"
                "; a cluster started with token authentication (Ray's default) needs "
                "RAY_AUTH_MODE=token and its token in this environment too"
            ) from None
    else:
        ray.init(
            address="local",
            include_dashboard=dashboard,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    if warming is not None:
        warming.join()
    try:
        yield
    finally:
        ray.shutdown()


def _hide_token_auth_notice() -> None:
    """Ray 2.60 turns token authentication on by default for a local Ray and warns, at
    every start, that it did. It stays on (DESIGN.md); the notice is not for our users."""

    class Hide(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not record.getMessage().startswith("Token authentication is enabled for")

    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, Hide) for f in logger.filters):
        logger.addFilter(Hide())


def _start_warm_up() -> threading.Thread:
    """Compile (or load) the kernel in this process while Ray starts, so that the
    workers load it from the on-disk cache instead of each compiling it cold."""

    def warm_up() -> None:
        from trainable.backtest import warm_up as compile_kernel

        compile_kernel()

    thread = threading.Thread(target=warm_up, name="kernel-warm-up", daemon=True)
    thread.start()
    return thread
