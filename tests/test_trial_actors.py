"""Tune keeps its trial actors for the whole search (cluster.job.trial_actors).

A Bayesian run pauses between batches while the next suggestions are computed. Tune's
own rules stop all but one idle trial actor at such a pause and start new ones for the
next batch, dropping them again when a cached actor comes free first (each a new
worker process: imports, the candle table, the kernel from its cache). The run here,
the real strategy on real candles on a local Ray with 2 CPUs, 4 seeds x 50 trials,
pauses after every batch: it must create no more trial actors than it runs at once
(measured without the fix: 4), and its candidates are evaluated in no more processes.
The two-node consequence (a worker node slow to start its workers still gets its
share) is tested in tests/test_cluster_nodes.py.
"""

from __future__ import annotations

import io

import pytest
from conftest import FIXTURE_CANDLES
from job_strategies import recording_pids, register_toys, ship_by_value

from cluster.job.driver import run_job
from cluster.job.parse import parse_job
from trainable.strategies import get_strategy

pytestmark = [pytest.mark.ray, pytest.mark.postgres]

RAY_INIT = {"num_cpus": 2}
SLOTS = 2
SEEDS = (1, 2, 3, 4)
ITERATIONS = 50


@pytest.fixture(scope="module", autouse=True)
def toys(ray_local):
    register_toys()
    ship_by_value()


def test_a_search_with_pauses_keeps_one_worker_process_per_slot(pg_url, tmp_path):
    pids = tmp_path / "pids"
    recording_pids(get_strategy("key_level_reversal"), pids, "reversal_pids")
    table = {
        "data": {"kind": "parquet", "path": FIXTURE_CANDLES.name, "timeframe": "5m"},
        "strategy": "reversal_pids",
        "iterations": ITERATIONS,
        "batch_size": 4,
        "seeds": list(SEEDS),
        "searcher": {"kind": "bayesian", "n_initial": 10},
    }
    run_job(
        parse_job(table, base_dir=FIXTURE_CANDLES.parent),
        database_url=pg_url,
        storage_path=str(tmp_path / "tune"),
        max_concurrent_trials=SLOTS,
        progress=False,
        out=io.StringIO(),
    )
    evaluated_in = pids.read_text().split()
    assert len(evaluated_in) == len(SEEDS) * ITERATIONS
    assert len(set(evaluated_in)) <= SLOTS, sorted(set(evaluated_in))
    assert trial_actors_created() <= SLOTS


def trial_actors_created() -> int:
    """Tune's trial actors (function trainables) this Ray has ever created, from the
    GCS's actor table (ray.util.state needs the dashboard, which tests leave off)."""
    from ray._private.state import actors

    return sum(a["ActorClassName"].endswith("ImplicitFunc") for a in actors().values())


def test_tune_is_left_as_it_was_after_a_run():
    from ray.tune.execution.tune_controller import TuneController

    from cluster.job.trial_actors import PATCHES, keep_trial_actors, patchable

    before = {name: getattr(TuneController, name) for name in PATCHES}
    # A Ray upgrade that moved what the patches read fails here, not silently in a run.
    assert patchable(TuneController)
    with keep_trial_actors() as patched, keep_trial_actors() as nested:
        assert patched and nested
        assert all(getattr(TuneController, name) is PATCHES[name] for name in PATCHES)
    assert {name: getattr(TuneController, name) for name in PATCHES} == before
