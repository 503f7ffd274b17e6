"""The job spec: its identity (spec_id) and its validation, without Ray or a database.

The expected canonical JSON below was written by hand from the rules in
cluster/job/spec.py's docstring and docs/jobs.md (keys sorted, no spaces, every default
filled, times as int ms), not printed by the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from job_strategies import register_toys

from cluster.cli import main
from cluster.errors import InvalidInput
from cluster.job.parse import load_job_file, parse_job, parse_seeds, table_of_resolved
from cluster.versions import RECORDS_VERSION
from search.space import FloatRange, IntRange

register_toys()

SYNTHETIC = {"kind": "synthetic", "timeframe": "5m", "start": "2024-01-01", "bars": 500,
             "data_seed": 7}  # fmt: skip
TOY = {"data": SYNTHETIC, "strategy": "toy_quadratic", "searcher": "random", "iterations": 12}
FIXTURE = Path(__file__).parent / "data" / "binance_BTC-USDT_5m_0-4999.parquet"


def problems_of(table: dict) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_job(table)
    return caught.value.problems


def one_problem(table: dict) -> str:
    problems = problems_of(table)
    assert len(problems) == 1, problems
    return problems[0]


# -- identity ---------------------------------------------------------------------------


def test_spec_id_is_the_sha256_of_the_hand_written_canonical_json():
    expected = (
        '{"data":{"gap_policy":"reject","max_fill_share":0.0,"source":{"bars":500,'
        '"data_seed":7,"kind":"synthetic","start":1704067200000,"timeframe":"5m"}},'
        '"fee":0.001,"iterations":12,"min_trades":5,'
        f'"records_version":{RECORDS_VERSION},"score_penalty":-100.0,'
        '"searcher":{"kind":"random","options":{}},"slippage":0.0,'
        '"strategy":{"name":"toy_quadratic","space":{"k":{"lower":1,"type":"int","upper":5},'
        '"x":{"lower":0.0,"type":"float","upper":1.0}}}}'
    )
    spec = parse_job(TOY)
    assert spec.spec_id == hashlib.sha256(expected.encode("ascii")).hexdigest()


def test_defaults_written_out_give_the_same_identity():
    explicit = {
        **TOY,
        "data": {**SYNTHETIC, "start": 1704067200000, "gap_policy": "reject",
                 "max_fill_share": 0},
        "strategy": {"name": "toy_quadratic", "space": {"x": [0, 1], "k": [1, 5]}},
        "searcher": {"kind": "random"},
        "fee": 0.001, "slippage": 0, "min_trades": 5,
    }  # fmt: skip
    assert parse_job(explicit).spec_id == parse_job(TOY).spec_id


def test_execution_settings_name_and_seeds_leave_the_identity_alone():
    other = {
        **TOY,
        "name": "another name",
        "seeds": [1, 2, 3],
        "execution": {"max_concurrent_trials": 7, "cpus_per_trial": 0.5, "max_failures": 0,
                      "storage_path": "/somewhere"},
    }  # fmt: skip
    assert parse_job(other).spec_id == parse_job(TOY).spec_id
    assert parse_job(TOY, seeds=(9,)).spec_id == parse_job(TOY).spec_id


@pytest.mark.parametrize(
    "change",
    [
        {"iterations": 13},
        {"fee": 0.0005},
        {"slippage": 0.0001},
        {"min_trades": 4},
        {"data": {**SYNTHETIC, "data_seed": 8}},
        {"data": {**SYNTHETIC, "bars": 501}},
        {"data": {**SYNTHETIC, "gap_policy": "fill", "max_fill_share": 0.01}},
        {"strategy": {"name": "toy_quadratic", "space": {"k": [1, 4]}}},
        {"strategy": {"name": "toy_quadratic", "space": {"x": 0.5}}},
        {"strategy": "toy_sleepy"},
        {"searcher": "bayesian"},
    ],
)
def test_every_deterministic_field_changes_the_identity(change):
    assert parse_job({**TOY, **change}).spec_id != parse_job(TOY).spec_id


def test_grid_values_in_another_order_are_the_same_grid_and_the_same_identity():
    grid = {**TOY, "searcher": {"kind": "grid", "values": {"k": [3, 1, 2, 3]}}}
    reordered = {**TOY, "searcher": {"kind": "grid", "values": {"k": [1, 2, 3]}}}
    assert parse_job(grid).spec_id == parse_job(reordered).spec_id
    assert parse_job(grid).searcher_options["values"] == {"k": [1, 2, 3]}


@pytest.mark.parametrize(
    "searcher",
    [
        {"kind": "random"},
        {"kind": "grid", "points": 3},
        {"kind": "bayesian", "n_initial": 5, "xi": 0.1, "liar": "mean"},
    ],
)
def test_a_recorded_spec_parses_back_to_the_same_spec(searcher):
    table = {**TOY, "searcher": searcher, "strategy": {"name": "toy_quadratic",
             "space": {"x": [0.25, 0.75]}}}  # fmt: skip
    if searcher["kind"] == "bayesian":
        table["batch_size"] = 3
    if searcher["kind"] == "grid":
        table["iterations"] = 9  # 3 values of x times 3 of k (1, 3, 5)
    spec = parse_job(table)
    # What resume and `verify --rerun` do with the recorded JSON (through the database).
    recorded = json.loads(json.dumps(spec.resolved()))
    again = parse_job(table_of_resolved(recorded))
    assert again.resolved() == spec.resolved() and again.spec_id == spec.spec_id


def test_the_space_is_the_declaration_with_the_overrides():
    spec = parse_job({**TOY, "strategy": {"name": "toy_quadratic", "space": {"k": 3}}})
    assert list(spec.space.items()) == [("x", FloatRange(0.0, 1.0)), ("k", IntRange(3, 3))]
    real = parse_job({**TOY, "strategy": {"space": {"key_level_lookback": [60, 80]}}})
    assert real.space["key_level_lookback"] == IntRange(60, 80)
    assert real.space["pierce_depth"] == FloatRange(0.001, 0.005)  # STRATEGY.md's default
    assert len(real.space) == 9


def test_a_relative_parquet_path_is_read_from_the_job_files_directory(tmp_path):
    job = tmp_path / "jobs" / "job.toml"
    job.parent.mkdir()
    data = tmp_path / "candles.parquet"
    data.write_bytes(FIXTURE.read_bytes())
    job.write_text(
        'iterations = 3\n[data]\nkind = "parquet"\npath = "../candles.parquet"\ntimeframe = "5m"\n'
    )
    spec = load_job_file(job)
    assert spec.data.source.path == "../candles.parquet"  # as written: part of the identity
    assert Path(spec.data_source().path).resolve() == data.resolve()
    moved = tmp_path / "elsewhere" / "jobs"
    moved.mkdir(parents=True)
    (moved / "job.toml").write_text(job.read_text())
    assert load_job_file(moved / "job.toml").spec_id == spec.spec_id


# -- validation -------------------------------------------------------------------------


def test_an_unknown_key_gets_a_did_you_mean_hint():
    problem = one_problem({**TOY, "iteration": 5})
    assert problem.startswith("iteration: unknown key (did you mean 'iterations'?)")


def test_every_problem_is_reported_at_once():
    problems = problems_of(
        {
            "data": {**SYNTHETIC, "bars": 0},
            "strategy": {"name": "toy_quadratic", "space": {"x": [0.9, 0.1], "kk": 2}},
            "searcher": {"kind": "random", "points": 3},
            "iterations": "ten",
            "seeds": [1, 1, -5],
            "fee": 2,
        }
    )
    joined = "\n".join(problems)
    for expected in (
        "data: synthetic source: bars: must be in [1, ",
        "strategy.space.kk: toy_quadratic has no parameter 'kk' (did you mean 'k'?)",
        "strategy.space.x: lower 0.9 is above upper 0.1",
        "searcher: unknown option 'points' for the random searcher",
        "iterations: expected an integer, got 'ten'",
        "seeds: repeated seeds 1",
        "seeds[2]: -5 is outside [0, 2147483647]",
        "fee: expected a fraction in [0, 1)",
    ):
        assert expected in joined, (expected, problems)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"iterations": 0}, "iterations: 0 is outside [1, 1,000,000]"),
        ({"iterations": True}, "iterations: expected an integer, got True"),
        ({"seeds": []}, "seeds: the list is empty"),
        ({"seeds": "42"}, "seeds: expected a list of integers"),
        ({"seeds": [2**31]}, "seeds[0]: 2147483648 is outside [0, 2147483647]"),
        ({"seeds": [1.5]}, "seeds[0]: expected an integer, got 1.5"),
        ({"seeds": list(range(1025))}, "seeds: 1,025 seeds, at most 1024 per ensemble"),
        ({"slippage": -0.1}, "slippage: expected a fraction in [0, 1)"),
        ({"min_trades": -1}, "min_trades: -1 is outside [0, 2,147,483,647]"),
        ({"name": ""}, "name: expected a text of 1 to 200 characters"),
        ({"data": None}, "data: missing"),
        ({"data": {**SYNTHETIC, "kind": "csv"}}, "data: source: kind 'csv' is not one of"),
        ({"data": {**SYNTHETIC, "timeframe": "7m"}}, "timeframe '7m' is not supported"),
        ({"data": {**SYNTHETIC, "gap_policy": "guess"}}, "data.gap_policy: 'guess' is not one"),
        ({"data": {**SYNTHETIC, "seed": 1}}, "unknown field 'seed' (did you mean 'data_seed'?)"),
        ({"data": {"kind": "parquet", "timeframe": "5m"}}, "missing field 'path'"),
        (
            {
                "data": {
                    "kind": "ccxt",
                    "exchange": "binanceus",
                    "pair": "BTC/USDT",
                    "timeframe": "5m",
                    "start": "2024-02-01",
                    "end": "2024-01-01",
                }
            },
            "start (1706745600000) must be before end (1704067200000)",
        ),
        (
            {
                "data": {
                    "kind": "ccxt",
                    "exchange": "binanceus",
                    "pair": "BTC/USDT",
                    "timeframe": "5m",
                    "last_candles": 10,
                    "start": "2024-01-01",
                }
            },
            "last_candles excludes start",
        ),
        ({"strategy": "keylevel"}, "strategy.name: unknown strategy 'keylevel'"),
        ({"strategy": {"name": "toy_quadratic", "space": {"k": 2.0}}}, "k is an int parameter"),
        (
            {"strategy": {"name": "toy_quadratic", "space": {"x": [-1, 0.5]}}},
            "x must be >= 0, got -1 (valid values: >= 0)",
        ),
        ({"strategy": {"name": "toy_quadratic", "space": {"x": [0, 0.5, 1]}}}, "expected [lower"),
        ({"searcher": "bayes"}, "unknown searcher 'bayes' (did you mean 'bayesian'?)"),
        ({"searcher": {"kind": "bayesian", "xii": 0.1}}, "unknown option 'xii'"),
        ({"searcher": {"kind": "bayesian", "xi": -1}}, "xi must be a finite number >= 0"),
        ({"batch_size": 4}, "batch_size: only the bayesian searcher has batches"),
        (
            {"searcher": {"kind": "bayesian", "batch_size": 4}},
            "searcher.batch_size: set batch_size at the top level",
        ),
        (
            # 3 points of x (0, 0.5, 1) times 3 of k (1, 3, 5)
            {"searcher": {"kind": "grid", "points": 3}, "iterations": 10},
            "iterations (10) exceeds the grid's 9 points",
        ),
        ({"execution": {"max_concurent_trials": 2}}, "(did you mean 'max_concurrent_trials'?)"),
        ({"execution": {"cpus_per_trial": 0}}, "execution.cpus_per_trial: expected a number"),
    ],
)
def test_each_wrong_field_is_named(change, expected):
    table = {**TOY, **change}
    if change.get("data", 0) is None:
        del table["data"]
    problems = problems_of(table)
    assert any(expected in problem for problem in problems), problems


def test_seeds_from_the_command_line():
    assert parse_seeds("42,123,456") == (42, 123, 456)
    assert parse_seeds("42..45, 7") == (42, 43, 44, 45, 7)
    for bad, expected in (
        ("5..3", "range '5..3' runs backwards"),
        ("a", "'a' is not a seed or a range"),
        ("1..2000", "more than 1024 seeds"),
        ("1,1", "repeated seeds 1"),
        ("-3", "-3 is outside"),
    ):
        with pytest.raises(InvalidInput, match=expected.replace(".", r"\.")):
            parse_seeds(bad)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the job file is empty"),
        (b"iterations = \n", "is not valid TOML"),
        (b"\xff\xfe\x00junk", "not UTF-8 text"),
        (b"x" * 1_000_001, "is not a job file (at most 1,000,000)"),
    ],
)
def test_a_file_that_is_not_a_job_is_refused_by_the_cli(tmp_path, capsys, content, expected):
    job = tmp_path / "job.toml"
    job.write_bytes(content)
    assert main(["run", str(job)]) == 2
    assert expected in capsys.readouterr().err


def test_a_missing_job_file_is_refused(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml': no such file" in capsys.readouterr().err


def test_resume_refuses_other_code_naming_every_difference():
    import uuid
    from datetime import UTC, datetime

    from cluster.job.resume import refuse_changed_code
    from cluster.records.types import EnsembleDetail, EnsembleStatus
    from cluster.versions import installed_versions

    installed = installed_versions()
    detail = EnsembleDetail(
        id=uuid.uuid4(), name=None, spec_id="a" * 64, spec={}, seeds=(1,),
        dataset_fingerprint="b" * 64, records_version=RECORDS_VERSION + 1,
        library_versions={**installed, "numpy": "1.0.0", "scipy": "0.1"}, host={},
        status=EnsembleStatus.INTERRUPTED, created_at=datetime.now(UTC),
    )  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        refuse_changed_code(detail)
    assert caught.value.problems == [
        f"records_version: the ensemble was recorded by RECORDS_VERSION {RECORDS_VERSION + 1}, "
        f"this code is {RECORDS_VERSION}; its records cannot be continued (run the job again "
        "as a new ensemble)",
        f"numpy: recorded with 1.0.0, installed {installed['numpy']}; install the locked "
        "builds (requirements.lock) to continue these records",
        f"scipy: recorded with 0.1, installed {installed['scipy']}; install the locked builds "
        "(requirements.lock) to continue these records",
    ]
    from dataclasses import replace

    same_code = replace(detail, records_version=RECORDS_VERSION, library_versions=installed)
    refuse_changed_code(same_code)  # no problem
