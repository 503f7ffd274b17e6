"""Walk-forward through the real pipeline (job spec -> driver -> Tune on a local Ray ->
PostgreSQL -> report), on real candles.

The job searches the first 1,200 candles of the bundled BTC/USDT 5m slice with windows
of 400 training and 200 test candles every 200 (4 windows per seed), two seeds, a small
random budget. Its strategy is the key-level reversal under another name that writes
the span (first and last open time, length) of every candle series it evaluates to a
file, in whichever process runs it: an instrumented data source. It runs twice, at
max_concurrent_trials 1 and 4. Expected values come from sources independent of the
code under test: the windows computed by hand from (train, test, step), the slow
reference backtest (tests/reference_backtest.py) on candles read straight from the
Parquet file, compounded and measured by hand with Python's `statistics`.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from conftest import FIXTURE_CANDLES
from job_strategies import ship_by_value
from PIL import Image
from spanned_runs import SpannedRun, spanned_runs

from cluster.cli import main
from cluster.records.exact import canonical_params
from cluster.records.export import build_export
from cluster.records.recorder import Recorder
from cluster.report.plots import HEIGHT, WIDTH
from tests.reference_backtest import reference_backtest
from tests.reference_metrics import marked_equity
from trainable.backtest import Candles, JobConstants
from trainable.params import StrategyParams

pytestmark = [pytest.mark.ray, pytest.mark.postgres]
RAY_INIT = {"num_cpus": 4}
SEEDS = [1, 2]
ITERATIONS = 6
ROWS, TRAIN, TEST, STEP = 1200, 400, 200, 200
WINDOWS = (ROWS - TRAIN - TEST) // STEP + 1  # 4
BARS_PER_YEAR = 365 * 24 * 12  # 5m candles


def read_candles() -> Candles:
    """The job's candles straight from the file (not through cluster.candles)."""
    table = pq.read_table(FIXTURE_CANDLES).slice(0, ROWS)
    return Candles(**{name: table[name].to_numpy() for name in table.column_names})


CANDLES = read_candles()
TIMES = [int(t) for t in CANDLES.timestamp]


def rows(start: int, stop: int) -> Candles:
    return Candles(*(getattr(CANDLES, n)[start:stop] for n in
                     ("timestamp", "open", "high", "low", "close", "volume")))  # fmt: skip


def job(strategy: str) -> dict:
    return {
        "data": {"kind": "parquet", "path": FIXTURE_CANDLES.name, "timeframe": "5m",
                 "start": TIMES[0], "end": TIMES[ROWS - 1] + 300_000},
        "walk_forward": {"train": TRAIN, "test": TEST, "step": STEP},
        "strategy": strategy,
        "iterations": ITERATIONS,
        "seeds": SEEDS,
        "searcher": {"kind": "random"},
    }  # fmt: skip


@pytest.fixture(scope="module")
def sides(ray_local, pg_session, tmp_path_factory) -> Iterator[dict[int, SpannedRun]]:
    """The same job run at max_concurrent_trials 1 and 4, each in a database of its own."""
    ship_by_value()
    yield from spanned_runs(pg_session, tmp_path_factory, job, "spanned_reversal_wf", chunk_size=2)


def records(side: SpannedRun) -> dict:
    with Recorder(side.database) as recorder:
        ensemble = recorder.find_ensemble(side.ensemble)
        return {
            "windows": recorder.windows(ensemble),
            "window_trials": recorder.window_trials(ensemble),
            "evaluations": {e.label: e for e in recorder.evaluations(ensemble, "walk_forward")},
            "figures": {f.label: f for f in recorder.figures(ensemble, "walk_forward")},
            "trials": build_export(recorder.ensemble_trials(ensemble)),
            "detail": recorder.ensemble_detail(ensemble),
        }


def hand_windows() -> list[tuple[int, int, int, int]]:
    """(train_start, train_stop, test_start, test_stop) of each window, by hand."""
    return [(w * STEP, w * STEP + TRAIN, w * STEP + TRAIN, w * STEP + TRAIN + TEST)
            for w in range(WINDOWS)]  # fmt: skip


def best(trials):
    return max(trials, key=lambda t: (t.score, -t.trial_index))


