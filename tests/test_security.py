"""Secrets and hostile input (issue 13, "Security"):

- a whole ensemble against a password-protected PostgreSQL (password in a PGPASSFILE
  only), then every artifact grepped for the password: the driver's output, Tune's
  storage, Ray's job table (each driver's command line) and session directory (every
  log), the records, exported files, and the messages of failing commands;
- the same run has a job name and a pair name made of quotes, semicolons and SQL: both
  are stored and shown verbatim, and every query in the code is parameterized;
- the Ray dashboard and job API that `--dashboard` starts listen on 127.0.0.1 and want
  the token; every config the project ships keeps them so.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES, REPO_ROOT, fresh_database
from faults import driver
from psycopg.conninfo import make_conninfo

HOSTILE_NAME = 'Robert\'); DROP TABLE trials; -- "x" $$ \\ ; SELECT pg_sleep(10); /*'
HOSTILE_PAIR = "BTC'/USDT\"; DELETE FROM trials WHERE ''=''; --"
HOSTILE_EXCHANGE = "ex'); DROP TABLE datasets; --"


def _password(passfile: str) -> str:
    """The password in the fixture's PGPASSFILE (host:port:db:user:password)."""
    return Path(passfile).read_text().strip().split(":")[-1]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _records_as_text(url: str) -> str:
    """Every row of every table, as JSON text."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )]  # fmt: skip
        return "\n".join(
            row[0]
            for table in tables
            for row in conn.execute(
                psycopg.sql.SQL("SELECT row_to_json(t)::text FROM {} t").format(
                    psycopg.sql.Identifier(table)
                )
            )
        )


@pytest.mark.ray
@pytest.mark.postgres
@pytest.mark.slow
def test_the_password_never_leaves_its_file_and_hostile_names_are_stored_verbatim(
    debian_pg, short_tmp, ray_local
):
    password = _password(os.environ["PGPASSFILE"])
    assert len(password) == 32
    with contextmanager(fresh_database)(debian_pg) as url:
        # The password is really needed: without the password file, no connection.
        without = {k: v for k, v in os.environ.items() if k != "PGPASSFILE"}
        refused = subprocess.run(
            [sys.executable, "-c", f"import psycopg; psycopg.connect({url!r})"],
            env={**without, "PGPASSFILE": "/nonexistent"}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert refused.returncode != 0 and "password" in refused.stderr

        candles = short_tmp / "candles.parquet"
        table = pq.read_table(FIXTURE_CANDLES).slice(0, 600)
        provenance = json.dumps({"exchange": HOSTILE_EXCHANGE, "pair": HOSTILE_PAIR})
        pq.write_table(table.replace_schema_metadata({"provenance": provenance}), candles)
        job = short_tmp / "job.toml"
        job.write_text(
            f'name = {json.dumps(HOSTILE_NAME)}\nstrategy = "toy_quadratic"\n'
            "iterations = 6\nbatch_size = 3\nseeds = [5, 6]\n"
            f'[data]\nkind = "parquet"\npath = "{candles}"\ntimeframe = "5m"\n'
            '[searcher]\nkind = "bayesian"\nn_initial = 3\n'
        )
        # The driver joins this module's Ray, whose job table and logs outlive it.
        node = ray_local._private.worker.global_worker.node
        ray_dir, tune_dir = Path(node.get_session_dir_path()), short_tmp / "tune"
        common = ["--database-url", url]
        done = driver("run", str(job), *common, "--storage-path", str(tune_dir),
                      "--address", node.gcs_address, RAY_AUTH_MODE="token")  # fmt: skip
        assert done.returncode == 0, done.stderr
        ensemble = done.stdout.split()[1]
        outputs = [done.stdout, done.stderr]
        exported = short_tmp / "export.parquet"
        for argv in (
            ["list", "--json"],
            ["show", f"{ensemble}:5"],
            ["export", ensemble, "--format", "parquet", "--output", str(exported)],
            ["export", ensemble],
            ["show", "999999"],  # an error message
            ["resume", ensemble],  # complete: nothing to do
        ):
            command = driver(*argv, *common)
            outputs += [command.stdout, command.stderr]
        gone = make_conninfo(url, dbname="no_such_database")
        failed = driver("list", "--database-url", gone)
        assert failed.returncode == 1 and "no_such_database" in failed.stderr
        outputs += [failed.stdout, failed.stderr]

        records = _records_as_text(url)
        listed = json.loads(outputs[2])
        with psycopg.connect(url) as conn:
            names = conn.execute("SELECT name FROM ensembles").fetchall()
            pairs = conn.execute("SELECT manifest->>'pair', manifest->>'exchange' "
                                 "FROM datasets").fetchall()  # fmt: skip
            (trials,) = conn.execute("SELECT count(*) FROM trials").fetchone()

    # Hostile names: stored and shown verbatim, and nothing they say was run.
    assert names == [(HOSTILE_NAME,)] and listed[0]["name"] == HOSTILE_NAME
    assert pairs == [(HOSTILE_PAIR, HOSTILE_EXCHANGE)] and trials == 12
    assert HOSTILE_NAME in done.stdout or HOSTILE_PAIR in done.stdout

    # The password: nowhere. Ray's job table holds each driver's command line (where a
    # password in --database-url would have gone: such a URL is refused).
    from ray._private import state

    jobs = repr(state.jobs())
    assert url.split("dbname=")[1].split()[0] in jobs  # the driver's entry is there
    artifacts = _files(tune_dir) + _files(ray_dir) + [exported]
    assert any("worker" in p.name for p in _files(ray_dir))  # its workers' logs too
    secret = password.encode()
    leaks = [str(p) for p in artifacts if secret in p.read_bytes()]
    leaks += [f"output {i}" for i, text in enumerate(outputs) if password in text]
    leaks += ["records"] if password in records else []
    leaks += ["Ray's job table"] if password in jobs else []
    assert leaks == []


def _constant(node: ast.expr) -> bool:
    """A literal, or a module constant by name (UPPER_CASE, maybe _-prefixed)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id.lstrip("_").isupper()
    if isinstance(node, ast.FormattedValue):
        return _constant(node.value)
    if isinstance(node, ast.JoinedStr):
        return all(_constant(part) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _constant(node.left) and _constant(node.right)
    return False


def test_every_query_is_parameterized():
    """No SQL text is built from values: the query given to execute() is a variable, a
    psycopg.sql composition, or text made of literals and module constants only; never
    an f-string, a + or a % with a value in it, nor a str.format."""
    offenders = []
    for path in sorted((REPO_ROOT / "cluster").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany")
                and node.args
            ):
                continue
            query = node.args[0]
            built = (
                (isinstance(query, ast.JoinedStr | ast.BinOp) and not _constant(query))
                or (isinstance(query, ast.BinOp) and isinstance(query.op, ast.Mod))
                or (
                    isinstance(query, ast.Call)
                    and isinstance(query.func, ast.Attribute)
                    and query.func.attr == "format"
                    and isinstance(query.func.value, ast.Constant)
                )
            )
            if built:
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offenders == []


DASHBOARD = """
import json, os, sys, urllib.error, urllib.request
from cluster.job.session import ray_session
import ray

with ray_session(None, dashboard=True, warm=False):
    url = "http://" + ray._private.worker.global_worker.node.address_info["webui_url"]
    token = open(os.path.expanduser("~/.ray/auth_token")).read().strip()
    answers = {}
    for name, headers in (("none", {}), ("wrong", {"Authorization": "Bearer x"}),
                          ("token", {"Authorization": f"Bearer {token}"})):
        request = urllib.request.Request(url + "/api/jobs/", headers=headers)
        try:
            answers[name] = urllib.request.urlopen(request, timeout=60).status
        except urllib.error.HTTPError as error:
            answers[name] = error.code
    print(json.dumps({"url": url, "answers": answers}))
"""


@pytest.mark.ray
@pytest.mark.slow
def test_the_dashboard_and_job_api_listen_on_localhost_and_want_the_token(short_tmp):
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "RAY_TMPDIR": str(short_tmp)}
    environment.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", DASHBOARD], cwd="/tmp", env=environment,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["url"].startswith("http://127.0.0.1:")
    assert seen["answers"] == {"none": 401, "wrong": 403, "token": 200}


