"""An ensemble's job as its records say it, and whether this code may add to them.

Resume, `verify --rerun` and the report's extra backtests all start from the records
alone: `recorded_spec` rebuilds the job spec (checked against the recorded spec_id) and
`refuse_changed_code` says when this code could not reproduce what was recorded. Nothing
here imports Ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cluster.errors import Failed, InvalidInput
from cluster.job.parse import parse_job, table_of_resolved
from cluster.job.spec import Execution, JobSpec
from cluster.records.types import EnsembleDetail, RunRecord
from cluster.versions import RECORDS_VERSION, installed_versions


def refuse_changed_code(detail: EnsembleDetail) -> None:
    """InvalidInput naming every way this code differs from the one that recorded."""
    problems = []
    if detail.records_version != RECORDS_VERSION:
        problems.append(
            f"records_version: the ensemble was recorded by RECORDS_VERSION "
            f"{detail.records_version}, this code is {RECORDS_VERSION}; its records cannot "
            "be continued (run the job again as a new ensemble)"
        )
    installed = installed_versions()
    for name, version in sorted(detail.library_versions.items()):
        if installed.get(name) != version:
            problems.append(
                f"{name}: recorded with {version}, installed {installed.get(name)}; install "
                "the locked builds (requirements.lock) to continue these records"
            )
    if problems:
        raise InvalidInput(problems)


def recorded_spec(detail: EnsembleDetail, runs: list[RunRecord]) -> JobSpec:
    """The ensemble's spec, rebuilt from its records and checked against its spec_id;
    execution settings and the base directory come from its latest run."""
    execution: Mapping[str, Any] = runs[-1].execution if runs else {}
    base_dir = str(execution.get("base_dir") or ".")
    spec = parse_job(
        table_of_resolved(detail.spec),
        base_dir=base_dir,
        default_name=detail.name,
        seeds=tuple(detail.seeds),
    )
    spec = replace(
        spec,
        name=detail.name,
        execution=Execution(
            max_concurrent_trials=execution.get("max_concurrent_trials"),
            cpus_per_trial=float(execution.get("cpus_per_trial", 1.0)),
            max_failures=int(execution.get("max_failures", 3)),
            storage_path=execution.get("storage_path"),
            chunk_size=execution.get("chunk_size"),
            suggestion_processes=execution.get("suggestion_processes"),
        ),
    )
    if spec.spec_id != detail.spec_id:
        raise Failed(
            f"this code rebuilds ensemble {detail.id}'s spec with id {spec.spec_id}, not the "
            f"recorded {detail.spec_id}: a default changed without a RECORDS_VERSION bump"
        )
    return spec
