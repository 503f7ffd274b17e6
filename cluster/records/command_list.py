"""`python -m cluster list`: ensembles and their jobs, with live status, counts and best."""

from __future__ import annotations

import argparse
import json
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from cluster.records.command_options import (
    add_database_argument,
    format_score,
    open_records,
    records_command,
)

HELP = "list recorded ensembles and their jobs (status, trials, best score)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_database_argument(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


@records_command
def run(args: argparse.Namespace) -> int:
    with open_records(args) as recorder:
        ensembles = recorder.ensembles()
        where = recorder.where
    if args.json:
        print(json.dumps([_plain(asdict(e)) for e in ensembles], indent=2))
        return 0
    if not ensembles:
        print(f"no ensembles recorded ({where})")
        return 0
    for ensemble in ensembles:
        recorded = sum(job.n_trials for job in ensemble.jobs)
        budget = sum(job.budget for job in ensemble.jobs)
        scores = [job.best_score for job in ensemble.jobs if job.best_score is not None]
        name = f" {ensemble.name}" if ensemble.name else ""
        print(
            f"ensemble {ensemble.id}{name}: {ensemble.status}, {len(ensemble.seeds)} seeds, "
            f"{recorded}/{budget} trials, best score {format_score(max(scores, default=None))}, "
            f"created {ensemble.created_at:%Y-%m-%d %H:%M:%S %Z}, spec {ensemble.spec_id[:12]}"
        )
        print(
            f"  {'job':>6} {'seed':>11} {'status':<11} {'trials':>11} {'ok':>7} "
            f"{'invalid':>7} {'best':>6} {'best score':>12}"
        )
        for job in ensemble.jobs:
            best = "-" if job.best_trial_index is None else str(job.best_trial_index)
            print(
                f"  {job.id:>6} {job.seed:>11} {job.status:<11} "
                f"{f'{job.n_trials}/{job.budget}':>11} {job.n_ok:>7} {job.n_invalid:>7} "
                f"{best:>6} {format_score(job.best_score):>12}"
            )
    return 0


def _plain(value: Any) -> Any:
    """JSON-ready: UUIDs and datetimes as text (enums are str already)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
