"""Real Ray nodes on this machine, started with `ray start` the way a cluster's are, for
tests and benchmarks; every process they start is stopped again, and only those.

`ray stop` is never used: it stops every Ray process on the machine, including other
people's clusters. Each node here is a `ray start --block` process started in a session
of its own; stopping it sends SIGTERM (then SIGKILL after a grace period) to that
process, everything it started (Ray's daemons, workers, job drivers, which run in
sessions of their own but descend from the node's raylet) and anything left in its
session. Every port is chosen free at start (other clusters run on this machine), and
every node has its own `--temp-dir`.

Token authentication stays on (Ray 2.60's default): clients get `RAY_AUTH_MODE=token`
through `client_env()`, and the token is the user's `~/.ray/auth_token`.

    with LocalCluster(base_dir, env={"DATABASE_URL": url}) as cluster:
        cluster.start_head(num_cpus=1, dashboard=True)
        cluster.add_node(num_cpus=1)
        subprocess.run(["ray", "job", "submit", "--address", cluster.dashboard_url, ...],
                       env=cluster.client_env())
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent
RAY = str(BIN / "ray")
GiB = 1024**3
MiB = 1024**2


def free_ports(*names: str) -> dict[str, int]:
    """A distinct free port per name (sockets held open together so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports = {}
        for name in names:
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports[name] = int(probe.getsockname()[1])
        return ports


def auth_token() -> str:
    """The token this machine's Ray clients send (`~/.ray/auth_token`)."""
    return (Path.home() / ".ray" / "auth_token").read_text().strip()


@dataclass
class Node:
    process: subprocess.Popen
    temp_dir: Path
    ports: dict[str, int]
    log: Path
    node_id: str | None = None  # Ray's id, once the cluster counts the node

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}/metrics"


