"""The ensemble report through the real pipeline (job spec -> driver -> Tune on a local
Ray -> PostgreSQL -> report), on two objectives whose answer is known in advance.

Why the verdicts must come out as they do. The report's rule: `stable` when, over the
seeds' best trials, every searched parameter spans at most PARAM_SPREAD_LIMIT = 0.2 of
its search range; the int k in [1, 3] owns a third of its range per value, so the
seeds must agree on it exactly. Both ensembles use the random searcher, whose points
are independent uniform draws (every int value equally likely), so the chances below
are plain arithmetic, not anything the code under test computes:

- `toy_peak` (-|x - 0.3| - |k - 2|; invalid, scored -100, for k = 3 with x > 0.9),
  6 seeds x 100 trials. Call T the points with k = 2 and |x - 0.3| <= 0.1: a trial
  lands in T with probability 1/3 * 0.2 = 1/15. A point of T scores >= -0.1 and any
  other point < -0.1 (k != 2 costs at least 1), so a seed with a trial in T has its
  best in T. If every seed's best is in T, the best x lie in [0.2, 0.4] (a spread of at
  most 0.2) and every best k is 2 (spread 0): stable. A seed misses T in all of its 100
  trials with probability (14/15)**100 = 0.1%, so one of 6 seeds does with probability
  at most 0.6%: `stable` for 99.4% of seed lists, and these seeds are nothing special.
- `toy_noise` (0 plus a hash of the params in [0, 0.01)), 6 seeds x 20 trials. A
  point's score has nothing to do with where it lies, so each seed's best is one of its
  random points: uniform in the space, independent across seeds. `stable` would need
  all 6 best k equal (probability 3 / 3**6 = 0.4%) and all 6 best x within 0.2 of each
  other (6 * 0.2**5 - 5 * 0.2**6 = 0.16%): 7 in a million together. `unstable`.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest
import report_strategies
from conftest import FIXTURE_CANDLES, fresh_database
from PIL import Image

from cluster.cli import main
from cluster.job.driver import run_job
from cluster.job.parse import parse_job
from cluster.records.exact import canonical_params, float_hex
from cluster.records.export import build_export
from cluster.records.recorder import Recorder
from cluster.report import ensemble_report, trials_frame
from cluster.report.output import SCOPE, shown, shown_spread
from cluster.report.plots import HEIGHT, WIDTH
from cluster.report.stability import PARAM_SPREAD_LIMIT

pytestmark = [pytest.mark.ray, pytest.mark.postgres]
SEEDS = [3, 14, 15, 92, 65, 35]
SYNTHETIC = {"kind": "synthetic", "timeframe": "5m", "start": "2024-01-01", "bars": 200,
             "data_seed": 7}  # fmt: skip
PICTURES = ["best_score_by_trial.png", "best_params.png", "score_by_parameter.png", "equity.png"]


@pytest.fixture(scope="module")
def database(pg_session) -> Iterator[str]:
    yield from fresh_database(pg_session)


@pytest.fixture(scope="module")
def ensembles(ray_local, database, tmp_path_factory) -> dict[str, str]:
    """The two ensembles, run once for the module, and what `run` printed."""
    report_strategies.register()
    report_strategies.ship_by_value()
    made = {}
    for strategy, iterations in (("toy_peak", 100), ("toy_noise", 20)):
        table = {"data": SYNTHETIC, "strategy": strategy, "iterations": iterations,
                 "seeds": SEEDS, "searcher": {"kind": "random"}}  # fmt: skip
        made[strategy] = run(table, database, tmp_path_factory.mktemp("tune"), made)
    return made


def run(table: dict, database: str, storage: Path, printed: dict | None = None) -> str:
    out = io.StringIO()
    ensemble = run_job(parse_job(table, base_dir=str(storage)), database_url=database,
                       storage_path=str(storage), progress=False, out=out)  # fmt: skip
    if printed is not None:
        printed[f"{table['strategy']} printed"] = out.getvalue()
    return str(ensemble)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_one_sharp_optimum_is_stable(ensembles, database):
    report = ensemble_report(ensembles["toy_peak"], database_url=database)
    verdict = report.stability.verdict
    assert verdict.result == "stable", verdict.reason
    for best in report.stability.seeds:  # the argument of the module docstring
        assert best.trials == 100
        assert best.params["k"] == 2 and abs(best.params["x"] - 0.3) <= 0.1
    spreads = {p.name: p.spread for p in report.stability.parameters}
    assert spreads["k"] == 0.0 and spreads["x"] <= PARAM_SPREAD_LIMIT
    assert verdict.largest_spread == spreads["x"] and verdict.above_limit == ()
    # The consensus: the median of six best x (the mean of the middle two), k = 2, and
    # its score is the objective's own value there, from one backtest in this process.
    xs = sorted(best.params["x"] for best in report.stability.seeds)
    assert report.stability.consensus == {"x": (xs[2] + xs[3]) / 2, "k": 2}
    evaluation = report.consensus.evaluation
    assert evaluation.score == report_strategies.peak_score(report.stability.consensus)
    assert evaluation.basis["seeds"] == sorted(SEEDS)
    assert evaluation.basis["best_trial_indices"] == [
        best.trial_index for best in report.stability.seeds
    ]


def test_flat_noise_is_unstable(ensembles, database):
    report = ensemble_report(ensembles["toy_noise"], database_url=database)
    verdict = report.stability.verdict
    assert verdict.result == "unstable", verdict.reason
    assert verdict.largest_spread > PARAM_SPREAD_LIMIT
    assert verdict.parameter in verdict.above_limit and set(verdict.above_limit) <= {"x", "k"}
    assert f"{verdict.largest_spread:.3f}" in verdict.reason


def test_a_seeds_best_and_its_trials_to_within_one_percent(ensembles, database):
    report = ensemble_report(ensembles["toy_peak"], database_url=database)
    assert (report.frame["status"] == "invalid").any(), "no invalid trial was exercised"
    for best in report.stability.seeds:
        rows = report.frame.xs(best.seed, level="seed")
        top = rows[rows["score"] == rows["score"].max()]
        assert (best.trial_index, best.score) == (int(top.index.min()), rows["score"].max())
        # "Within 1%": of the seed's range of measured (not penalized) scores.
        measured = rows.loc[rows["status"] == "ok", "score"]
        tolerance = 0.01 * (measured.max() - measured.min())
        running = rows["score"].cummax().to_numpy()
        first = next(i for i, r in enumerate(running) if r >= best.score - tolerance)
        assert best.trials_to_near_best == first + 1


def test_the_frame_equals_the_canonical_export_bit_for_bit(ensembles, database):
    ensemble = ensembles["toy_peak"]
    frame = trials_frame(ensemble[:8], database_url=database)
    with Recorder(database) as recorder:
        export = build_export(recorder.ensemble_trials(uuid.UUID(ensemble)))
    assert frame.index.names == ["seed", "trial_index"] and list(frame.columns[:2]) == ["x", "k"]
    assert (frame["x"].dtype, frame["k"].dtype) == (np.float64, np.int64)
    assert frame["n_trades"].dtype == "Int64" and len(frame) == len(export.rows) == 600
    assert [export_row(frame, key) for key in frame.index] == list(export.rows)


def export_row(frame: pd.DataFrame, key: tuple[int, int]) -> tuple[str | None, ...]:
    """A frame row as the canonical export writes it: floats as float.hex (every bit),
    ints in decimal, params as canonical JSON, NULL as None."""
    params = {"x": float(frame.at[key, "x"]), "k": int(frame.at[key, "k"])}
    fields = [frame.attrs["spec_id"], str(key[0]), str(key[1]), canonical_params(params)]
    for column in frame.columns[2:]:
        value = frame.at[key, column]
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            fields.append(None)
        elif isinstance(value, np.integer | int):
            fields.append(str(int(value)))
        elif isinstance(value, np.floating | float):
            fields.append(float_hex(float(value)))
        else:
            fields.append(str(value))
    return tuple(fields)


def test_the_consensus_is_recorded_once_and_a_second_report_changes_nothing(
    ensembles, database, monkeypatch
):
    ensemble = ensembles["toy_noise"]
    query = "SELECT *, recorded_at FROM evaluations WHERE ensemble_id = %s"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("DELETE FROM evaluations WHERE ensemble_id = %s", [ensemble])
    first = ensemble_report(ensemble, database_url=database)
    assert first.consensus.new
    with psycopg.connect(database) as conn:
        (recorded,) = conn.execute(query, [ensemble]).fetchall()

    import trainable.strategies

    def no_backtest(*args, **kwargs):
        raise AssertionError("a second report must not backtest again")

    monkeypatch.setattr(trainable.strategies, "outcome", no_backtest)
    second = ensemble_report(ensemble, database_url=database)
    assert not second.consensus.new
    assert second.consensus.evaluation.deterministic() == first.consensus.evaluation.deterministic()
    with psycopg.connect(database) as conn:
        assert conn.execute(query, [ensemble]).fetchall() == [recorded]


def test_a_recorded_consensus_that_the_trials_contradict_stops_the_report(
    ensembles, database, capsys
):
    ensemble = ensembles["toy_noise"]
    ensemble_report(ensemble, database_url=database)  # recorded, if it was not yet
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE evaluations SET params_exact = replace(params_exact, "
                     "'\"k\":', '\"k\":1') WHERE ensemble_id = %s", [ensemble])  # fmt: skip
        try:
            code, _, err = cli(capsys, "report", ensemble, "--database-url", database)
            assert code == 1 and "is not the one its trials give now" in err
        finally:
            conn.execute("DELETE FROM evaluations WHERE ensemble_id = %s", [ensemble])


def test_json_has_every_number_the_text_shows(ensembles, database, capsys):
    ensemble = ensembles["toy_peak"]
    code, text, _ = cli(capsys, "report", ensemble, "--database-url", database)
    assert code == 0
    code, printed, _ = cli(capsys, "report", ensemble[:8], "--database-url", database, "--json")
    assert code == 0
    data = json.loads(printed)
    lines = [line.split() for line in text.splitlines()]
    assert data["ensemble"]["id"] == ensemble and f"Ensemble {ensemble}" in text
    assert data["ensemble"]["spec_id"][:12] in text
    for seed in data["seeds"]:
        expected = [str(seed["seed"]), str(seed["trials"]), str(seed["best_trial_index"]),
                    shown(seed["best_score"]), str(seed["trials_to_within_1pct"])]  # fmt: skip
        assert expected in lines, expected
    scores = data["best_scores"]
    assert (
        f"best scores: lowest {shown(scores['lowest'])}, median {shown(scores['median'])}, "
        f"highest {shown(scores['highest'])}, spread {shown(scores['spread'])}"
    ) in text
    seed_order = [str(seed["seed"]) for seed in data["seeds"]]
    for p in data["parameters"]:
        values = [shown(p["best_values"][seed]) for seed in seed_order]
        expected = [p["name"], f"{shown(p['lower'])}..{shown(p['upper'])}", *values,
                    shown_spread(p["spread"]), shown(p["consensus"])]  # fmt: skip
        assert expected in lines, expected
    assert f"score {shown(data['consensus']['score'])} (" in text
    verdict = data["verdict"]
    assert f"Verdict: {verdict['result'].upper()}: {verdict['reason']}" in text
    assert (
        f"largest spread {shown_spread(verdict['largest_spread'])} ({verdict['parameter']})" in text
    )
    assert (
        f"at most {verdict['param_spread_limit']}, with at least {verdict['min_seeds']} seeds"
        in text
    )
    assert " ".join(text.split()).endswith(SCOPE) and data["scope"] == SCOPE


def test_the_pictures_are_pngs_of_the_expected_size(ensembles, database, tmp_path, capsys):
    code, text, _ = cli(capsys, "report", ensembles["toy_peak"], "--database-url", database,
                        "--plot", str(tmp_path / "pictures"))  # fmt: skip
    assert code == 0
    for name in PICTURES:
        path = tmp_path / "pictures" / name
        assert str(path) in text
        content = path.read_bytes()
        assert content[:8] == b"\x89PNG\r\n\x1a\n" and content[12:16] == b"IHDR"
        size = int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
        assert size == (WIDTH, HEIGHT), name
        assert content.endswith(b"IEND\xaeB`\x82")
        with Image.open(path) as image:
            image.verify()  # every chunk's checksum


def test_run_ends_with_the_report_command_and_report_alone_reports_the_latest(
    ensembles, database, capsys
):
    assert f"python -m cluster report {ensembles['toy_peak']}" in ensembles["toy_peak printed"]
    code, printed, _ = cli(capsys, "report", "--database-url", database, "--json")
    assert code == 0 and json.loads(printed)["ensemble"]["id"] == ensembles["toy_noise"]
    code, _, err = cli(capsys, "report", "ffffffff", "--database-url", database)
    assert code == 2 and "no ensemble id starts with 'ffffffff'" in err


def test_an_unfinished_ensemble_or_changed_candles_are_refused(ensembles, pg_url, tmp_path, capsys):
    candles = tmp_path / "candles.parquet"
    candles.write_bytes(FIXTURE_CANDLES.read_bytes())
    table = {"data": {"kind": "parquet", "path": str(candles), "timeframe": "5m"},
             "strategy": "toy_peak", "iterations": 4, "seeds": [1, 2],
             "searcher": {"kind": "random"}}  # fmt: skip
    ensemble = run(table, pg_url, tmp_path)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE ensembles SET status = 'interrupted'")
        code, _, err = cli(capsys, "report", ensemble, "--database-url", pg_url)
        assert code == 2 and f"python -m cluster resume {ensemble}" in err
        conn.execute("UPDATE ensembles SET status = 'complete'")
        (recorded,) = conn.execute("SELECT dataset_fingerprint FROM ensembles").fetchone()

        changed = pq.read_table(candles)
        volume = changed.column("volume").to_numpy().copy()
        volume[100] += 1.0
        pq.write_table(changed.set_column(5, "volume", [volume]), candles)
        code, _, err = cli(capsys, "report", ensemble, "--database-url", pg_url)
        assert code == 2 and f"the candle data changed: recorded fingerprint {recorded}, now" in err
        assert conn.execute("SELECT count(*) FROM evaluations").fetchone() == (0,)