def test_windows_are_recorded_as_computed_by_hand_and_their_tests_never_overlap(sides):
    found = records(sides[1])
    assert found["detail"].status.value == "complete"
    windows = found["windows"]
    assert [(w.seed, w.window_index) for w in windows] == [
        (s, w) for s in SEEDS for w in range(WINDOWS)
    ]
    for window in windows:
        expected = hand_windows()[window.window_index]
        assert (window.train_start, window.train_stop, window.test_start,
                window.test_stop) == expected  # fmt: skip
        assert window.search_seed == window.seed + (window.window_index + 1) * 2**32
        assert (window.train_from, window.test_from) == (TIMES[expected[0]], TIMES[expected[2]])
        assert window.test_until == (TIMES[expected[3]] if expected[3] < ROWS
                                     else TIMES[-1] + 300_000)  # fmt: skip
        assert window.status.value == "complete" and window.budget == ITERATIONS
    for seed in SEEDS:
        tests = sorted((w.test_start, w.test_stop) for w in windows if w.seed == seed)
        for (_, stop), (start, _) in itertools.pairwise(tests):
            assert stop <= start  # no candle is tested twice
    # Each window's search has its whole budget, in walk_forward_trials; the ensemble's
    # trials are the whole-range searches only.
    assert sorted(found["window_trials"]) == [(s, w) for s in SEEDS for w in range(WINDOWS)]
    for trials in found["window_trials"].values():
        assert [t.trial_index for t in trials] == list(range(ITERATIONS))
    assert len(found["trials"].trials) == len(SEEDS) * ITERATIONS


def test_no_window_search_sees_a_test_candle(sides):
    for side in sides.values():
        searches = len(SEEDS) * ITERATIONS * (1 + WINDOWS)
        during, after = side.spans[:searches], side.spans[searches:]
        assert len(during) == searches
        whole = (TIMES[0], TIMES[ROWS - 1], ROWS)
        training = {(TIMES[a], TIMES[b - 1], b - a) for a, b, _, _ in hand_windows()}
        counts = {span: during.count(span) for span in set(during)}
        # Every evaluation of the search is of the whole range (each seed's own search)
        # or of exactly one window's training rows: never a series reaching its test rows.
        assert counts == {whole: len(SEEDS) * ITERATIONS} | dict.fromkeys(
            training, len(SEEDS) * ITERATIONS
        )
        # After the search: each window's best on its test rows, and nothing else.
        tests = [(TIMES[c], TIMES[d - 1], d - c) for _, _, c, d in hand_windows()]
        assert sorted(after) == sorted(tests * len(SEEDS))
        assert "walk-forward: seed 1:" in side.printed


def test_one_and_four_trials_at_once_give_identical_records(sides):
    serial, parallel = records(sides[1]), records(sides[4])
    assert serial["trials"].digest == parallel["trials"].digest

    def window_trials(found):
        return {key: [t.deterministic() for t in trials]
                for key, trials in found["window_trials"].items()}  # fmt: skip

    assert window_trials(serial) == window_trials(parallel)
    assert [w.deterministic() for w in serial["windows"]] == [
        w.deterministic() for w in parallel["windows"]
    ]
    assert {k: e.deterministic() for k, e in serial["evaluations"].items()} == {
        k: e.deterministic() for k, e in parallel["evaluations"].items()
    }
    assert {k: f.exact for k, f in serial["figures"].items()} == {
        k: f.exact for k, f in parallel["figures"].items()
    }


def reference_equity(candles: Candles, params) -> tuple[list[float], dict]:
    constants = JobConstants(timeframe_minutes=5)
    result = reference_backtest(candles, StrategyParams.from_mapping(params), constants)
    return marked_equity(list(result.trades), [float(c) for c in candles.close],
                         constants.fee), result.metrics  # fmt: skip


def compounded(curves: list[list[float]]) -> dict[str, float]:
    """The stitched curve's figures by hand: windows chained, returns, Sharpe by
    `statistics`, max drawdown by a running peak."""
    equity, level = [], 1.0
    for curve in curves:
        equity += [level * value / curve[0] for value in curve]
        level = equity[-1]
    returns = [b / a - 1 for a, b in itertools.pairwise(equity)]
    peak, drawdown = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        drawdown = max(drawdown, (peak - value) / peak)
    return {
        "total_return": math.prod(curve[-1] / curve[0] for curve in curves) - 1,
        "sharpe": statistics.mean(returns) / statistics.stdev(returns) * math.sqrt(BARS_PER_YEAR),
        "max_drawdown": drawdown,
        "n_returns": len(returns),
    }


