"""The holdout and the robustness figures through the real pipeline (job spec -> driver
-> Tune on a local Ray -> PostgreSQL -> report), on real candles.

The job searches the first 3,000 candles of the bundled BTC/USDT 5m slice and holds out
the 600 after them. Its strategy is the key-level reversal under another name that
writes the span (first and last open time, length) of every candle series it is given
to a file, in whichever process runs it: an instrumented data source. Expected values
come from sources independent of the code under test: the slow reference backtest
(tests/reference_backtest.py) on the holdout's candles read straight from the Parquet
file, the median rule applied by hand, Python's `statistics` module, and properties
with known answers (a permutation of trades keeps their compounded return).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES, fresh_database
from job_strategies import ship_by_value
from PIL import Image
from spanned_runs import SpannedRun, spanned_runs

from cluster.cli import main
from cluster.records.exact import canonical_params
from cluster.records.export import build_export
from cluster.records.recorder import Recorder
from cluster.report import ensemble_report
from cluster.report.output import report_json
from cluster.report.plots import HEIGHT, WIDTH
from tests.reference_backtest import reference_backtest
from trainable.backtest import Candles, JobConstants
from trainable.declaration import METRIC_NAMES
from trainable.params import StrategyParams

pytestmark = [pytest.mark.ray, pytest.mark.postgres]
RAY_INIT = {"num_cpus": 4}
SEEDS = [1, 2]
ITERATIONS = 16
SEARCH_ROWS, HOLDOUT_ROWS = 3000, 600
ROBUSTNESS_PICTURES = ["pbo_logits.png", "is_vs_oos.png", "monte_carlo_fan.png", "sensitivity.png"]


def open_times() -> list[int]:
    return pq.read_table(FIXTURE_CANDLES, columns=["timestamp"])["timestamp"].to_pylist()


TIMES = open_times()
SEARCH = (TIMES[0], TIMES[SEARCH_ROWS])
HOLDOUT = (TIMES[SEARCH_ROWS], TIMES[SEARCH_ROWS + HOLDOUT_ROWS])


def job(strategy: str, **changes) -> dict:
    table = {
        "data": {"kind": "parquet", "path": FIXTURE_CANDLES.name, "timeframe": "5m",
                 "start": SEARCH[0], "end": SEARCH[1]},
        "holdout": {"start": HOLDOUT[0], "end": HOLDOUT[1]},
        "strategy": strategy,
        "iterations": ITERATIONS,
        "seeds": SEEDS,
        "searcher": {"kind": "random"},
    }  # fmt: skip
    table.update(changes)
    return table


@pytest.fixture(scope="module")
def sides(ray_local, pg_session, tmp_path_factory) -> Iterator[dict[int, SpannedRun]]:
    """The same job run at max_concurrent_trials 1 and 4, each in a database of its own."""
    ship_by_value()
    yield from spanned_runs(pg_session, tmp_path_factory, job, "spanned_reversal", chunk_size=3)


def holdout_candles() -> Candles:
    """The holdout's candles straight from the file (not through cluster.candles)."""
    table = pq.read_table(FIXTURE_CANDLES).slice(SEARCH_ROWS, HOLDOUT_ROWS)
    columns = {name: table[name].to_numpy() for name in table.column_names}
    return Candles(**columns)


def evaluations(side: SpannedRun, kind: str) -> dict:
    with Recorder(side.database) as recorder:
        ensemble = recorder.find_ensemble(side.ensemble)
        return {e.label: e for e in recorder.evaluations(ensemble, kind)}


def export(side: SpannedRun):
    with Recorder(side.database) as recorder:
        return build_export(recorder.ensemble_trials(recorder.find_ensemble(side.ensemble)))


def test_no_holdout_candle_reaches_the_search(sides):
    for side in sides.values():
        trials = len(SEEDS) * ITERATIONS
        seen_by_search = side.spans[:trials]
        # Every trial of the search saw exactly the search range, nothing after it.
        assert len(seen_by_search) == trials
        for first, last, rows in seen_by_search:
            assert (first, rows) == (SEARCH[0], SEARCH_ROWS) and last < HOLDOUT[0]
        # The only backtests that saw the holdout ran after the search (the driver's
        # holdout step: each seed's best and the consensus), and saw nothing else.
        on_holdout = [i for i, span in enumerate(side.spans) if span[1] >= HOLDOUT[0]]
        assert len(on_holdout) == len(SEEDS) + 1
        assert on_holdout == list(range(len(side.spans) - len(on_holdout), len(side.spans)))
        for index in on_holdout:
            assert side.spans[index] == (HOLDOUT[0], TIMES[SEARCH_ROWS + HOLDOUT_ROWS - 1],
                                         HOLDOUT_ROWS)  # fmt: skip
        assert "never seen by the search" in side.printed


