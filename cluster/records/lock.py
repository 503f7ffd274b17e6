"""The advisory lock a running ensemble holds (used only by cluster.records.recorder).

The lock is a session lock on its own connection, outside the pool: it lives exactly
as long as that session, so a driver that dies (even SIGKILL) releases it and the
ensemble's live status becomes `interrupted` (SQL view ensemble_overview).
"""

from __future__ import annotations

import os
import socket
import uuid

import psycopg

from cluster.records.types import EnsembleBusy

_HOLDER = (
    "SELECT a.application_name, a.backend_start FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
    "  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "  AND l.classid = ((ensemble_lock_key(%(id)s) >> 32) & 4294967295)::oid "
    "  AND l.objid = (ensemble_lock_key(%(id)s) & 4294967295)::oid"
)


class EnsembleLock:
    """`pg_try_advisory_lock(ensemble_lock_key(id))` on a dedicated connection."""

    def __init__(self, conninfo: str, ensemble_id: uuid.UUID) -> None:
        self._conninfo = conninfo
        self.ensemble_id = ensemble_id
        self._conn: psycopg.Connection | None = None
        # Shown to whoever finds the lock taken (pg_stat_activity.application_name).
        self.holder_name = f"reprotune driver pid {os.getpid()} on {socket.gethostname()}"[:63]

    def acquire(self) -> None:
        """Take the lock, or raise EnsembleBusy naming the process that has it."""
        conn = psycopg.connect(
            self._conninfo, autocommit=True, application_name=self.holder_name, connect_timeout=10
        )
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(ensemble_lock_key(%s))", [self.ensemble_id]
            ).fetchone()
            if not (row and row[0]):
                holder = conn.execute(_HOLDER, {"id": self.ensemble_id}).fetchone()
                who = (
                    f"{holder[0]!r}, connected since {holder[1]:%Y-%m-%d %H:%M:%S %Z}"
                    if holder
                    else "another session"
                )
                raise EnsembleBusy(f"ensemble {self.ensemble_id} is running elsewhere ({who})")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def ensure_held(self) -> None:
        """After a lost connection: if this lock's session died too, take the lock again
        (EnsembleBusy if another process took it meanwhile)."""
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return  # the session is alive, so it still holds the lock
            except psycopg.OperationalError:
                self._conn.close()
                self._conn = None
        self.acquire()

    def release(self) -> None:
        """Unlock, then end the session (which would release the lock anyway).

        The explicit unlock makes the release visible to every session when this
        returns: closing alone lets the backend exit, and drop the lock, a moment later.
        """
        if self._conn is not None:
            try:
                self._conn.execute(
                    "SELECT pg_advisory_unlock(ensemble_lock_key(%s))", [self.ensemble_id]
                )
            except psycopg.Error:
                pass  # the session is gone, and its lock with it
            finally:
                self._conn.close()
                self._conn = None
