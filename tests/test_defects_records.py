"""Known defects of the records commands (issue 13): database URLs, export paths, closed
pipes and the CSV's numbers. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

from cluster.cli import main

SECRET = "pw-s3cret-Value"
# URLs libpq cannot use, each with a password that must never be shown.
UNUSABLE_URLS = [
    (f"postgresql+psycopg://u:{SECRET}@host/db", "postgresql+psycopg"),
    (f"postgresql+psycopg2://u:{SECRET}@host/db", "postgresql+psycopg2"),
    (f"mysql://u:{SECRET}@host/db", "'mysql'"),
    (f"postgresql//u:{SECRET}@host/db", "not a PostgreSQL URL"),
    (f" postgresql://u:{SECRET}@host/db", "whitespace"),
    (f"postgresql://u:{SECRET}@host/db?bogus_option=1", "bogus_option"),
    (f"host=db user=u password={SECRET} frobnicate=1", "frobnicate"),
]
# Usable URLs that carry a password: refused (exit 2) before anything connects.
PASSWORD_URLS = [
    f"postgresql://u:{SECRET}@127.0.0.1:1/db",
    f"host=127.0.0.1 port=1 user=u password={SECRET} dbname=db",
    f"postgresql://u@127.0.0.1:1/db?password={SECRET}",
]
COMMANDS = [["list"], ["show", "1"], ["export", "abc"], ["resume", "abc"], ["verify", "a", "b"]]


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    assert SECRET not in err
    return lines[0]


@pytest.mark.reliability("defect-1")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize(("url", "named"), UNUSABLE_URLS)
@pytest.mark.parametrize("via", ["option", "environment"])
def test_an_unusable_database_url_is_one_line_exit_2_without_the_password(
    command, url, named, via, capsys, monkeypatch
):
    if via == "option":
        monkeypatch.delenv("DATABASE_URL", raising=False)
        argv = [*command, "--database-url", url]
    else:
        monkeypatch.setenv("DATABASE_URL", url)
        argv = list(command)
    assert main(argv) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert named in line
    assert ("--database-url" if via == "option" else "DATABASE_URL") in line


@pytest.mark.reliability("defect-1")
@pytest.mark.parametrize("url", PASSWORD_URLS)
def test_a_password_in_the_url_is_refused_pointing_to_the_password_file(url, capsys):
    assert main(["list", "--database-url", url]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "carries a password" in line and "PGPASSFILE" in line


@pytest.mark.reliability("defect-1")
def test_a_run_with_a_bad_url_is_refused_before_anything_is_read(tmp_path, capsys):
    job = tmp_path / "job.toml"
    job.write_text('iterations = 5\n[data]\nkind = "parquet"\npath = "missing.parquet"\n'
                   'timeframe = "5m"\n')  # fmt: skip
    assert main(["run", str(job), "--database-url", UNUSABLE_URLS[0][0]]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "postgresql+psycopg" in line  # the URL, not the job's missing file, comes first


@pytest.mark.reliability("defect-1")
def test_an_unreachable_server_is_one_line(capsys):
    # A usable URL (no password) of a port nobody listens on: exit 1, on one line.
    assert main(["list", "--database-url", "postgresql://u@127.0.0.1:1/db"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "cannot connect to PostgreSQL at postgresql://u@127.0.0.1:1/db" in line


@pytest.mark.reliability("defect-1")
def test_the_user_sees_one_line_in_a_real_process():
    environment = {**os.environ, "DATABASE_URL": UNUSABLE_URLS[0][0]}
    done = subprocess.run(
        [sys.executable, "-m", "cluster", "export", "abc"],
        cwd="/tmp",
        env={**environment, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    _one_line_error(done.stderr)


@pytest.fixture
def recorded(pg_url):
    """An ensemble of seed 1 with two trials; its id."""
    from records_factory import FAST_RETRY, new_ensemble, ok_trial

    from cluster.records.recorder import Recorder

    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        ensemble_id = new_ensemble(recorder, seeds=(1,), budget=2)
        recorder.record_trials(ensemble_id, [ok_trial(1, 0, score=0.5), ok_trial(1, 1)])
    return pg_url, str(ensemble_id)


@pytest.mark.postgres
@pytest.mark.reliability("defect-2")
@pytest.mark.parametrize("fmt", ["csv", "parquet", "digest"])
@pytest.mark.parametrize("where", ["missing-dir", "a-directory"])
def test_export_to_a_bad_output_path_exits_2_naming_it(recorded, tmp_path, capsys, fmt, where):
    url, ensemble = recorded
    output = tmp_path / "nonexistent" / "f.out" if where == "missing-dir" else tmp_path
    before = sorted(tmp_path.rglob("*"))
    code = main(["export", ensemble, "--format", fmt, "--output", str(output),
                 "--database-url", url])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2, err
    assert str(output) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def _into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    """`python -m cluster ARGV` with stdout a pipe whose reader is already gone (as after
    `| head` stopped reading): every write to stdout fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "cluster", *argv],
            cwd="/tmp",
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(write_end)


@pytest.mark.postgres
@pytest.mark.reliability("defect-3")
def test_output_into_a_closed_pipe_ends_quietly(recorded, tmp_path):
    url, ensemble = recorded
    for argv in (
        ["data", "show", "--synthetic", "--timeframe", "5m", "--start", "2024-01-01",
         "--bars", "100", "--cache-dir", str(tmp_path)],
        ["export", ensemble, "--database-url", url],
        ["list", "--database-url", url],
        ["--help"],
    ):  # fmt: skip
        done = _into_a_closed_pipe(*argv)
        # (data show writes its one-line summary to stderr, which is still open)
        assert "BrokenPipe" not in done.stderr and "error" not in done.stderr, (argv, done)
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
        assert done.returncode == (0 if argv == ["--help"] else 1), (argv, done.stderr)


@pytest.mark.reliability("defect-7")
def test_csv_numbers_are_decimals_that_read_back_bit_for_bit():
    import io
    import struct

    import pandas as pd
    from records_factory import SPEC_ID, ok_metrics

    from cluster.records.export import COLUMNS, build_export, write_csv
    from cluster.records.types import TrialRecord

    awkward = [0.1 + 0.2, 5e-324, -0.0, 1 / 3, 2.0**-1074 * 3, 123456789.12345679]
    trials = [
        TrialRecord.ok(SPEC_ID, 7, i, {"x": value, "k": i}, ok_metrics(value, sortino=-value))
        for i, value in enumerate(awkward)
    ]
    out = io.StringIO()
    write_csv(build_export(trials), out)
    assert "0x" not in out.getvalue()
    frame = pd.read_csv(io.StringIO(out.getvalue()))
    assert tuple(frame.columns) == COLUMNS
    assert frame["score"].dtype == "float64" and frame["sortino"].dtype == "float64"

    def bits(values):
        return [struct.pack("<d", float(v)) for v in values]

    assert bits(frame["score"]) == bits(awkward)
    assert bits(frame["sortino"]) == bits(-v for v in awkward)
    params = [json.loads(text) for text in frame["params"]]
    assert bits(p["x"] for p in params) == bits(awkward)
    assert [p["k"] for p in params] == list(range(len(awkward)))
    assert frame["score"].tolist()[0] == 0.30000000000000004  # repr, not 17 digits
    assert "0.30000000000000004," in out.getvalue()
