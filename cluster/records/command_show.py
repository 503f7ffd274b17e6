"""`python -m cluster show JOB`: a job's trials, best first."""

from __future__ import annotations

import argparse
import json

from cluster.records.command_options import (
    add_database_argument,
    format_score,
    open_records,
    records_command,
)
from cluster.records.types import TrialRecord

HELP = "show a job's trials, best score first"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", metavar="JOB", help="job id as `list` shows it, or ENSEMBLE:SEED")
    parser.add_argument(
        "--limit", type=_limit, default=20, help="trials to show (default 20; 0 for all)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_database_argument(parser)


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"--limit must be >= 0, got {value}")
    return value


@records_command
def run(args: argparse.Namespace) -> int:
    with open_records(args) as recorder:
        job = recorder.find_job(args.job)
        trials = recorder.best_trials(job.id, args.limit or None)
    if args.json:
        print(json.dumps([_as_json(t) for t in trials], indent=2))
        return 0
    print(
        f"job {job.id}: ensemble {job.ensemble_id} seed {job.seed}, {job.status}, "
        f"{job.n_trials}/{job.budget} trials ({job.n_ok} ok, {job.n_invalid} invalid), "
        f"searcher {job.searcher}"
    )
    print(
        f"{'trial':>6} {'status':<8} {'score':>10} {'sharpe':>10} {'trades':>7} "
        f"{'return':>10} {'drawdown':>10}  params / message"
    )
    for t in trials:
        detail = t.message or " ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(t.params.items())
        )
        print(
            f"{t.trial_index:>6} {t.status:<8} {format_score(t.score):>10} "
            f"{format_score(t.metrics['sharpe']):>10} "
            f"{'-' if t.metrics['n_trades'] is None else t.metrics['n_trades']:>7} "
            f"{format_score(t.metrics['total_return']):>10} "
            f"{format_score(t.metrics['max_drawdown']):>10}  {detail}"
        )
    return 0


def _as_json(trial: TrialRecord) -> dict:
    """Floats as JSON numbers (Python writes the shortest text that reads back exactly)."""
    return {
        **trial.deterministic(),
        "params": dict(trial.params),
        "node": trial.node,
        "attempts": trial.attempts,
        "started_at": trial.started_at.isoformat() if trial.started_at else None,
        "finished_at": trial.finished_at.isoformat() if trial.finished_at else None,
        "duration_s": trial.duration_s,
    }
