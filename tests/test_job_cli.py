"""The main command as a user runs it: `python -m cluster run examples/quickstart.toml` in a
process of its own (a local Ray, a real PostgreSQL), then `list`, `show`, `export`,
`verify`; bad input exits 2 before Ray starts or anything is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest
from conftest import REPO_ROOT

from cluster.cli import main

pytestmark = [pytest.mark.postgres]
QUICKSTART = REPO_ROOT / "examples" / "quickstart.toml"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`python -m cluster ARGS` in a new process, from a directory that is not the repo's."""
    environment = {**os.environ, **(env or {})}
    environment.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "cluster", *args],
        cwd="/tmp",
        env={**environment, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.ray
@pytest.mark.slow
def test_the_quickstart_end_to_end(pg_url, tmp_path, capsys):
    done = cli("run", str(QUICKSTART), "--database-url", pg_url, "--storage-path",
               str(tmp_path / "tune"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    ensemble = done.stdout.split()[1]
    assert f"ensemble {ensemble}: complete" in done.stdout
    # Not a terminal: per-seed progress lines, e.g. "seed=42 done=30/30 best=...".
    assert "seed=42 done=30/30 best=" in done.stderr
    assert "seed=123 done=30/30 best=" in done.stderr
    assert "Traceback" not in done.stderr

    assert main(["list", "--database-url", pg_url, "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == ensemble and listed["status"] == "complete"
    jobs = {job["seed"]: job for job in listed["jobs"]}
    assert set(jobs) == {42, 123}
    assert all(job["n_trials"] == 30 and job["status"] == "complete" for job in jobs.values())

    assert main(["show", f"{ensemble}:42", "--database-url", pg_url, "--json", "--limit", "0"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(t["trial_index"] for t in shown) == list(range(30))
    best = max(shown, key=lambda t: (t["score"], -t["trial_index"]))
    assert best["trial_index"] == jobs[42]["best_trial_index"]

    # The report the quickstart ends with (README): the real strategy, its candles
    # reloaded from the Parquet file, the consensus backtested and recorded, pictures.
    assert f"python -m cluster report {ensemble}" in done.stdout
    pictures = tmp_path / "pictures"
    assert main(["report", "--database-url", pg_url, "--json", "--plot", str(pictures)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ensemble"]["id"] == ensemble and report["consensus"]["recorded"] == "now"
    assert [s["best_trial_index"] for s in report["seeds"]] == [
        jobs[42]["best_trial_index"], jobs[123]["best_trial_index"]
    ]  # fmt: skip
    assert report["verdict"]["result"] == "unstable"  # as the README shows
    assert report["consensus"]["metrics"]["n_trades"] > 0
    assert sorted(p.name for p in pictures.iterdir()) == [
        "best_params.png", "best_score_by_trial.png", "equity.png", "is_vs_oos.png",
        "monte_carlo_fan.png", "pbo_logits.png", "score_by_parameter.png", "sensitivity.png",
    ]  # fmt: skip
    robustness = report["robustness"]  # computed on the 60 distinct parameter sets
    assert robustness["deflated_sharpe"]["trials"] == 60 and robustness["pbo"]["splits"] == 12870

    assert main(["export", ensemble, "--format", "digest", "--database-url", pg_url]) == 0
    digest = capsys.readouterr().out.strip()
    assert len(digest) == 64
    with psycopg.connect(pg_url) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM trials").fetchone()
        (runs,) = conn.execute(
            "SELECT count(*) FROM ensemble_runs WHERE outcome = 'complete'"
        ).fetchone()
    assert rows == 60 and runs == 1

    # The user's proof of determinism: the same job again, compared bit for bit.
    rerun = cli("verify", "--rerun", ensemble[:8], "--database-url", pg_url, "--storage-path",
                str(tmp_path / "tune"), "--no-progress")  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert f"this spec ran once before, last as ensemble {ensemble} (the same data)" in rerun.stdout
    assert f"identical: 60 trial records, digest {digest}" in rerun.stdout


def _no_rows(url: str) -> bool:
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT to_regclass('ensembles')").fetchone()[0]
        if tables is None:
            return True
        return conn.execute("SELECT count(*) FROM ensembles").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ('iterations = 5\n[data]\nkind = "parquet"\npath = "missing.parquet"\ntimeframe = "5m"\n',
         "missing.parquet: no such file"),
        ('iterations = 5\nseeds = [1, 1]\n[data]\nkind = "synthetic"\ntimeframe = "5m"\n'
         'start = "2024-01-01"\nbars = 100\ndata_seed = 1\n', "seeds: repeated seeds 1"),
        ('iteration = 5\n[data]\nkind = "synthetic"\ntimeframe = "5m"\nstart = "2024-01-01"\n'
         'bars = 100\ndata_seed = 1\n', "(did you mean 'iterations'?)"),
        ('iterations = 5\n[searcher]\nkind = "grid"\npoints = 1\n[data]\nkind = "synthetic"\n'
         'timeframe = "5m"\nstart = "2024-01-01"\nbars = 100\ndata_seed = 1\n',
         "points must be an int in [2, 1,000,000], got 1"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_before_ray_starts_or_anything_is_written(
    tmp_path, pg_url, capsys, job, expected
):
    import ray

    path = tmp_path / "job.toml"
    path.write_text(job)
    assert main(["run", str(path), "--database-url", pg_url]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not ray.is_initialized()
    assert _no_rows(pg_url)


def test_a_ray_address_where_nothing_listens_exits_2_before_anything_is_written(pg_url, capsys):
    """`ray.init` waits for a cluster that is not there for many minutes: the address is
    tried first, and refused in one line."""
    import socket

    import ray

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    assert main(["run", str(QUICKSTART), "--database-url", pg_url, "--address", address]) == 2
    err = capsys.readouterr().err
    assert f"--address {address}: no Ray cluster answers there" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not ray.is_initialized()
    assert _no_rows(pg_url)


def test_bad_data_exits_2_naming_the_row(tmp_path, pg_url, capsys):
    """A Parquet file whose row 3 has high < low is refused by the same checks as
    every other entry point (`data show`, `backtest --candles`)."""
    import pyarrow.parquet as pq

    table = pq.read_table(REPO_ROOT / "tests" / "data" / "binance_BTC-USDT_5m_0-4999.parquet")
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    columns["high"][3] = columns["low"][3] - 1.0
    import pyarrow as pa

    pq.write_table(pa.table(columns), tmp_path / "bad.parquet")
    job = tmp_path / "job.toml"
    job.write_text('iterations = 5\n[data]\nkind = "parquet"\npath = "bad.parquet"\n'
                   'timeframe = "5m"\n')  # fmt: skip
    assert main(["run", str(job), "--database-url", pg_url]) == 2
    err = capsys.readouterr().err
    assert "row 3 (" in err and "high" in err
    assert _no_rows(pg_url)


def test_verify_of_unknown_or_incomparable_ensembles_exits_2(pg_url, capsys):
    assert main(["verify", "0000", "1111", "--database-url", pg_url]) == 2
    assert "no ensemble id starts with '0000'" in capsys.readouterr().err
    assert main(["resume", "abcdef", "--database-url", pg_url]) == 2
