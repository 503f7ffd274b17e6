"""A real socket proxy in front of PostgreSQL that can cut a connection right after the
server committed: it forwards a transaction's COMMIT, swallows the server's reply and
closes both sides, so the client cannot know whether its transaction committed.

It reads the frontend/backend protocol's framing only (a type byte and a length): the
client's first message is the untyped startup packet (connect with
`sslmode=disable&gssencmode=disable`, so no SSL or GSS negotiation comes first), every
later message is typed. A transaction "writes trials" when a Query or Parse message in
it says `INSERT INTO trials` (or it binds a statement prepared from one); the Nth COMMIT
of such a transaction (over all connections) is the one cut (`cut_trial_commit = N`),
once. `dropped` counts the replies swallowed.

    with PgProxy(upstream_conninfo) as proxy:
        proxy.cut_trial_commit = 2
        ... connect to proxy.conninfo(dbname) ...
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

TRIALS_INSERT = b"INSERT INTO TRIALS "


class PgProxy:
    def __init__(self, upstream_conninfo: str) -> None:
        params = conninfo_to_dict(upstream_conninfo)
        host = str(params.get("host") or "/tmp")
        port = int(params.get("port") or 5432)
        self._user = params.get("user")
        self._upstream: Any = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        self.cut_trial_commit: int | None = None
        self.trial_commits = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closing = False

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(
            host="127.0.0.1", port=self.port, user=self._user, dbname=dbname,
            sslmode="disable", gssencmode="disable",
        )  # fmt: skip

    def __enter__(self) -> PgProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing = True
        _close(self._listener)  # shutdown wakes the thread blocked in accept()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=10)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            family = socket.AF_UNIX if isinstance(self._upstream, str) else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(self._upstream)
            with self._lock:
                self._sockets += [client, server]
            link = _Link(self, client, server)
            self._spawn(link.client_to_server)
            self._spawn(link.server_to_client)

    def _is_the_cut(self) -> bool:
        with self._lock:
            self.trial_commits += 1
            return self.trial_commits == self.cut_trial_commit


class _Link:
    """One client connection and its server connection."""

    def __init__(self, proxy: PgProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.cut = threading.Event()  # the next reply ends this link unforwarded

    def client_to_server(self) -> None:
        writes_trials = False
        trial_statements: set[bytes] = set()  # prepared statements that insert trials
        try:
            self.server.sendall(_read_untyped(self.client))  # the startup packet
            while True:
                kind, message = _read_typed(self.client)
                body = message[5:]
                if kind == b"P" and TRIALS_INSERT in body.upper():  # Parse: name, query, ...
                    trial_statements.add(body.split(b"\0", 1)[0])
                    writes_trials = True
                elif kind == b"B":  # Bind: portal, statement, ...
                    writes_trials |= body.split(b"\0", 2)[1] in trial_statements
                elif kind == b"Q":
                    statement = body.rstrip(b"\0").strip().upper()
                    writes_trials |= TRIALS_INSERT in statement
                    if statement == b"COMMIT" and writes_trials and self.proxy._is_the_cut():
                        self.cut.set()
                    if statement in (b"COMMIT", b"ROLLBACK"):
                        writes_trials = False
                self.server.sendall(message)
        except (OSError, EOFError):
            pass
        finally:
            if not self.cut.is_set():
                _close(self.server)
                _close(self.client)

    def server_to_client(self) -> None:
        try:
            while True:
                kind, message = _read_typed(self.server)
                if self.cut.is_set():
                    if kind == b"Z":  # ReadyForQuery: the server has answered the COMMIT
                        with self.proxy._lock:
                            self.proxy.dropped += 1
                        break
                    continue  # CommandComplete and the rest of the reply: swallowed
                self.client.sendall(message)
        except (OSError, EOFError):
            pass
        finally:
            _close(self.client)
            _close(self.server)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_untyped(sock: socket.socket) -> bytes:
    header = _read_exactly(sock, 4)
    (length,) = struct.unpack("!I", header)
    return header + _read_exactly(sock, length - 4)


def _read_typed(sock: socket.socket) -> tuple[bytes, bytes]:
    header = _read_exactly(sock, 5)
    (length,) = struct.unpack("!I", header[1:])
    return header[:1], header + _read_exactly(sock, length - 4)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
