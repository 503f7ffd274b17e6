"""A retried write that differs in one compared column is a non-deterministic retry.

DESIGN.md, contract 5: every write is an upsert on a natural key; a retry with the same
payload is a no-op, one with a different payload raises NonDeterministicRetry and the
stored row stays as it was (never last-write-wins). Here every column of every table the
recorder writes (datasets, ensembles, ensemble_runs, training_jobs, trials, evaluations,
and sql/004's ensemble_datasets, walk_forward_windows, walk_forward_trials, robustness)
is tried on its own: one retried write that differs from the stored row only in that
column (or, where the record's own validation ties columns together, in that column and
what it implies), then a check that the whole stored row is unchanged.

Which columns are tried comes from two independent places, which must agree: the
schema (every column of the table, minus the key, the execution facts and what later
status writes set) and, for trials, the recorder's own DETERMINISTIC_COLUMNS.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from records_factory import FAST_RETRY, FINGERPRINT, MANIFEST, SPEC_ID, new_ensemble, ok_metrics

from cluster.records.evaluations import EvaluationRecord
from cluster.records.out_of_sample import FigureRecord, WindowRecord
from cluster.records.recorder import Recorder
from cluster.records.types import (
    DETERMINISTIC_COLUMNS,
    METRIC_COLUMNS,
    EnsembleRecord,
    NonDeterministicRetry,
    RunKind,
    RunRecord,
    TrainingJobRecord,
    TrialRecord,
    TrialStatus,
)

pytestmark = pytest.mark.postgres

OTHER_SPEC_ID = "e" * 64
# Columns a retried write does not carry: the natural key, serial ids, what status and
# best-trial updates set later, and the facts of one execution (contract 2).
NOT_IN_A_RETRY = {
    "datasets": {"fingerprint", "recorded_at"},
    "ensembles": {"id", "status", "created_at", "started_at", "finished_at"},
    "training_jobs": {
        "id",
        "ensemble_id",
        "seed",
        "status",
        "best_trial_index",
        "best_params",
        "best_score",
        "created_at",
        "started_at",
        "finished_at",
    },
    # Evaluations: the key; params_exact is the exact form of params, tried with it.
    "evaluations": {"ensemble_id", "kind", "label", "recorded_at", "params_exact"},
    # Runs: the key, and what finish_run sets later.
    "ensemble_runs": {"id", "started_at", "finished_at", "outcome"},
    # params_exact is the exact form of params, tried with it.
    "trials": {
        "training_job_id",
        "trial_index",
        "seed",
        "node",
        "attempts",
        "started_at",
        "finished_at",
        "duration_s",
        "recorded_at",
        "params_exact",
    },
}
# Trial columns that are not compared on a retry, and why: the natural key (a write that
# differs there is another trial), and spec_id, which the recorder checks against the
# job before anything is written (a ValueError, tested below).
TRIAL_KEY = ("seed", "trial_index")
TRIAL_CHECKED_FIRST = ("spec_id",)


@pytest.fixture(scope="module")
def database(pg_module_url: str) -> str:
    """One database for the module: every test makes its own ensemble in it."""
    return pg_module_url


@pytest.fixture(scope="module")
def recorder(database: str) -> Iterator[Recorder]:
    with Recorder(database, retry=FAST_RETRY) as recorder:
        recorder.migrate()
        yield recorder


def _row(url: str, table: str, where: str, key: tuple) -> tuple:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT * FROM {table} WHERE {where}", key).fetchone()
    assert row is not None, (table, key)
    return row


def _schema_columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s",
            [table],
        ).fetchall()
    return {name for (name,) in rows}


def _raises_and_keeps(
    url: str, table: str, where: str, key: tuple, write: Callable[[], None], column: str
) -> NonDeterministicRetry:
    before = _row(url, table, where, key)
    with pytest.raises(NonDeterministicRetry) as raised:
        write()
    assert raised.value.table == table
    assert column in raised.value.differences, raised.value.differences
    assert _row(url, table, where, key) == before
    return raised.value


# ---------------------------------------------------------------- datasets, ensembles


# case -> (column, the retried value): datasets' only compared column is the manifest.
DATASET_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "manifest": ("manifest", {**MANIFEST, "rows": 5001}),
    "manifest-int-vs-float": ("manifest", {**MANIFEST, "rows": 5000.0}),
}


@pytest.mark.parametrize("case", list(DATASET_VARIANTS))
def test_a_dataset_retry_that_differs_in_one_column_raises(recorder, database, case):
    column, manifest = DATASET_VARIANTS[case]
    recorder.upsert_dataset(FINGERPRINT, dict(MANIFEST))

    def write() -> None:
        recorder.upsert_dataset(FINGERPRINT, manifest)

    where = "fingerprint = %s"
    _raises_and_keeps(database, "datasets", where, (FINGERPRINT,), write, column)


SPEC = {"job": "demo", "fee": 0.001, "min_trades": 5}


def _ensemble(ensemble_id: uuid.UUID, **changes: Any) -> EnsembleRecord:
    values: dict[str, Any] = {
        "id": ensemble_id,
        "spec_id": SPEC_ID,
        "spec": SPEC,
        "seeds": [1, 2],
        "dataset_fingerprint": FINGERPRINT,
        "name": "demo",
        "records_version": 1,
        "library_versions": {"numpy": "2.4.0"},
        "host": {"cpu": "x86-64"},
    }
    return EnsembleRecord(**{**values, **changes})


OTHER_FINGERPRINT = "d" * 64
# case -> (column, the changed field of the retried record).
ENSEMBLE_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "name": ("name", {"name": "demo-2"}),
    "spec_id": ("spec_id", {"spec_id": OTHER_SPEC_ID}),
    "spec": ("spec", {"spec": {**SPEC, "fee": 0.002}}),
    "spec-one-ulp": ("spec", {"spec": {**SPEC, "fee": math.nextafter(0.001, 1.0)}}),
    "spec-int-vs-float": ("spec", {"spec": {**SPEC, "min_trades": 5.0}}),
    "seeds": ("seeds", {"seeds": [2, 1]}),  # the same seeds in another order
    "dataset_fingerprint": ("dataset_fingerprint", {"dataset_fingerprint": OTHER_FINGERPRINT}),
    "records_version": ("records_version", {"records_version": 2}),
    "library_versions": ("library_versions", {"library_versions": {"numpy": "2.4.1"}}),
    "host": ("host", {"host": {"cpu": "aarch64"}}),
}


@pytest.mark.parametrize("case", list(ENSEMBLE_VARIANTS))
def test_an_ensemble_retry_that_differs_in_one_column_raises(recorder, database, case):
    column, changes = ENSEMBLE_VARIANTS[case]
    recorder.upsert_dataset(FINGERPRINT, dict(MANIFEST))
    recorder.upsert_dataset(OTHER_FINGERPRINT, dict(MANIFEST))
    ensemble_id = uuid.uuid4()
    recorder.create_ensemble(_ensemble(ensemble_id))
    recorder.create_ensemble(_ensemble(ensemble_id))  # the same payload: a no-op

    def write() -> None:
        recorder.create_ensemble(_ensemble(ensemble_id, **changes))

    _raises_and_keeps(database, "ensembles", "id = %s", (ensemble_id,), write, column)


# ---------------------------------------------------------------- training jobs


JOB_VARIANTS: dict[str, dict[str, Any]] = {
    "searcher": {"searcher": "grid"},
    "searcher_options": {"searcher_options": {"points": 5, "values": {}}},
    "budget": {"budget": 11},
}
# (stored, retried) options of a grid job. Options compare exactly, like params: an int
# is not a float and every bit counts. (jsonb numbers cannot hold -0.0, so 0.0 and -0.0
# cannot be told apart in this column; see `cluster.records.sql.upsert`.)
JOB_OPTION_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "another-value": ({"points": 5}, {"points": 4}),
    "int-vs-float": ({"points": 5}, {"points": 5.0}),
    "float-vs-int": ({"points": 5.0}, {"points": 5}),
    "nested-int-vs-float": ({"values": {"x": [1, 2]}}, {"values": {"x": [1, 2.0]}}),
    "one-ulp": ({"values": {"x": [0.25]}}, {"values": {"x": [math.nextafter(0.25, 1.0)]}}),
    "list-order": ({"values": {"x": [1, 2]}}, {"values": {"x": [2, 1]}}),
    "another-key": ({"points": 5, "values": {}}, {"points": 5, "value": {}}),
    "one-more-key": ({"points": 5}, {"points": 5, "values": {}}),
}


def _job(seed: int, **changes: Any) -> TrainingJobRecord:
    values: dict[str, Any] = {"seed": seed, "spec_id": SPEC_ID, "searcher": "random",
                              "budget": 10, "searcher_options": {}}  # fmt: skip
    return TrainingJobRecord(**{**values, **changes})


def _job_where(ensemble_id: uuid.UUID, seed: int) -> tuple[str, tuple]:
    return "ensemble_id = %s AND seed = %s", (ensemble_id, seed)


@pytest.mark.parametrize("column", list(JOB_VARIANTS))
def test_a_job_retry_that_differs_in_one_column_raises(recorder, database, column):
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))  # jobs: random, budget 10, {}

    def write() -> None:
        recorder.upsert_training_jobs(ensemble_id, [_job(2, **JOB_VARIANTS[column])])

    where, key = _job_where(ensemble_id, 2)
    error = _raises_and_keeps(database, "training_jobs", where, key, write, column)
    assert error.key == {"ensemble_id": ensemble_id, "seed": 2}
    assert set(error.differences) == {column}


def _ensemble_with_jobs(recorder: Recorder, jobs: list[TrainingJobRecord]) -> uuid.UUID:
    recorder.upsert_dataset(FINGERPRINT, dict(MANIFEST))
    ensemble_id = uuid.uuid4()
    recorder.create_ensemble(_ensemble(ensemble_id, seeds=[job.seed for job in jobs]))
    recorder.upsert_training_jobs(ensemble_id, jobs)
    return ensemble_id


@pytest.mark.parametrize("variant", list(JOB_OPTION_VARIANTS))
def test_searcher_options_compare_exactly(recorder, database, variant):
    stored, retried = JOB_OPTION_VARIANTS[variant]
    first = _job(1, searcher="grid", searcher_options=stored)
    ensemble_id = _ensemble_with_jobs(recorder, [first])
    recorder.upsert_training_jobs(ensemble_id, [first])  # the same payload: a no-op

    def write() -> None:
        retry = _job(1, searcher="grid", searcher_options=retried)
        recorder.upsert_training_jobs(ensemble_id, [retry])

    where, key = _job_where(ensemble_id, 1)
    _raises_and_keeps(database, "training_jobs", where, key, write, "searcher_options")


def test_a_job_with_another_spec_id_is_refused_before_writing(recorder, database):
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    where, key = _job_where(ensemble_id, 1)
    before = _row(database, "training_jobs", where, key)
    with pytest.raises(ValueError, match=f"has spec_id {OTHER_SPEC_ID}, but ensemble"):
        recorder.upsert_training_jobs(ensemble_id, [_job(1, spec_id=OTHER_SPEC_ID)])
    assert _row(database, "training_jobs", where, key) == before


# ---------------------------------------------------------------- trials


PARAMS = {"key_level_lookback": 51, "pierce_depth": 0.25}
# Every metric defined and different from every other, so that a change shows in one.
METRICS = {**ok_metrics(score=1.25, sharpe=1.5), "total_return": 0.375}
MESSAGE = "ValueError: equity reached -0.5 (<= 0) at bar 7 (timestamp 2100000)"


def _ok(**changes: Any) -> TrialRecord:
    metrics = {**METRICS, **changes.pop("metrics", {})}
    return TrialRecord.ok(SPEC_ID, 1, 0, changes.pop("params", PARAMS), metrics, **changes)


def _invalid(message: str = MESSAGE) -> TrialRecord:
    return TrialRecord.invalid(SPEC_ID, 1, 0, PARAMS, message)


def _one_ulp_more(x: float) -> float:
    return math.nextafter(x, math.inf)


def _metric_variant(name: str) -> Callable[[], tuple[TrialRecord, TrialRecord]]:
    value = METRICS[name]
    changed = value + 1 if name == "n_trades" else _one_ulp_more(value)
    return lambda: (_ok(), _ok(metrics={name: changed}))


# column -> (stored record, retried record): the two differ in that column.
TRIAL_VARIANTS: dict[str, Callable[[], tuple[TrialRecord, TrialRecord]]] = {
    "params": lambda: (_ok(), _ok(params={**PARAMS, "pierce_depth": _one_ulp_more(0.25)})),
    # An invalid trial has a message, no metrics and the penalty score, so a change of
    # status changes those too: the error must still name the status.
    "status": lambda: (_ok(), _invalid()),
    "score": lambda: (_ok(), _ok(metrics={"score": _one_ulp_more(1.25)})),
    **{name: _metric_variant(name) for name in METRIC_COLUMNS},
    "message": lambda: (_invalid(), _invalid(MESSAGE.replace("bar 7", "bar 8"))),
}
# Beyond one ulp: 0.0 and -0.0 are different bits, so a different record.
SIGN_VARIANTS = {
    "score": lambda: (_ok(metrics={"score": 0.0}), _ok(metrics={"score": -0.0})),
    "sortino": lambda: (_ok(metrics={"sortino": -0.0}), _ok(metrics={"sortino": 0.0})),
}
# A metric that was undefined (NULL) and is now defined, and back.
NULL_VARIANTS = {
    f"{name}-{way}": (name, way)
    for name in METRIC_COLUMNS
    if name != "n_trades"  # an ok trial always has n_trades
    for way in ("null-then-value", "value-then-null")
}


def _trial_where(ensemble_id: uuid.UUID) -> tuple[str, tuple]:
    return (
        "training_job_id = (SELECT id FROM training_jobs WHERE ensemble_id = %s AND seed = 1) "
        "AND trial_index = 0",
        (ensemble_id,),
    )


def test_the_compared_trial_columns_are_the_deterministic_columns_and_the_schemas(
    recorder, database
):
    compared = set(DETERMINISTIC_COLUMNS) - set(TRIAL_KEY) - set(TRIAL_CHECKED_FIRST)
    assert set(TRIAL_VARIANTS) == compared
    assert len(DETERMINISTIC_COLUMNS) == len(set(DETERMINISTIC_COLUMNS))
    schema = _schema_columns(database, "trials") - NOT_IN_A_RETRY["trials"]
    assert schema == set(DETERMINISTIC_COLUMNS) - set(TRIAL_KEY)


@pytest.mark.parametrize("column", list(TRIAL_VARIANTS))
def test_a_trial_retry_that_differs_in_one_column_raises(recorder, database, column):
    stored, retried = TRIAL_VARIANTS[column]()
    assert stored.deterministic()[column] != retried.deterministic()[column]
    if column not in ("status",):
        same = {k for k in DETERMINISTIC_COLUMNS if k != column}
        assert {k: stored.deterministic()[k] for k in same} == {
            k: retried.deterministic()[k] for k in same
        }
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))
    recorder.record_trial(ensemble_id, stored)
    recorder.record_trial(ensemble_id, stored)  # the same payload: a no-op
    where, key = _trial_where(ensemble_id)
    error = _raises_and_keeps(
        database, "trials", where, key, lambda: recorder.record_trial(ensemble_id, retried), column
    )
    assert error.key == {"ensemble": ensemble_id, "seed": 1, "trial_index": 0}
    if column != "status":
        assert set(error.differences) == {column}
    # In a batch, too: nothing of the batch is written.
    batch = [retried, TrialRecord.ok(SPEC_ID, 1, 1, PARAMS, METRICS)]
    with pytest.raises(NonDeterministicRetry):
        recorder.record_trials(ensemble_id, batch)
    assert [t.trial_index for t in recorder.recorded_trials(ensemble_id, 1)] == [0]


@pytest.mark.parametrize("column", list(SIGN_VARIANTS))
def test_zero_and_minus_zero_are_different_values(recorder, database, column):
    stored, retried = SIGN_VARIANTS[column]()
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.record_trial(ensemble_id, stored)
    recorder.record_trial(ensemble_id, stored)  # the same bits: a no-op
    where, key = _trial_where(ensemble_id)
    write = lambda: recorder.record_trial(ensemble_id, retried)  # noqa: E731
    _raises_and_keeps(database, "trials", where, key, write, column)


@pytest.mark.parametrize("variant", list(NULL_VARIANTS))
def test_an_undefined_metric_is_not_a_defined_one(recorder, database, variant):
    name, way = NULL_VARIANTS[variant]
    undefined, defined = _ok(metrics={name: None}), _ok()
    stored, retried = (undefined, defined) if way == "null-then-value" else (defined, undefined)
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.record_trial(ensemble_id, stored)
    where, key = _trial_where(ensemble_id)
    write = lambda: recorder.record_trial(ensemble_id, retried)  # noqa: E731
    _raises_and_keeps(database, "trials", where, key, write, name)


def test_a_trial_with_another_spec_id_is_refused_before_writing(recorder, database):
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.record_trial(ensemble_id, _ok())
    where, key = _trial_where(ensemble_id)
    before = _row(database, "trials", where, key)
    other = TrialRecord.ok(OTHER_SPEC_ID, 1, 0, PARAMS, METRICS)
    with pytest.raises(ValueError, match=f"has spec_id {OTHER_SPEC_ID}, but its job has"):
        recorder.record_trial(ensemble_id, other)
    assert _row(database, "trials", where, key) == before


@pytest.mark.parametrize("column", TRIAL_KEY)
def test_a_trial_that_differs_in_its_key_is_another_trial(recorder, database, column):
    ensemble_id = new_ensemble(recorder, seeds=(1, 2))
    recorder.record_trial(ensemble_id, _ok())
    where, key = _trial_where(ensemble_id)
    before = _row(database, "trials", where, key)
    seed, index = (2, 0) if column == "seed" else (1, 1)
    recorder.record_trial(ensemble_id, TrialRecord.ok(SPEC_ID, seed, index, PARAMS, METRICS))
    assert _row(database, "trials", where, key) == before
    assert [t.trial_index for t in recorder.recorded_trials(ensemble_id, seed)] == (
        [0] if column == "seed" else [0, 1]
    )


# ---------------------------------------------------------------- ensemble runs


def _run_record(
    ensemble_id: uuid.UUID, run_id: uuid.UUID, changes: dict[str, Any] | None = None
) -> RunRecord:
    values: dict[str, Any] = {
        "id": run_id,
        "ensemble_id": ensemble_id,
        "kind": RunKind.RUN,
        "execution": {"concurrency": 2},
        "platform": {"architecture": "x86_64"},
        "manifest": dict(MANIFEST),
        "platform_change_allowed": False,
        "host": {"cpu": "x86-64"},
    }
    return RunRecord(**{**values, **(changes or {})})


# column -> the changed field of the retried start of the same run (a retried start
# must repeat what the first one recorded, like every upsert).
RUN_VARIANTS: dict[str, Callable[[uuid.UUID], dict[str, Any]]] = {
    "ensemble_id": lambda other: {"ensemble_id": other},
    "kind": lambda _: {"kind": RunKind.RESUME},
    "execution": lambda _: {"execution": {"concurrency": 3}},
    "platform": lambda _: {"platform": {"architecture": "aarch64"}},
    "platform_change_allowed": lambda _: {"platform_change_allowed": True},
    "manifest": lambda _: {"manifest": {**MANIFEST, "rows": 5001}},
    "host": lambda _: {"host": {"cpu": "aarch64"}},
}


@pytest.mark.parametrize("column", list(RUN_VARIANTS))
def test_a_run_start_retry_that_differs_in_one_column_raises(recorder, database, column):
    ensemble_id, other = new_ensemble(recorder, seeds=(1,)), new_ensemble(recorder, seeds=(1,))
    run_id = uuid.uuid4()
    recorder.start_run(_run_record(ensemble_id, run_id))
    recorder.start_run(_run_record(ensemble_id, run_id))  # the same payload: a no-op

    def write() -> None:
        recorder.start_run(_run_record(ensemble_id, run_id, RUN_VARIANTS[column](other)))

    error = _raises_and_keeps(database, "ensemble_runs", "id = %s", (run_id,), write, column)
    assert set(error.differences) == {column}


# ---------------------------------------------------------------- evaluations


BASIS = {"seeds": [1, 2], "trial_indices": [3, 7]}


def _evaluation(ensemble_id: uuid.UUID, **changes: Any) -> EvaluationRecord:
    values: dict[str, Any] = {
        "ensemble_id": ensemble_id,
        "kind": "consensus",
        "label": "median",
        "params": PARAMS,
        "dataset_fingerprint": FINGERPRINT,
        "status": TrialStatus.OK,
        "score": METRICS["score"],
        "metrics": {k: v for k, v in METRICS.items() if k != "score"},
        "message": None,
        "basis": BASIS,
    }
    return EvaluationRecord(**{**values, **changes})


INVALID_SCORE = -100.0


def _invalid_evaluation(message: str = MESSAGE) -> dict[str, Any]:
    return {"status": TrialStatus.INVALID, "score": INVALID_SCORE,
            "metrics": dict.fromkeys(METRIC_COLUMNS), "message": message}  # fmt: skip


def _evaluation_metric(name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    value = METRICS[name]
    changed = value + 1 if name == "n_trades" else _one_ulp_more(value)
    metrics = {k: v for k, v in METRICS.items() if k != "score"}
    return (name, {}, {"metrics": {**metrics, name: changed}})


# case -> (column, stored changes, retried changes): the records differ in that column
# (a change of status changes score, metrics and message with it, as for trials).
EVALUATION_VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "params": ("params", {}, {"params": {**PARAMS, "pierce_depth": _one_ulp_more(0.25)}}),
    "basis": ("basis", {}, {"basis": {**BASIS, "trial_indices": [3, 8]}}),
    "dataset_fingerprint": ("dataset_fingerprint", {}, {"dataset_fingerprint": "d" * 64}),
    "status": ("status", {}, _invalid_evaluation()),
    "score": ("score", {}, {"score": _one_ulp_more(METRICS["score"])}),
    "score-sign": ("score", {"score": 0.0}, {"score": -0.0}),
    **{name: _evaluation_metric(name) for name in METRIC_COLUMNS},
    "message": (
        "message",
        _invalid_evaluation(),
        _invalid_evaluation(MESSAGE.replace("bar 7", "bar 8")),
    ),
}


@pytest.mark.parametrize("case", list(EVALUATION_VARIANTS))
def test_an_evaluation_retry_that_differs_in_one_column_raises(recorder, database, case):
    column, stored, retried = EVALUATION_VARIANTS[case]
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.upsert_dataset("d" * 64, dict(MANIFEST))
    first = _evaluation(ensemble_id, **stored)
    assert recorder.record_evaluation(first) is True
    assert recorder.record_evaluation(first) is False  # the same payload: a no-op

    def write() -> None:
        recorder.record_evaluation(_evaluation(ensemble_id, **{**stored, **retried}))

    where = "ensemble_id = %s AND kind = %s AND label = %s"
    key = (ensemble_id, "consensus", "median")
    error = _raises_and_keeps(database, "evaluations", where, key, write, column)
    expected = {column, "params_exact"} if column == "params" else {column}
    if column != "status":
        assert set(error.differences) == expected


# ---------------------------------------------------------------- every table


@pytest.mark.parametrize(
    ("table", "tried"),
    [
        ("datasets", {column for column, _ in DATASET_VARIANTS.values()}),
        ("ensembles", {column for column, _ in ENSEMBLE_VARIANTS.values()}),
        ("training_jobs", {**JOB_VARIANTS, "spec_id": None}),
        ("evaluations", {column for column, *_ in EVALUATION_VARIANTS.values()}),
        ("ensemble_runs", set(RUN_VARIANTS)),
    ],
)
def test_every_column_a_write_carries_is_tried(recorder, database, table, tried):
    # A column added by a migration must be classified here: tried, or not in a retry.
    assert _schema_columns(database, table) - NOT_IN_A_RETRY[table] == set(tried)


# ---------------------------------------------------------------- sql/004's tables

HOLDOUT_FINGERPRINT = "c" * 64


def test_an_ensemble_dataset_retry_with_another_dataset_raises(recorder, database):
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    for fingerprint in (HOLDOUT_FINGERPRINT, OTHER_FINGERPRINT):
        recorder.upsert_dataset(fingerprint, dict(MANIFEST))
    assert recorder.record_ensemble_dataset(ensemble_id, "holdout", HOLDOUT_FINGERPRINT)
    assert not recorder.record_ensemble_dataset(ensemble_id, "holdout", HOLDOUT_FINGERPRINT)

    def write() -> None:
        recorder.record_ensemble_dataset(ensemble_id, "holdout", OTHER_FINGERPRINT)

    where, key = "ensemble_id = %s AND role = %s", (ensemble_id, "holdout")
    error = _raises_and_keeps(database, "ensemble_datasets", where, key, write,
                              "dataset_fingerprint")  # fmt: skip
    assert set(error.differences) == {"dataset_fingerprint"}


WINDOW = {
    "seed": 1, "window_index": 0, "search_seed": 1 + 2**32, "train_start": 100,
    "train_stop": 400, "test_start": 450, "test_stop": 500, "train_from": 1_000,
    "test_from": 2_000, "test_until": 3_000, "budget": 10,
}  # fmt: skip
# Each compared column one more than stored (the rows and times stay ordered).
WINDOW_VARIANTS = [name for name in WINDOW if name not in ("seed", "window_index")]


@pytest.mark.parametrize("column", WINDOW_VARIANTS)
def test_a_window_retry_that_differs_in_one_column_raises(recorder, database, column):
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.upsert_windows(ensemble_id, [WindowRecord(**WINDOW)])
    recorder.upsert_windows(ensemble_id, [WindowRecord(**WINDOW)])  # the same: a no-op

    def write() -> None:
        changed = {**WINDOW, column: WINDOW[column] + 1}
        recorder.upsert_windows(ensemble_id, [WindowRecord(**changed)])

    where = "ensemble_id = %s AND seed = 1 AND window_index = 0"
    error = _raises_and_keeps(database, "walk_forward_windows", where, (ensemble_id,), write,
                              column)  # fmt: skip
    assert set(error.differences) == {column}


@pytest.mark.parametrize("column", list(TRIAL_VARIANTS))
def test_a_window_trial_retry_that_differs_in_one_column_raises(recorder, database, column):
    stored, retried = TRIAL_VARIANTS[column]()
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    recorder.upsert_windows(ensemble_id, [WindowRecord(**WINDOW)])
    recorder.record_window_trials(ensemble_id, [(0, stored)])
    recorder.record_window_trials(ensemble_id, [(0, stored)])  # the same payload: a no-op

    def write() -> None:
        recorder.record_window_trials(ensemble_id, [(0, retried)])

    where = "ensemble_id = %s AND seed = 1 AND window_index = 0 AND trial_index = 0"
    error = _raises_and_keeps(database, "walk_forward_trials", where, (ensemble_id,), write,
                              column)  # fmt: skip
    if column != "status":
        assert set(error.differences) == {column}


FIGURE_RESULT = {"sharpe": 0.25, "n": 3}
# case -> (column, the retried settings and result): a result one bit apart differs in
# its exact text (result_exact); other numbers differ in the jsonb result too.
FIGURE_VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "settings": ("settings", {"blocks": 15}, FIGURE_RESULT),
    "result": ("result", {"blocks": 16}, {**FIGURE_RESULT, "n": 4}),
    "result-one-ulp": (
        "result_exact",
        {"blocks": 16},
        {**FIGURE_RESULT, "sharpe": _one_ulp_more(0.25)},
    ),
}


@pytest.mark.parametrize("case", list(FIGURE_VARIANTS))
def test_a_figure_retry_that_differs_in_one_column_raises(recorder, database, case):
    column, settings, result = FIGURE_VARIANTS[case]
    ensemble_id = new_ensemble(recorder, seeds=(1,))
    first = FigureRecord(ensemble_id, "walk_forward", "seed 1", FIGURE_RESULT, {"blocks": 16})
    assert recorder.record_figure(first) is True
    assert recorder.record_figure(first) is False  # the same payload: a no-op

    def write() -> None:
        recorder.record_figure(FigureRecord(ensemble_id, "walk_forward", "seed 1", result,
                                            settings))  # fmt: skip

    where = "ensemble_id = %s AND analysis = 'walk_forward' AND label = 'seed 1'"
    _raises_and_keeps(database, "robustness", where, (ensemble_id,), write, column)


# sql/004's columns a retried write does not carry: the keys, what status writes set
# later, the facts of one execution, and exact forms tried with their value.
NOT_IN_A_RETRY |= {
    "ensemble_datasets": {"ensemble_id", "role", "recorded_at"},
    "walk_forward_windows": {
        "ensemble_id",
        "seed",
        "window_index",
        "status",
        "created_at",
        "finished_at",
    },
    "walk_forward_trials": {"ensemble_id", "seed", "window_index", *NOT_IN_A_RETRY["trials"]}
    - {"training_job_id"},
    "robustness": {"ensemble_id", "analysis", "label", "recorded_at"},
}
NOT_YET_TRIED: set[str] = set()


@pytest.mark.parametrize(
    ("table", "tried"),
    [
        ("ensemble_datasets", {"dataset_fingerprint"}),
        ("walk_forward_windows", set(WINDOW_VARIANTS)),
        ("walk_forward_trials", set(TRIAL_VARIANTS)),
        ("robustness", {column for column, *_ in FIGURE_VARIANTS.values()}),
    ],
)
def test_every_column_of_sql_004_a_write_carries_is_tried(recorder, database, table, tried):
    assert _schema_columns(database, table) - NOT_IN_A_RETRY[table] == set(tried)


def test_every_table_is_tried_or_listed_as_not_yet_tried(recorder, database):
    # A new table fails this test until its columns are tried above (or listed).
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ).fetchall()
    tables = {name for (name,) in rows} - {"schema_migrations"}
    assert tables == set(NOT_IN_A_RETRY) | NOT_YET_TRIED
