"""What the project ships for a cluster, checked with Ray's own code and no cluster:
`ray-cluster.yaml` through the cluster launcher's validator, and the package `ray job
submit --working-dir .` uploads through Ray's own packaging (with `.rayignore`).
"""

from __future__ import annotations

import copy
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT

CLUSTER_YAML = REPO_ROOT / "ray-cluster.yaml"
# The uploaded package: code, SQL, the lock file, job files and the quickstart's candles
# (~1.1 MB, stored uncompressed). Ray's own limit is 500 MiB; ours says that no data,
# cache, environment, result, test or benchmark slipped in.
PACKAGE_LIMIT_BYTES = 1536 * 1024
QUICKSTART_CANDLES = "tests/data/binance_BTC-USDT_5m_0-4999.parquet"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_ray_accepts_the_cluster_config(config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))  # what `ray up` does first
    validate_config(prepared)  # raises jsonschema.ValidationError when Ray would refuse
    assert prepared["provider"]["type"] == "aws"
    types = prepared["available_node_types"]
    assert prepared["head_node_type"] in types and len(types) >= 2
    workers = [name for name in types if name != prepared["head_node_type"]]
    assert all(types[name]["max_workers"] >= 1 for name in workers)
    # The provider's defaults (a dashboard on 0.0.0.0) are replaced, not merged.
    start = " ".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start and "0.0.0.0" not in start


def test_the_cluster_config_installs_from_the_lock_file(config):
    setup = " ".join(config["setup_commands"])
    assert "pip install -q --require-hashes --no-deps -r requirements.lock" in setup
    assert "pip install -q --no-deps -e ." in setup
    # Each node compiles the kernel once, into the cache every job's workers read.
    assert "from trainable.backtest import warm_up; warm_up()" in setup
    # Ray (and so a job's `python`) runs from the project's environment on every node.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert "PATH=$HOME/reprotune/.venv/bin:$PATH" in start


def test_the_cluster_config_keeps_token_auth_and_no_secret(config):
    text = CLUSTER_YAML.read_text()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert "RAY_AUTH_MODE=token" in start, key
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    # The database: its URL from the head's environment, its password from a pgpass
    # file; neither is in this file (only placeholders in the comments).
    head_start = next(c for c in config["head_start_ray_commands"] if "ray start" in c)
    assert ". ~/.reprotune/cluster.env" in head_start
    assert "PGPASSFILE=~/.reprotune/pgpass" in head_start
    commands = yaml.safe_dump({k: v for k, v in config.items() if "commands" in k})
    assert "DATABASE_URL=" not in commands and "postgresql://" not in commands
    assert not re.search(r"postgres(ql)?://[^@\s]*:[^@\s]+@", text)  # no user:password@
    assert not re.search(r"(?i)password\s*[:=]\s*\S", commands)
    # Workers never keep the database settings; the head keeps them private.
    assert "rm -rf ~/.reprotune" in " ".join(config["worker_setup_commands"])
    assert "chmod 600 ~/.reprotune/pgpass" in " ".join(config["head_setup_commands"])


def uploaded_package(working_dir: Path, target: Path) -> Path:
    """The zip `ray job submit --working-dir working_dir` would upload, made by Ray's own
    code (its default excludes, .gitignore and .rayignore), written to `target`."""
    from ray._private.runtime_env.packaging import create_package
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    def write(directory: str, excludes: list[str], is_file: bool = False) -> None:
        assert not is_file
        create_package(directory, target, include_gitignore=True, excludes=excludes)

    upload_working_dir_if_needed(
        {"working_dir": str(working_dir)}, include_gitignore=True, upload_fn=write
    )
    return target


def test_the_uploaded_working_dir_is_small_and_holds_no_data_caches_or_environments(
    tmp_path,
):
    package = uploaded_package(REPO_ROOT, tmp_path / "package.zip")
    size = package.stat().st_size
    assert size < PACKAGE_LIMIT_BYTES, f"the job package is {size:,} bytes"
    names = zipfile.ZipFile(package).namelist()
    assert "cluster/cli.py" in names and "sql/001_init.sql" in names
    assert "requirements.lock" in names and "examples/quickstart.toml" in names
    assert [n for n in names if n.startswith("tests/")] == [QUICKSTART_CANDLES]
    for name in names:
        unwanted = {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "bench"}
        assert not unwanted & set(Path(name).parts), name
        assert not name.endswith(".pyc") and ".egg-info" not in name, name


def test_rayignore_leaves_out_data_anywhere_in_the_tree(tmp_path):
    """A candle file a user dropped into the project (or Tune's results) is not uploaded."""
    tree = tmp_path / "project"
    (tree / "data").mkdir(parents=True)
    (tree / "ray_results" / "x").mkdir(parents=True)
    (tree / "tests" / "data").mkdir(parents=True)
    (tree / ".rayignore").write_text((REPO_ROOT / ".rayignore").read_text())
    (tree / "job.toml").write_text("iterations = 1\n")
    (tree / "data" / "btc_5m.parquet").write_bytes(b"x" * 1000)
    (tree / "ray_results" / "x" / "result.json").write_text("{}")
    (tree / "tests" / "data" / "other.parquet").write_bytes(b"y")
    (tree / QUICKSTART_CANDLES).write_bytes(b"z")
    names = zipfile.ZipFile(uploaded_package(tree, tmp_path / "p.zip")).namelist()
    assert "job.toml" in names and QUICKSTART_CANDLES in names
    assert "tests/data/other.parquet" not in names
    assert not any(n.startswith(("data/", "ray_results/")) for n in names), names
