"""An ensemble's trials as a pandas DataFrame: one row per trial, exact values.

    from cluster.report import trials_frame
    trials = trials_frame("2650e7b1")          # an ensemble id or its first characters
    trials.groupby(level="seed")["score"].max()

Index: (seed, trial_index), sorted. Columns, in this order:
- one per strategy parameter, in the job's space order: int64 for an int parameter,
  float64 for a float one;
- `status` ("ok" or "invalid"), `score` (float64, never missing);
- every other metric, float64, with NaN where the metric is undefined (records never
  hold NaN: NaN here means NULL there), and `n_trades` as nullable Int64 (<NA> for an
  invalid trial);
- `message` (the reason of an invalid trial; None for an ok one).

Values are the records' own, bit for bit: a float is the recorded float64, an int the
recorded int, exactly as the canonical export (`python -m cluster export`) writes them.
Only the deterministic part of a record is here (no node, attempts or times).
`frame.attrs` holds the ensemble id and spec_id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cluster.records.recorder import Recorder
from cluster.records.types import METRIC_COLUMNS, TrialRecord
from search.space import Space

INDEX = ("seed", "trial_index")
OUTCOME_COLUMNS = ("status", "score", *METRIC_COLUMNS, "message")


def trials_frame(
    ensemble: str | uuid.UUID | None = None, database_url: str | None = None
) -> pd.DataFrame:
    """The trials of `ensemble` (its id or a unique prefix; the latest ensemble when
    None) from the records at `database_url` ($DATABASE_URL, else the embedded server).

    Raises NotRecorded when no ensemble matches.
    """
    from cluster.records.database import database

    with database(database_url) as conninfo, Recorder(conninfo) as recorder:
        recorder.migrate()
        if ensemble is None:
            ensemble_id = recorder.latest_ensemble()
        else:
            ensemble_id = recorder.find_ensemble(str(ensemble))
        return recorded_frame(recorder, ensemble_id)


def recorded_frame(recorder: Recorder, ensemble_id: uuid.UUID) -> pd.DataFrame:
    """`trials_frame` on an open recorder."""
    detail = recorder.ensemble_detail(ensemble_id)
    parameters = list(recorded_space(detail.spec))
    frame = frame_of_trials(recorder.ensemble_trials(ensemble_id), parameters)
    frame.attrs.update(ensemble_id=str(ensemble_id), spec_id=detail.spec_id)
    return frame


def recorded_space(spec: Mapping[str, Any]) -> Space:
    """The search space of a recorded (resolved) spec, in the strategy's declaration
    order when the strategy is known here (a jsonb object keeps no key order)."""
    from trainable.strategies import get_strategy

    ranges = spec["strategy"]["space"]
    try:
        declared = [p.name for p in get_strategy(spec["strategy"]["name"]).parameters]
    except KeyError:
        declared = []
    names = [n for n in declared if n in ranges] + [n for n in ranges if n not in declared]
    return Space.from_dict({name: ranges[name] for name in names})


def frame_of_trials(
    trials: Sequence[TrialRecord], parameters: Sequence[str] | None = None
) -> pd.DataFrame:
    """The DataFrame of `trials` (see the module docstring), rows sorted by the index.

    `parameters` orders the parameter columns (default: sorted names). Every trial must
    have exactly these parameters; a parameter's values must be all ints or all floats.
    """
    ordered = sorted(trials, key=lambda t: (t.seed, t.trial_index))
    names = list(parameters) if parameters is not None else sorted(_names(ordered))
    clash = sorted(set(names) & {*INDEX, *OUTCOME_COLUMNS})
    if clash:
        raise ValueError(f"parameter names {clash} clash with the frame's own columns")
    for trial in ordered:
        if set(trial.params) != set(names):
            raise ValueError(
                f"trial {trial.trial_index} of seed {trial.seed} has parameters "
                f"{sorted(trial.params)}, expected {sorted(names)}"
            )
    columns: dict[str, object] = {name: _parameter(name, ordered) for name in names}
    columns["status"] = pd.array([t.status.value for t in ordered], dtype="str")
    columns["score"] = np.array([t.score for t in ordered], dtype=np.float64)
    for metric in METRIC_COLUMNS:
        values = [t.metrics[metric] for t in ordered]
        if metric == "n_trades":
            columns[metric] = pd.array(values, dtype="Int64")
        else:
            columns[metric] = _floats(values)
    columns["message"] = np.array([t.message for t in ordered], dtype=object)
    index = pd.MultiIndex.from_arrays(
        [
            np.array([t.seed for t in ordered], dtype=np.int64),
            np.array([t.trial_index for t in ordered], dtype=np.int64),
        ],
        names=list(INDEX),
    )
    return pd.DataFrame(columns, index=index)


def _names(trials: Sequence[TrialRecord]) -> set[str]:
    return set(trials[0].params) if trials else set()


def _parameter(name: str, trials: Sequence[TrialRecord]) -> np.ndarray:
    values = [t.params[name] for t in trials]
    kinds = {type(v) for v in values}
    if kinds <= {int}:
        return np.array(values, dtype=np.int64)
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    raise ValueError(f"parameter {name} mixes ints and floats across trials")


def _floats(values: Sequence[int | float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
