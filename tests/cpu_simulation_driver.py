"""A driver for tests/test_search_pinned.py, run as a script under a simulated CPU.

Runs a Bayesian ensemble (seeds 0-2, batch sizes 1 and 4, 60 trials each, job defaults,
on `search.toys.mixed9`) through a `SuggestionPool` of 2 and prints JSON: each
(batch size, seed)'s sequence of params (exact reprs) and the pool's platform.
`--unpinned-control` starts the pool with its test-only switch: the suggestion
processes inherit this process's (simulated) environment as it is.
"""

from __future__ import annotations

import json
import sys
import time

from search.interleave import Chunking, Interleaver
from search.pool import SuggestionPool
from search.registry import SEARCHER_OPTIONS, make_searcher
from search.toys import MIXED9_SPACE, mixed9

SEEDS = (0, 1, 2)
BATCH_SIZES = (1, 4)
TRIALS = 60
RUNNING = 4  # trials "running" at once; completed oldest first


def _ensemble(pool: SuggestionPool, batch_size: int) -> dict[int, list[list[object]]]:
    options = {**SEARCHER_OPTIONS["bayesian"], "batch_size": batch_size}
    common = {"space": MIXED9_SPACE, "iterations": TRIALS, "invalid_score": -100.0, "pool": pool}
    interleaver = Interleaver(
        {seed: make_searcher("bayesian", seed=seed, **common, **options) for seed in SEEDS},
        chunking=Chunking(max_chunk=1),
    )
    running: list[tuple[str, dict]] = []
    config: object = None
    sequences: dict[int, list[list[object]]] = {seed: [] for seed in SEEDS}
    handed_out = 0
    while True:
        while len(running) < RUNNING:
            config = interleaver.suggest(f"t{handed_out}")
            if not isinstance(config, dict):
                break
            running.append((f"t{handed_out}", config))
            handed_out += 1
            (candidate,) = config["trials"]
            params = [[name, type(v).__name__, repr(v)] for name, v in candidate["params"].items()]
            sequences[config["seed"]].append([candidate["trial_index"], params])
        if config == "FINISHED":
            break
        if not running:  # batches are being computed: poll, as Tune does
            time.sleep(0.002)
            continue
        trial_id, done = running.pop(0)
        (candidate,) = done["trials"]
        score = mixed9(candidate["params"])
        report = {"trial_index": candidate["trial_index"], "status": "ok", "score": score}
        interleaver.complete(trial_id, {"trials": [report]}, False)
    assert interleaver.finished and not interleaver.failed
    return sequences


def main() -> None:
    control = "--unpinned-control" in sys.argv[1:]
    with SuggestionPool(2, unpinned_control_for_tests=control) as pool:
        sequences = {
            f"batch {batch_size} seed {seed}": sequence
            for batch_size in BATCH_SIZES
            for seed, sequence in _ensemble(pool, batch_size).items()
        }
        print(json.dumps({"platform": pool.platform, "sequences": sequences}))


if __name__ == "__main__":
    main()
