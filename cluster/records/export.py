"""The canonical export: the deterministic part of trial records, and its sha256.

Every determinism check compares these digests: two runs of the same spec and seeds
are identical exactly when their digests are (DESIGN.md, contract 2).

Columns (the deterministic part, nothing else: no ensemble id, node, attempt or time):
    spec_id, seed, trial_index, params, status, score, <the metrics of
    trainable.declaration.METRICS but score, in declaration order>, message

Digest byte layout, version 1 (sha256 of these UTF-8 bytes, lower-case hex):
    line 1: `reprotune-export 1`
    line 2: the column names, separated by TAB
    then one line per trial, sorted by (seed, trial_index) as integers, fields
    separated by TAB; every line ends with LF. A field is:
      - NULL (undefined metric, the message of an ok trial): `\\N`
      - an integer (seed, trial_index, n_trades): decimal, `-` for negatives
      - a float: `float.hex()` (`0x1.8000000000000p+0`, `-0x0.0p+0`): every bit
      - params: canonical JSON, keys sorted, no spaces, ints as numbers, floats as
        strings of float.hex (cluster.records.exact.canonical_params)
      - text (spec_id, status, message): as is, with `\\` -> `\\\\`, TAB -> `\\t`,
        LF -> `\\n`, CR -> `\\r`
The rows are sorted here, so the digest does not depend on the order in which trials
were recorded or read.

Files: CSV is for people and tools (spreadsheets, pandas): the same header, floats as
the shortest decimal that reads back to the same bits (Python's `repr`: `0.1`,
`5e-324`, `-0.0`), params as JSON with numbers (`{"k":3,"x":0.25}`, keys sorted), NULL
as an empty field; not the digest's hex form. Parquet keeps typed columns (floats as
float64, bit-exact), params as the canonical JSON text, and the digest in the file's
metadata (`reprotune.sha256`).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cluster.records.exact import canonical_params, float_hex
from cluster.records.types import DETERMINISTIC_COLUMNS, METRIC_COLUMNS, TrialRecord

EXPORT_VERSION = 1
COLUMNS = DETERMINISTIC_COLUMNS
NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class Export:
    """The export's rows, sorted, with every field as text (None for NULL)."""

    rows: tuple[tuple[str | None, ...], ...]
    trials: tuple[TrialRecord, ...]

    def layout_bytes(self) -> bytes:
        """The bytes the digest is computed over (see the module docstring)."""
        lines = [f"reprotune-export {EXPORT_VERSION}", "\t".join(COLUMNS)]
        for row in self.rows:
            lines.append("\t".join(NULL if f is None else f.translate(_ESCAPES) for f in row))
        return ("\n".join(lines) + "\n").encode("utf-8")

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.layout_bytes()).hexdigest()


def build_export(trials: Iterable[TrialRecord]) -> Export:
    """Sort trials by (seed, trial_index) and render each deterministic field as text.

    Two trials with the same (seed, trial_index) are an error: an export covers one
    ensemble (or chosen jobs of it), where that pair is a trial's key.
    """
    ordered = sorted(trials, key=lambda t: (t.seed, t.trial_index))
    for before, after in itertools.pairwise(ordered):
        if (before.seed, before.trial_index) == (after.seed, after.trial_index):
            raise ValueError(f"two trials with seed {after.seed}, trial_index {after.trial_index}")
    return Export(tuple(_text_row(t) for t in ordered), tuple(ordered))


def _text_row(trial: TrialRecord) -> tuple[str | None, ...]:
    values = trial.deterministic()
    row: list[str | None] = []
    for column in COLUMNS:
        value = values[column]
        if column == "params":
            row.append(canonical_params(trial.params))
        elif value is None:
            row.append(None)
        elif isinstance(value, float):
            row.append(float_hex(value))
        else:
            row.append(str(value))
    return tuple(row)


def write_csv(export: Export, out: IO[str]) -> None:
    """CSV: a header, then one row per trial in export order (see the module docstring)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for trial in export.trials:
        values = trial.deterministic()
        writer.writerow(_csv_field(column, values[column], trial) for column in COLUMNS)


def _csv_field(column: str, value: object, trial: TrialRecord) -> str:
    if column == "params":
        return json.dumps(dict(trial.params), sort_keys=True, separators=(",", ":"))
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest decimal that reads back to the same bits
    return str(value)


def write_parquet(export: Export, path: Path) -> None:
    """Parquet with typed columns: floats as float64 (exact), ints as int32/int64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    trials: Sequence[TrialRecord] = export.trials
    columns: dict[str, pa.Array] = {
        "spec_id": pa.array([t.spec_id for t in trials], pa.string()),
        "seed": pa.array([t.seed for t in trials], pa.int64()),
        "trial_index": pa.array([t.trial_index for t in trials], pa.int64()),
        "params": pa.array([canonical_params(t.params) for t in trials], pa.string()),
        "status": pa.array([t.status.value for t in trials], pa.string()),
        "score": pa.array([t.score for t in trials], pa.float64()),
    }
    for name in METRIC_COLUMNS:
        kind = pa.int64() if name == "n_trades" else pa.float64()
        columns[name] = pa.array([t.metrics[name] for t in trials], kind)
    columns["message"] = pa.array([t.message for t in trials], pa.string())
    metadata = {"reprotune.export_version": str(EXPORT_VERSION), "reprotune.sha256": export.digest}
    table = pa.table(columns).replace_schema_metadata(metadata)
    pq.write_table(table, path)