def close(a: float | None, b: float | None) -> bool:
    """Both undefined, or equal to within the order of operations."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_each_windows_best_is_tested_on_its_test_rows_and_the_equity_stitched(sides):
    found = records(sides[1])
    windows = hand_windows()
    for seed in SEEDS:
        figure = found["figures"][f"seed {seed}"].result
        curves = []
        for w, (a, b, c, d) in enumerate(windows):
            trials = found["window_trials"][seed, w]
            chosen = best(trials)
            # The window's trials were backtests of its training rows alone.
            _, on_train = reference_equity(rows(a, b), chosen.params)
            assert close(chosen.metrics["sharpe"], on_train["sharpe"])
            evaluation = found["evaluations"][f"seed {seed} window {w}"]
            assert canonical_params(evaluation.params) == canonical_params(chosen.params)
            assert evaluation.basis["test_rows"] == [c, d]
            curve, on_test = reference_equity(rows(c, d), chosen.params)
            assert evaluation.metrics["n_trades"] == on_test["n_trades"]
            assert close(evaluation.metrics["total_return"], on_test["total_return"])
            entry = figure["windows"][w]
            assert (entry["trial_index"], entry["test_rows"]) == (chosen.trial_index, [c, d])
            curves.append(curve)
        expected = compounded(curves)
        stitched = figure["stitched"]
        assert stitched["n_trades"] > 0 and stitched["total_return"] != 0.0  # not a flat line
        assert stitched["n_returns"] == expected["n_returns"] == WINDOWS * TEST - 1
        for name in ("total_return", "sharpe", "max_drawdown"):
            assert close(stitched[name], expected[name]), (seed, name)
        # The in-sample comparison: the seed's whole-range best on the same test rows.
        whole = best([t for t in found["trials"].trials if t.seed == seed])
        assert figure["in_sample"]["trial_index"] == whole.trial_index
        hindsight = compounded([reference_equity(rows(c, d), whole.params)[0]
                                for _, _, c, d in windows])  # fmt: skip
        for name in ("total_return", "sharpe", "max_drawdown"):
            assert close(figure["in_sample"]["stitched"][name], hindsight[name]), (seed, name)


def test_the_figure_is_recorded_as_canonical_json(sides):
    found = records(sides[4])
    for seed in SEEDS:
        figure = found["figures"][f"seed {seed}"]
        assert json.loads(figure.exact) == figure.result


def test_the_report_shows_the_windows_and_the_stitched_equity(sides, capsys, tmp_path):
    side = sides[1]
    pictures = tmp_path / "pictures"
    code = main(["report", side.ensemble, "--database-url", side.database, "--plot",
                 str(pictures)])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 0
    section = text[text.index("Walk-forward:") :]
    section = section[: section.index("\n\n")]
    found = records(side)
    for seed in SEEDS:
        figure = found["figures"][f"seed {seed}"].result
        for entry in figure["windows"]:
            start = f"{seed:>12}{entry['window_index']:>8}"
            assert any(line.startswith(start) for line in section.splitlines()), start
        stitched = figure["stitched"]
        stitched_rows = section[section.index("out of sample:") :].splitlines()[1:]
        row = next(line for line in stitched_rows if line.startswith(f"{seed:>12}   "))
        assert f"{stitched['sharpe']:.4g}" in row and f"{stitched['total_return']:.4g}" in row
    assert section.count("  => ") == 1  # one sentence says what it means
    with Image.open(pictures / "walk_forward.png") as image:
        assert image.size == (WIDTH, HEIGHT)
    code = main(["report", side.ensemble, "--database-url", side.database, "--json"])
    data = json.loads(capsys.readouterr().out)["walk_forward"]
    assert code == 0 and data["recorded"] == "earlier"
    assert (data["train"], data["test"], data["step"]) == (TRAIN, TEST, STEP)
    assert data["by_seed"] == {str(s): found["figures"][f"seed {s}"].result for s in SEEDS}
    assert data["meaning"].endswith(".") and data["meaning"] in " ".join(text.split())