def test_each_seeds_best_and_the_consensus_are_backtested_on_the_holdout(sides):
    side = sides[1]
    trials = export(side).trials
    recorded = evaluations(side, "holdout")
    assert sorted(recorded) == sorted([f"seed {s}" for s in SEEDS] + ["consensus"])
    bests = {}
    for seed in SEEDS:  # the highest score, ties to the lowest trial_index
        own = [t for t in trials if t.seed == seed]
        bests[seed] = max(own, key=lambda t: (t.score, -t.trial_index))
    # The consensus by hand: the median of two values is their mean; ints round half
    # to even (Python's round).
    names = list(bests[SEEDS[0]].params)
    consensus = {}
    for name in names:
        middle = (bests[1].params[name] + bests[2].params[name]) / 2
        consensus[name] = round(middle) if isinstance(bests[1].params[name], int) else middle
    assert canonical_params(recorded["consensus"].params) == canonical_params(consensus)
    candles, constants = holdout_candles(), JobConstants(timeframe_minutes=5)
    wanted = {f"seed {s}": bests[s].params for s in SEEDS} | {"consensus": consensus}
    for label, params in wanted.items():
        evaluation = recorded[label]
        assert canonical_params(evaluation.params) == canonical_params(params)
        reference = reference_backtest(candles, StrategyParams.from_mapping(params), constants)
        outcome = {"score": evaluation.score, **evaluation.metrics}
        for name in METRIC_NAMES:
            expected, got = reference.metrics[name], outcome[name]
            if name == "score" and (reference.metrics["n_trades"] or 0) < constants.min_trades:
                expected = -100.0
            if expected is None or got is None:
                assert expected is None and got is None, (label, name)
            else:
                assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-15), (label, name)
    with Recorder(side.database) as recorder:
        ensemble = recorder.find_ensemble(side.ensemble)
        holdout_fingerprint = recorder.ensemble_dataset(ensemble, "holdout")
        detail = recorder.ensemble_detail(ensemble)
    assert holdout_fingerprint != detail.dataset_fingerprint
    assert {e.dataset_fingerprint for e in recorded.values()} == {holdout_fingerprint}


def test_one_and_four_trials_at_once_give_identical_records_holdout_and_figures(sides):
    serial, parallel = sides[1], sides[4]
    assert export(serial).digest == export(parallel).digest
    one, other = evaluations(serial, "holdout"), evaluations(parallel, "holdout")
    assert {k: v.deterministic() for k, v in one.items()} == {
        k: v.deterministic() for k, v in other.items()
    }
    reports = [report_json(ensemble_report(s.ensemble, database_url=s.database))
               for s in (serial, parallel)]  # fmt: skip
    for key in ("holdout", "robustness"):
        for report in reports:
            report[key]["recorded"] = None
        assert json.dumps(reports[0][key], sort_keys=True) == json.dumps(
            reports[1][key], sort_keys=True
        )


