"""`python -m cluster list | show | export` end to end on a real database, and `list` on
a machine with no database set up at all."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from records_factory import FAST_RETRY, SPEC_ID, new_ensemble, ok_trial

from cluster.cli import main
from cluster.records.database import redact
from cluster.records.export import build_export
from cluster.records.recorder import Recorder
from cluster.records.types import JobStatus, TrialRecord

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_list_works_on_a_fresh_machine_and_leaves_no_server_behind(short_tmp):
    home = short_tmp / "home"  # does not exist yet: nothing is set up
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(REPROTUNE_HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "cluster", "list"], env=env, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no ensembles recorded (postgresql://postgres@/reprotune?host=")
    data_dir = home / "pg"
    assert (data_dir / "PG_VERSION").read_text().strip() == "18"
    assert not (data_dir / "postmaster.pid").exists()  # stopped cleanly
    assert json.loads((data_dir / ".handle_pids.json").read_text()) == []
    running = [
        p for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])
    ]  # fmt: skip
    assert running == []


@pytest.fixture
def recorded(pg_url):
    """An ensemble of seeds 1 and 2: seed 1 complete with 3 trials, seed 2 with one."""
    with Recorder(pg_url, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        ensemble_id = new_ensemble(recorder, seeds=(1, 2), budget=3, name="demo")
        recorder.record_trials(
            ensemble_id,
            [
                ok_trial(1, 0, score=0.5),
                ok_trial(1, 1, score=2.0),
                TrialRecord.invalid(SPEC_ID, 1, 2, {"x": 1}, "ValueError: equity reached 0"),
                ok_trial(2, 0, score=-1.0),
            ],
        )
        recorder.set_job_status(ensemble_id, 1, JobStatus.COMPLETE)
        job_ids = {seed: recorder.find_job(f"{ensemble_id}:{seed}").id for seed in (1, 2)}
        digest = build_export(recorder.ensemble_trials(ensemble_id)).digest
    return {"url": pg_url, "ensemble": ensemble_id, "jobs": job_ids, "digest": digest}


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_shows_ensembles_and_jobs(recorded, capsys):
    code, out, _ = _cli(capsys, "list", "--database-url", recorded["url"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"ensemble {recorded['ensemble']} demo: interrupted, 2 seeds, ")
    assert "4/6 trials, best score 2," in lines[0]
    job_1, job_2 = lines[2].split(), lines[3].split()
    assert job_1 == [str(recorded["jobs"][1]), "1", "complete", "3/3", "2", "1", "1", "2"]
    assert job_2 == [str(recorded["jobs"][2]), "2", "interrupted", "1/3", "1", "0", "-", "-"]
    code, out, _ = _cli(capsys, "list", "--json", "--database-url", recorded["url"])
    (ensemble,) = json.loads(out)
    assert ensemble["id"] == str(recorded["ensemble"]) and ensemble["status"] == "interrupted"
    assert [job["n_trials"] for job in ensemble["jobs"]] == [3, 1]


def test_show_lists_a_jobs_trials_best_first(recorded, capsys):
    job = str(recorded["jobs"][1])
    code, out, _ = _cli(capsys, "show", job, "--database-url", recorded["url"])
    assert code == 0
    trial_lines = out.splitlines()[2:]
    assert [line.split()[0] for line in trial_lines] == ["1", "0", "2"]
    assert "ValueError: equity reached 0" in trial_lines[2]
    by_seed = f"{str(recorded['ensemble'])[:8]}:1"
    code, out, _ = _cli(capsys, "show", by_seed, "--limit", "2", "--json",
                        "--database-url", recorded["url"])  # fmt: skip
    trials = json.loads(out)
    assert [(t["trial_index"], t["score"]) for t in trials] == [(1, 2.0), (0, 0.5)]
    assert trials[0]["params"] == {"key_level_lookback": 51, "pierce_depth": 0.002}


def test_export_writes_the_digest_csv_and_parquet(recorded, capsys, tmp_path):
    url, ensemble = recorded["url"], str(recorded["ensemble"])
    code, out, _ = _cli(capsys, "export", ensemble[:6], "--format", "digest", "--database-url", url)
    assert (code, out) == (0, recorded["digest"] + "\n")
    code, out, _ = _cli(capsys, "export", ensemble, "--seed", "2", "--database-url", url)
    rows = list(csv.reader(io.StringIO(out)))
    assert code == 0 and [(r[1], r[2]) for r in rows[1:]] == [("2", "0")]
    target = tmp_path / "trials.parquet"
    code, _, _ = _cli(capsys, "export", ensemble, "--format", "parquet", "--output", str(target),
                      "--database-url", url)  # fmt: skip
    table = pq.read_table(target)
    assert code == 0 and table.num_rows == 4
    assert table.schema.metadata[b"reprotune.sha256"].decode() == recorded["digest"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "999999"], "no training job '999999'"),
        (["show", "abc"], "'abc' is not a job"),
        (["export", "ffffffff"], "no ensemble id starts with 'ffffffff'"),
        (["export", "{ensemble}", "--seed", "7"], "has no seed [7]"),
        (["export", "{ensemble}", "--format", "parquet"], "--format parquet needs --output"),
    ],
)
def test_bad_names_exit_2_with_a_message(recorded, capsys, argv, message):
    argv = [a.format(ensemble=recorded["ensemble"]) for a in argv]
    code, _, err = _cli(capsys, *argv, "--database-url", recorded["url"])
    assert code == 2
    assert message in err


def test_a_url_with_a_password_is_refused_and_never_printed(recorded, capsys):
    with_password = recorded["url"] + " password=s3cret-value"
    code, _, err = _cli(capsys, "list", "--database-url", with_password)
    assert code == 2
    assert "s3cret" not in err and "carries a password" in err  # use PGPASSFILE instead


@pytest.mark.parametrize(
    ("conninfo", "shown"),
    [
        (
            "postgresql://bob:pw@db.example:5433/records",
            "postgresql://bob:***@db.example:5433/records",
        ),
        ("host=db user=bob password=pw dbname=r", "postgresql://bob:***@db/r"),
        ("postgresql://bob@db/r", "postgresql://bob@db/r"),
        ("host=/tmp/rt-1/pg user=postgres dbname=x", "postgresql://postgres@/x?host=/tmp/rt-1/pg"),
        ("postgresql://[broken", "<unparseable connection string>"),
    ],
)
def test_redact_hides_passwords(conninfo, shown):
    assert redact(conninfo) == shown
