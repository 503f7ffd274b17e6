"""Fixtures shared by the whole suite.

Ray starts at most once per test module (`ray_local`, module scope) and is always shut
down, even when a test fails. A module that needs other Ray settings sets
`RAY_INIT = {...}` at module level (e.g. `{"num_cpus": 4}`); they are merged over the
defaults below.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DIR = REPO_ROOT / "tests" / "data"
FIXTURE_CANDLES = FIXTURE_DIR / "binance_BTC-USDT_5m_0-4999.parquet"

# Tune writes ~33 KB of logs per trial through its default callbacks; tests read
# results from the ResultGrid, not from those files.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

RAY_DEFAULTS = {
    # "local" always starts a new instance; without it ray.init() would join any
    # cluster a `ray start` left in /tmp/ray/ray_current_cluster.
    "address": "local",
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 512 * 1024**2,
    "log_to_driver": False,
}


def shared_data_dir() -> Path | None:
    """`../shared/data` beside the repository (real candle files), when it exists."""
    candidate = Path(os.environ.get("REPROTUNE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def fixture_candles_path() -> Path:
    """The committed 5,000-row BTC/USDT 5m slice (tests/data/README.md)."""
    return FIXTURE_CANDLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real candle files of ../shared/data; tests using it skip on a bare clone."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not present on this machine")
    return path


@pytest.fixture(scope="module")
def ray_local(request: pytest.FixtureRequest) -> Iterator[object]:
    """A real local Ray for one test module, shut down afterwards whatever happened."""
    import ray

    if ray.is_initialized():  # a previous module leaked one: do not inherit its settings
        ray.shutdown()
    settings = {**RAY_DEFAULTS, **getattr(request.module, "RAY_INIT", {})}
    # A short private temp dir: Ray's Unix socket paths must stay under ~100 bytes.
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    settings.setdefault("_temp_dir", temp_dir)
    ray.init(**settings)
    try:
        yield ray
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