def test_the_figures_are_computed_from_every_distinct_parameter_set(sides):
    side = sides[1]
    data = report_json(ensemble_report(side.ensemble, database_url=side.database))
    robustness = data["robustness"]
    trials = export(side).trials
    distinct = {canonical_params(t.params): t for t in trials}
    annualize = math.sqrt(365 * 24 * 12)  # 5m candles
    figure = robustness["deflated_sharpe"]
    assert figure["trials"] == len(distinct)
    sharpes = [t.metrics["sharpe"] / annualize for t in distinct.values()
               if t.metrics["sharpe"] is not None]  # fmt: skip
    assert math.isclose(figure["sharpe_variance"], statistics.variance(sharpes), rel_tol=1e-9)
    best = figure["selected"][0]
    top = max(trials, key=lambda t: (t.score, -t.seed, -t.trial_index))
    assert (best["seed"], best["trial_index"]) == (top.seed, top.trial_index)
    # Its per-bar returns, recomputed from its params, give the Sharpe its trial recorded.
    assert best["n_returns"] == SEARCH_ROWS - 1
    assert math.isclose(best["sharpe"] * annualize, top.metrics["sharpe"], rel_tol=1e-9)
    pbo = robustness["pbo"]
    ok = [t for t in distinct.values() if t.status.value == "ok"]
    assert (pbo["trials"], pbo["splits"], pbo["blocks"]) == (len(ok), 12870, 16)
    assert 0.0 <= pbo["pbo"] <= 1.0 and sum(pbo["histogram"]) == 12870
    for seed in SEEDS:
        carlo = robustness["monte_carlo"]["by_seed"][str(seed)]
        order = carlo["trade_order"]
        # The same trades in any order compound to the same total return.
        for value in order["total_return"].values():
            assert math.isclose(value, order["actual"]["total_return"], rel_tol=1e-9,
                                abs_tol=1e-12)  # fmt: skip
        assert carlo["trade_bootstrap"]["paths"] == 1000
        around = robustness["sensitivity"]["by_seed"][str(seed)]
        moved = around["values"]
        params = next(
            t.params for t in trials if (t.seed, t.trial_index) == (seed, around["trial_index"])
        )
        for key, value in moved.items():
            name, direction = key.split()
            if isinstance(params[name], int):
                assert value == params[name] + int(direction)
    for key in ("deflated_sharpe", "pbo", "monte_carlo", "sensitivity"):
        assert robustness[key]["meaning"].endswith(".")


def test_the_report_shows_both_sides_and_draws_the_figures(sides, capsys, tmp_path):
    side = sides[1]
    pictures = tmp_path / "pictures"
    code = main(["report", side.ensemble, "--database-url", side.database, "--plot",
                 str(pictures)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    assert "Out of sample: the holdout" in text and "never seen by the search" in text
    for label in [f"seed {s}" for s in SEEDS] + ["consensus"]:
        assert any(line.strip().startswith(label) for line in text.splitlines())
    titles = ("Deflated Sharpe ratio", "Probability of backtest overfitting",
              "Monte Carlo of each seed's best", "Sensitivity of each seed's best")  # fmt: skip
    for title in titles:
        assert title in text
    assert text.count("  => ") == 5  # one sentence per figure, the holdout's included
    for name in ROBUSTNESS_PICTURES:
        with Image.open(pictures / name) as image:
            assert image.size == (WIDTH, HEIGHT)
    # The figures are recorded: a second report computes nothing and says the same.
    code = main(["report", side.ensemble, "--database-url", side.database, "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["robustness"]["recorded"] == "earlier"
    first = report_json(ensemble_report(side.ensemble, database_url=side.database))
    assert again["robustness"]["pbo"] == first["robustness"]["pbo"]


@pytest.fixture
def database(pg_session) -> Iterator[str]:
    yield from fresh_database(pg_session)


def ensembles_in(database: str) -> int:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ensembles'"
        ).fetchone()
        if not row or not row[0]:
            return 0
        found = conn.execute("SELECT count(*) FROM ensembles").fetchone()
        return int(found[0]) if found else 0


def write_job(path: Path, extra: str) -> Path:
    path.write_text(
        f'iterations = 2\nseeds = [1]\n[data]\nkind = "parquet"\npath = "{FIXTURE_CANDLES}"\n'
        f'timeframe = "5m"\nstart = {SEARCH[0]}\nend = {SEARCH[1]}\n[searcher]\nkind = "random"\n'
        + extra
    )
    return path


def test_walk_forward_windows_that_do_not_fit_the_candles_are_refused(database, tmp_path, capsys):
    path = write_job(tmp_path / "job.toml", "[walk_forward]\ntrain = 3000\ntest = 200\n")
    code = main(["run", str(path), "--database-url", database])
    err = capsys.readouterr().err
    assert code == 2 and "walk_forward: a window needs train + test = 3,200 candles" in err
    assert "the data has 3,000" in err
    assert ensembles_in(database) == 0


def test_a_holdout_inside_the_search_range_is_refused(database, tmp_path, capsys):
    inside = f"[holdout]\nstart = {TIMES[100]}\nend = {TIMES[200]}\n"
    code = main(["run", str(write_job(tmp_path / "job.toml", inside)), "--database-url", database])
    err = capsys.readouterr().err
    assert code == 2 and "holdout:" in err and "overlaps the search range" in err
    assert ensembles_in(database) == 0
