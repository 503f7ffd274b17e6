"""Benchmark of the records layer: embedded server start, and recording 10,000 trials.

    /work/venv/bin/python bench/records.py            # or: .venv/bin/python bench/records.py

Targets (issue 5): cold start <= 1 s, warm start <= 0.3 s; recording 10,000 trials
<= 16 s (5% of what Tune needs to run them at its ~30 trials/s floor), aiming far lower.
Prints one line per measurement and a Markdown table for bench/RESULTS.md. Uses its own
embedded server in a fresh /tmp/rt-bench-XXXX, stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster.records.database import ensure_database
from cluster.records.pg_server import embedded_server
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleRecord, TrainingJobRecord, TrialRecord
from trainable.params import default_params

TUNE_FLOOR_TRIALS_PER_S = 30.0  # DESIGN.md, measured with reuse_actors=True
SPEC_ID = hashlib.sha256(b"bench spec").hexdigest()
FINGERPRINT = hashlib.sha256(b"bench data").hexdigest()


def _short_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="rt-bench-", dir="/tmp"))
    path.chmod(0o755)  # root runs the server as user pgserver
    return path


def measure_starts(repeats: int) -> dict[str, list[float]]:
    """Cold: initdb + start in a new dir. Warm: start on an existing, stopped dir."""
    times: dict[str, list[float]] = {"cold start": [], "warm start": [], "stop": []}
    for _ in range(repeats):
        base = _short_dir()
        try:
            for kind in ("cold start", "warm start"):
                started = time.perf_counter()
                with embedded_server(base / "pg"):
                    times[kind].append(time.perf_counter() - started)
                    stopping = time.perf_counter()
                times["stop"].append(time.perf_counter() - stopping)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    return times


def _trials(seed: int, count: int) -> list[TrialRecord]:
    rng = random.Random(seed)
    base = default_params().as_dict()
    trials = []
    for index in range(count):
        params = {k: (v + rng.randrange(3) if isinstance(v, int) else v * rng.uniform(0.5, 1.5))
                  for k, v in base.items()}  # fmt: skip
        score = rng.gauss(0.0, 2.0)
        metrics = {
            "score": score, "sharpe": score, "sortino": score * 1.3, "calmar": rng.random(),
            "total_return": rng.uniform(-0.5, 0.5), "max_drawdown": rng.random() / 2,
            "n_trades": rng.randrange(200), "win_rate": rng.random(),
            "profit_factor": rng.uniform(0.2, 3.0), "exposure": rng.random(),
            "mean_bars_held": rng.uniform(1, 100),
        }  # fmt: skip
        trials.append(
            TrialRecord.ok(SPEC_ID, seed, index, params, metrics, node="bench", attempts=1)
        )
    return trials


def _new_ensemble(recorder: Recorder, seed: int, budget: int) -> uuid.UUID:
    ensemble_id = uuid.uuid4()
    recorder.create_ensemble(
        EnsembleRecord(ensemble_id, SPEC_ID, {"bench": True}, [seed], FINGERPRINT)
    )
    recorder.upsert_training_jobs(ensemble_id, [TrainingJobRecord(seed, SPEC_ID, "random", budget)])
    return ensemble_id


def measure_recording(conninfo: str, count: int, batch_sizes: list[int]) -> dict[str, float]:
    """Seconds to record `count` trials in calls of each batch size (1 = one trial per
    call and transaction), with the default asynchronous trial commits and with
    `durable_trials=True`; then to re-record them all (every write retried: the compare
    path) and to read them back (what resume does)."""
    results: dict[str, float] = {}
    trials = _trials(1, count)
    for durable in (False, True):
        mode = "durable_trials=True" if durable else "default"
        with Recorder(conninfo, durable_trials=durable) as recorder:
            recorder.migrate()
            recorder.upsert_dataset(FINGERPRINT, {"bench": True})
            for batch in batch_sizes:
                ensemble_id = _new_ensemble(recorder, 1, count)
                seconds = _record_all(recorder, ensemble_id, trials, batch)
                results[f"record {count} trials, {_per(batch)}, {mode}"] = seconds
        if not durable:
            with Recorder(conninfo) as recorder:
                seconds = _record_all(recorder, ensemble_id, trials, batch_sizes[-1])
                results[f"re-record {count} trials (retry no-op), {_per(batch)}"] = seconds
                started = time.perf_counter()
                recorder.recorded_trials(ensemble_id, 1)
                results[f"read back {count} trials (resume)"] = time.perf_counter() - started
    return results


def _record_all(
    recorder: Recorder, ensemble_id: uuid.UUID, trials: list[TrialRecord], batch: int
) -> float:
    started = time.perf_counter()
    for start in range(0, len(trials), batch):
        recorder.record_trials(ensemble_id, trials[start : start + batch])
    return time.perf_counter() - started


def _per(batch: int) -> str:
    return "one per transaction" if batch == 1 else f"batches of {batch}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--starts", type=int, default=5, help="start/stop repetitions")
    args = parser.parse_args()

    starts = measure_starts(args.starts)
    base = _short_dir()
    try:
        with embedded_server(base / "pg") as server:
            ensure_database(server.conninfo(), "bench")
            recording = measure_recording(server.conninfo("bench"), args.trials, [1, 10, 100])
    finally:
        shutil.rmtree(base, ignore_errors=True)

    tune_seconds = args.trials / TUNE_FLOOR_TRIALS_PER_S
    print("| measurement | result |")
    print("|---|---|")
    for kind, values in starts.items():
        spread = f"{statistics.median(values):.3f} s ({min(values):.3f}, {max(values):.3f})"
        print(f"| embedded server {kind} (median of {len(values)}; min, max) | {spread} |")
    for what, seconds in recording.items():
        share = ""
        if what.startswith("record"):
            share = f"; {100 * seconds / tune_seconds:.2f}% of Tune's {tune_seconds:.0f} s"
        print(f"| {what} | {seconds:.2f} s ({args.trials / seconds:,.0f} trials/s{share}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