@dataclass
class LocalCluster:
    """A head and worker nodes on this machine (see the module docstring). `env` is
    added to every node's environment, as a cluster's nodes get theirs from their
    machine: job drivers inherit it (DATABASE_URL, PGPASSFILE)."""

    base_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    start_timeout_s: float = 180.0

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def head(self) -> Node:
        return self.nodes[0]

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.head.ports['gcs']}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.head.ports['dashboard']}"

    def node_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        environment = {**os.environ, **self.env, **(extra or {}), "RAY_AUTH_MODE": "token"}
        # A job's `python` is the first on the raylet's PATH: this virtual environment's,
        # as on a cluster whose nodes run Ray from the project's environment.
        environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
        for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "PYTHONPATH"):
            environment.pop(name, None)
        return environment

    def client_env(self, **extra: str) -> dict[str, str]:
        """What a user's shell needs to talk to this cluster (token auth on)."""
        environment = {**os.environ, "RAY_AUTH_MODE": "token", **extra}
        environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
        for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
            environment.pop(name, None)
        return environment

    def start_head(
        self,
        *,
        num_cpus: int,
        memory: int = 2 * GiB,
        object_store_memory: int = 256 * MiB,
        dashboard: bool = True,
    ) -> Node:
        if self.nodes:
            raise RuntimeError("the head is already started")
        # `ray start` with token auth wants the token to exist (a fresh machine has none);
        # this makes it only when missing, as `ray.init()` of a local Ray would.
        subprocess.run(
            [RAY, "get-auth-token", "--generate"],
            env=self.client_env(), capture_output=True, check=True, timeout=120,
        )  # fmt: skip
        ports = free_ports("gcs", "dashboard", "client")
        args = [
            "--head",
            f"--port={ports['gcs']}",
            f"--include-dashboard={str(dashboard).lower()}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={ports['dashboard']}",
            f"--ray-client-server-port={ports['client']}",
        ]
        node = self._start(args, ports, num_cpus, memory, object_store_memory, {})
        self._wait_for_head(node, dashboard)
        if dashboard:
            node.node_id = self._new_node_id()
        return node

    def add_node(
        self,
        *,
        num_cpus: int,
        memory: int = 2 * GiB,
        object_store_memory: int = 256 * MiB,
        env: dict[str, str] | None = None,
    ) -> Node:
        """A worker node joining the head (`ray start --address`), with `env` added to
        its environment only (its workers inherit it); returns once the cluster counts
        it (needs the head's dashboard)."""
        node = self._start(
            [f"--address={self.gcs_address}"], {}, num_cpus, memory, object_store_memory, env
        )
        deadline = time.monotonic() + self.start_timeout_s
        while len(self.alive_nodes()) < len(self.nodes):
            self._check_running(node)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node did not join in {self.start_timeout_s} s")
            time.sleep(0.5)
        node.node_id = self._new_node_id()
        return node

    def _new_node_id(self) -> str:
        """The id of the one alive node not known yet (the node just started)."""
        known = {node.node_id for node in self.nodes}
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            new = [n["node_id"] for n in self.alive_nodes() if n["node_id"] not in known]
            if len(new) == 1:
                return str(new[0])
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected one new alive node, found {new}")
            time.sleep(0.5)

    def remove_node(self, node: Node) -> None:
        """SIGKILL every process of a worker node at once, as when its machine is lost;
        returns once the cluster no longer counts it alive."""
        if node is self.head:
            raise ValueError("the head is not removed (the cluster would end)")
        _kill(_node_processes(node), signal.SIGKILL, grace_s=10.0)
        self.nodes.remove(node)
        deadline = time.monotonic() + self.start_timeout_s
        while any(n["node_id"] == node.node_id for n in self.alive_nodes()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster still counts the node {node.node_id}")
            time.sleep(0.2)

    def store_stats(self, node: Node) -> dict[str, int]:
        """The node's object store counters from its raylet (GetNodeStats), e.g.
        `cumulative_created_objects` / `_bytes`: objects put on or pulled to it. Asked
        from a process of its own, which sends the token (RAY_AUTH_MODE=token)."""
        done = subprocess.run(
            [sys.executable, "-c", _STORE_STATS, str(node.ports["node_manager"])],
            env=self.client_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"GetNodeStats failed:\n{done.stderr[-2000:]}")
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    def _start(
        self,
        args: list[str],
        ports: dict[str, int],
        num_cpus: int,
        memory: int,
        object_store_memory: int,
        env: dict[str, str] | None,
    ) -> Node:
        names = ("node_manager", "object_manager", "agent", "agent_grpc", "runtime_env_agent")
        while True:  # distinct from the ports chosen above too
            more = free_ports(*names, "metrics")
            if not set(more.values()) & set(ports.values()):
                break
        ports = {**ports, **more}
        # Short: Ray's Unix socket paths under it must stay under ~100 bytes.
        temp_dir = Path(self.base_dir) / f"n{len(self.nodes)}"
        temp_dir.mkdir(parents=True, exist_ok=True)
        log = temp_dir / "ray-start.log"
        command = [
            RAY, "start", "--block", *args,
            f"--temp-dir={temp_dir}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={num_cpus}",
            f"--memory={memory}",
            f"--object-store-memory={object_store_memory}",
            f"--node-manager-port={ports['node_manager']}",
            f"--object-manager-port={ports['object_manager']}",
            f"--dashboard-agent-listen-port={ports['agent']}",
            f"--dashboard-agent-grpc-port={ports['agent_grpc']}",
            f"--runtime-env-agent-port={ports['runtime_env_agent']}",
            f"--metrics-export-port={ports['metrics']}",
            # 0: workers bind ports the OS picks (no shared range with other clusters).
            "--min-worker-port=0", "--max-worker-port=0",
            "--disable-usage-stats",
        ]  # fmt: skip
        with open(log, "w") as output:
            process = subprocess.Popen(
                command,
                env=self.node_env(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        node = Node(process, temp_dir, ports, log)
        self.nodes.append(node)
        return node

    def _check_running(self, node: Node) -> None:
        if node.process.poll() is not None:
            raise RuntimeError(
                f"`ray start` exited with {node.process.returncode}:\n"
                + node.log.read_text()[-3000:]
            )

    def _wait_for_head(self, node: Node, dashboard: bool) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            self._check_running(node)
            if dashboard and _answers(f"{self.dashboard_url}/api/version"):
                break
            if not dashboard and "--block" in node.log.read_text():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the head did not start in {self.start_timeout_s} s")
            time.sleep(0.5)

    def alive_nodes(self) -> list[dict[str, Any]]:
        """The cluster's alive nodes, from the dashboard's state API."""
        listed = self.dashboard_get("/api/v0/nodes?limit=100")
        return [n for n in listed["data"]["result"]["result"] if n["state"] == "ALIVE"]

    def dashboard_get(self, path: str) -> Any:
        """GET a dashboard endpoint with the token; its JSON."""
        request = urllib.request.Request(
            self.dashboard_url + path, headers={"Authorization": f"Bearer {auth_token()}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def processes(self) -> list[psutil.Process]:
        """Every process of every node (see `_node_processes`)."""
        found: dict[int, psutil.Process] = {}
        for node in self.nodes:
            found.update((p.pid, p) for p in _node_processes(node))
        return list(found.values())

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop every process of every node (see the module docstring)."""
        _kill(self.processes(), signal.SIGTERM, grace_s)
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.process.wait(timeout=grace_s)
        self.nodes.clear()


def _node_processes(node: Node) -> list[psutil.Process]:
    """The node's `ray start` process, its descendants and whatever else runs in its
    session (job drivers and workers that started sessions of their own descend from
    the raylet)."""
    found: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(node.process.pid)
        found[root.pid] = root
        for child in root.children(recursive=True):
            found[child.pid] = child
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == node.process.pid:
                found[process.pid] = process
    return list(found.values())


def _kill(processes: list[psutil.Process], first: signal.Signals, grace_s: float) -> None:
    """`first` to each process, SIGKILL to those still alive after `grace_s`."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.send_signal(first)
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=grace_s)


_STORE_STATS = """
import json, sys
from google.protobuf.json_format import MessageToDict
from ray._private.internal_api import node_stats
reply = node_stats("127.0.0.1", int(sys.argv[1]), include_memory_info=False)
stats = MessageToDict(reply.store_stats, preserving_proto_field_name=True)
print(json.dumps({k: int(v) for k, v in stats.items() if str(v).isdigit()}))
"""


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True  # 401 without the token: it is up
    except (urllib.error.URLError, OSError):
        return False
    return True
