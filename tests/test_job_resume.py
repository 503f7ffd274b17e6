"""Resume from the records (contract 5), with real driver processes.

A driver is SIGKILLed by its own test hook right after it has recorded exactly 13
trials (a deterministic point, in the middle of a chunk), the candles are then changed
(resume and `verify --rerun` must refuse, naming both fingerprints), restored, and the
ensemble is resumed. Its records must equal an uninterrupted run's, and counting
executions shows that the resume ran exactly the trials that were not recorded.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES, REPO_ROOT, fresh_database
from job_strategies import executions

from cluster.records.export import build_export
from cluster.records.recorder import Recorder

pytestmark = [pytest.mark.ray, pytest.mark.postgres, pytest.mark.slow]
RUNNER = REPO_ROOT / "tests" / "job_runner.py"
JOB = """
iterations = 20
batch_size = 4
seeds = [42, 123]
strategy = "counted_reversal"
[data]
kind = "parquet"
path = "candles.parquet"
timeframe = "5m"
[searcher]
kind = "bayesian"
n_initial = 6
"""
TOTAL = 40


def driver(
    *args: str, count: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    environment = {**os.environ, "REPROTUNE_TEST_COUNT_FILE": str(count), **(env or {})}
    environment.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, str(RUNNER), *args],
        cwd="/tmp",
        env={**environment, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )


def digest(url: str) -> str:
    with Recorder(url) as recorder:
        return build_export(recorder.ensemble_trials(recorder.latest_ensemble())).digest


def recorded(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM trials").fetchone()[0]


def test_a_killed_driver_resumes_to_the_records_of_an_uninterrupted_run(pg_session, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(JOB)
    candles = tmp_path / "candles.parquet"
    shutil.copy(FIXTURE_CANDLES, candles)
    common = ["--storage-path", str(tmp_path / "tune"), "--no-progress"]
    golden_db = next(golden_gen := fresh_database(pg_session))
    killed_db = next(killed_gen := fresh_database(pg_session))
    try:
        golden = driver("run", str(job), "--database-url", golden_db, *common,
                        count=tmp_path / "golden.count")  # fmt: skip
        assert golden.returncode == 0, golden.stderr
        assert executions(tmp_path / "golden.count") == TOTAL

        killed = driver("run", str(job), "--database-url", killed_db, *common,
                        count=tmp_path / "killed.count",
                        env={"REPROTUNE_TEST_KILL_DRIVER_AT": "recorded:13"})  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        before = recorded(killed_db)
        assert before == 13
        # The kill cut a chunk: each Tune trial carries a seed's random batch (6) or a
        # model batch (4), delivered per seed in order, so a seed's records end on an
        # even count at a chunk's end; 13 split over two seeds leaves one of them odd.
        with psycopg.connect(killed_db) as conn:
            per_seed = dict(conn.execute("SELECT seed, count(*) FROM trials GROUP BY seed"))
        assert any(count % 2 for count in per_seed.values()), per_seed
        assert executions(tmp_path / "killed.count") >= before
        ensemble = killed.stdout.split()[1]

        # Changed candles: one close moved (still inside its bar), so the data is valid
        # but not the data the ensemble recorded.
        table = pq.read_table(FIXTURE_CANDLES)
        close = table.column("close").to_pylist()
        high, low = table.column("high").to_pylist(), table.column("low").to_pylist()
        close[2500] = (
            (high[2500] + low[2500]) / 2
            if close[2500] != (high[2500] + low[2500]) / 2
            else low[2500]
        )
        pq.write_table(table.set_column(table.column_names.index("close"), "close",
                                        pa.array(close)), candles)  # fmt: skip
        for args in (("resume", ensemble), ("verify", "--rerun", ensemble)):
            refused = driver(*args, "--database-url", killed_db, *common,
                             count=tmp_path / "refused.count")  # fmt: skip
            assert refused.returncode == 2, refused.stderr
            assert "the candle data changed: recorded fingerprint" in refused.stderr
            named = set(re.findall(r"\b[0-9a-f]{64}\b", refused.stderr))
            assert len(named) == 2 and "Traceback" not in refused.stderr
        assert recorded(killed_db) == before and executions(tmp_path / "refused.count") == 0

        shutil.copy(FIXTURE_CANDLES, candles)
        resumed = driver("resume", ensemble, "--database-url", killed_db, *common,
                         count=tmp_path / "resumed.count")  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert f"{TOTAL - before} trial(s) missing" in resumed.stdout
        # Exactly the trials without a record ran again: nothing recorded was recomputed.
        assert executions(tmp_path / "resumed.count") == TOTAL - before
        assert recorded(killed_db) == TOTAL
        assert digest(killed_db) == digest(golden_db)
        with psycopg.connect(killed_db) as conn:
            runs = conn.execute(
                "SELECT kind, outcome FROM ensemble_runs ORDER BY started_at"
            ).fetchall()
        assert runs == [("run", None), ("resume", "complete")]

        again = driver("resume", ensemble, "--database-url", killed_db, *common,
                       count=tmp_path / "again.count")  # fmt: skip
        assert again.returncode == 0 and "is complete: nothing to resume" in again.stdout
        assert executions(tmp_path / "again.count") == 0
    finally:
        for generator in (golden_gen, killed_gen):
            generator.close()