SHIPPED_CONFIGS = [
    p
    for pattern in ("*.yaml", "*.yml", "**/*.yaml", "**/*.yml", ".ci/*")
    for p in REPO_ROOT.glob(pattern)
    if ".venv" not in p.parts and "tests" not in p.parts
]


def _commands(path: Path, text: str) -> list[str]:
    """A YAML config's strings as YAML reads them (a folded `>-` command is one line);
    any other file's lines."""
    if path.suffix not in (".yaml", ".yml"):
        return text.splitlines()
    import yaml

    def strings(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [s for value in node.values() for s in strings(value)]
        if isinstance(node, list):
            return [s for value in node for s in strings(value)]
        return []

    return strings(yaml.safe_load(text))


def test_every_shipped_config_keeps_the_dashboard_local_and_token_auth_on():
    assert REPO_ROOT / "ray-cluster.yaml" in SHIPPED_CONFIGS
    for path in SHIPPED_CONFIGS:
        text = path.read_text()
        assert not re.search(r"dashboard[-_]host\s*[=: ]\s*['\"]?0\.0\.0\.0", text), path
        assert not re.search(r"dashboard[-_]host\s*[=: ]\s*['\"]?(::|\[::\])", text), path
        assert not re.search(r"RAY_AUTH_MODE\s*[=:]\s*['\"]?disabled", text), path
        for command in _commands(path, text):
            for start in re.findall(r"ray start[^\n]*--head[^\n]*", command):
                assert "--dashboard-host=127.0.0.1" in start or "--include-dashboard=false" in (
                    start
                ), (path, start)
    for path in (REPO_ROOT / "cluster").rglob("*.py"):  # the code that starts Ray
        text = path.read_text()
        assert "0.0.0.0" not in text and "dashboard_host" not in text, path
