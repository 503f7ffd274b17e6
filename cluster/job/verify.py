"""`verify_ensembles`: are two ensembles' records the same, bit for bit?

Two ensembles are compared on what contract 2 promises: their canonical exports
(`cluster.records.export`), joined on (seed, trial_index), over the seeds they share;
then their walk-forward windows and window trials, and the holdout and walk-forward
records made after the search (cluster.job.verify_out_of_sample).
Before that, their data fingerprints and spec_ids: records of different data or of
different specs are not expected to agree, so comparing them is refused unless forced.
The first difference is printed (seed, trial_index, column, both values); the verdict
is the return value (the command exits 0 when identical, 1 when not).

`rerun_and_verify` runs an ensemble's recorded spec again, over the same seeds, into a
new ensemble (refusing first if the candles changed) and compares the two.
"""

from __future__ import annotations

import sys
import uuid
from typing import IO, Any

from cluster.errors import InvalidInput
from cluster.job.verify_out_of_sample import compare_out_of_sample
from cluster.records.database import database
from cluster.records.export import COLUMNS, Export, build_export
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleDetail, EnsembleStatus


def verify_ensembles(
    first: str | uuid.UUID,
    second: str | uuid.UUID,
    *,
    force: bool = False,
    database_url: str | None = None,
    out: IO[str] | None = None,
) -> bool:
    """True when the two ensembles' records agree bit for bit on their shared seeds."""
    out = out or sys.stdout
    with database(database_url) as conninfo, Recorder(conninfo) as recorder:
        recorder.migrate()
        return compare(recorder, first, second, force=force, out=out)


def compare(
    recorder: Recorder,
    first: str | uuid.UUID,
    second: str | uuid.UUID,
    *,
    force: bool,
    out: IO[str],
) -> bool:
    a = recorder.ensemble_detail(recorder.find_ensemble(str(first)))
    b = recorder.ensemble_detail(recorder.find_ensemble(str(second)))
    _check_comparable(a, b, force)
    seeds = [seed for seed in a.seeds if seed in b.seeds]
    only = sorted(set(a.seeds) ^ set(b.seeds))
    if not seeds:
        raise InvalidInput(f"ensembles {a.id} and {b.id} have no seed in common")
    export_a = build_export(recorder.ensemble_trials(a.id, seeds))
    export_b = build_export(recorder.ensemble_trials(b.id, seeds))
    print(f"A {a.id} ({a.status}), B {b.id} ({b.status})", file=out)
    print(
        f"data {a.dataset_fingerprint[:12]}"
        + (
            ""
            if a.dataset_fingerprint == b.dataset_fingerprint
            else f" vs {b.dataset_fingerprint[:12]}"
        )
        + f", spec {a.spec_id[:12]}"
        + ("" if a.spec_id == b.spec_id else f" vs {b.spec_id[:12]}")
        + f", {len(seeds)} seed(s) compared"
        + (f" (seeds in only one of them, not compared: {only})" if only else ""),
        file=out,
    )
    if export_a.digest != export_b.digest:
        print(
            f"DIFFERENT: digests {export_a.digest[:16]} (A) and {export_b.digest[:16]} (B)",
            file=out,
        )
        print(first_difference(export_a, export_b), file=out)
        return False
    others = compare_out_of_sample(recorder, a.id, b.id, seeds, set(a.seeds) == set(b.seeds))
    if others.difference is not None:
        print(f"DIFFERENT: the trials agree (digest {export_a.digest}), but", file=out)
        print(others.difference, file=out)
        return False
    unfinished = [e.id for e in (a, b) if e.status != EnsembleStatus.COMPLETE]
    note = f"; not complete yet: {', '.join(map(str, unfinished))}" if unfinished else ""
    more = f" and {others.compared} out-of-sample record(s)" if others.compared else ""
    print(
        f"identical: {len(export_a.rows)} trial records{more}, digest {export_a.digest}{note}",
        file=out,
    )
    for line in others.notes:
        print(f"  note: {line}", file=out)
    return True


def _pair(a: str, b: str) -> str:
    return a[:12] if a == b else f"{a[:12]} (A) vs {b[:12]} (B)"


def first_difference(a: Export, b: Export) -> str:
    """The first (seed, trial_index) whose records differ, and how, as text."""
    rows_a = {_key(row): row for row in a.rows}
    rows_b = {_key(row): row for row in b.rows}
    keys = sorted(set(rows_a) | set(rows_b))
    missing_a = sum(1 for k in keys if k not in rows_a)
    missing_b = sum(1 for k in keys if k not in rows_b)
    counts = f"A has {len(rows_a)} trials, B {len(rows_b)}"
    for key in keys:
        row_a, row_b = rows_a.get(key), rows_b.get(key)
        where = f"seed {key[0]} trial {key[1]}"
        if row_a is None or row_b is None:
            side = "A" if row_a is None else "B"
            return (
                f"first difference at {where}: not recorded in {side} ({counts}; "
                f"{missing_a} missing in A, {missing_b} in B)"
            )
        for column, value_a, value_b in zip(COLUMNS, row_a, row_b, strict=True):
            if value_a != value_b:
                return (
                    f"first difference at {where}, column {column}: A {_shown(value_a)}, "
                    f"B {_shown(value_b)} ({counts})"
                )
    return f"no row differs, yet the digests do ({counts})"


def _key(row: tuple[Any, ...]) -> tuple[int, int]:
    return int(row[COLUMNS.index("seed")]), int(row[COLUMNS.index("trial_index")])


def _shown(value: str | None) -> str:
    if value is None:
        return "NULL"
    if value.startswith(("0x", "-0x")):
        return f"{float.fromhex(value)!r} ({value})"
    return value


def _check_comparable(a: EnsembleDetail, b: EnsembleDetail, force: bool) -> None:
    problems = []
    if a.dataset_fingerprint != b.dataset_fingerprint:
        problems.append(
            f"the ensembles saw different candles: A {a.dataset_fingerprint}, "
            f"B {b.dataset_fingerprint}"
        )
    if a.spec_id != b.spec_id:
        problems.append(f"the ensembles ran different specs: A {a.spec_id}, B {b.spec_id}")
    if problems and not force:
        raise InvalidInput(
            [*problems, "their records are not expected to agree; --force compares them anyway"]
        )


def rerun_and_verify(
    ensemble: str | uuid.UUID, *, allow_platform_change: bool = False, **options: Any
) -> bool:
    """Run `ensemble`'s recorded spec again (same seeds) as a new ensemble, then compare.

    `options` are `cluster.job.driver.RunOptions` fields. Refuses (exit 2) when the
    candles are no longer the recorded ones (both fingerprints named), and for a
    Bayesian ensemble on another numeric platform unless `allow_platform_change`.
    """
    from cluster.job.driver import RunOptions, run_job
    from cluster.job.resume import recorded_spec

    settings = RunOptions(**options)
    out = settings.out or sys.stdout
    with (
        database(settings.database_url) as conninfo,
        Recorder(conninfo, retry=settings.records_retry) as recorder,
    ):
        recorder.migrate()
        original = recorder.ensemble_detail(recorder.find_ensemble(str(ensemble)))
        runs = recorder.runs(original.id)
        spec = recorded_spec(original, runs)
    print(f"running ensemble {original.id}'s spec again, seeds {list(original.seeds)}", file=out)
    rerun = run_job(
        spec,
        expect_fingerprint=original.dataset_fingerprint,
        expected_platform=runs[0].platform if runs else None,
        allow_platform_change=allow_platform_change,
        **options,
    )
    return verify_ensembles(original.id, rerun, database_url=settings.database_url, out=out)
