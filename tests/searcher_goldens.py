"""Golden searcher sequences: a CHANGE DETECTOR for the points each searcher picks.

    python -m tests.searcher_goldens --check                        # exit 1 unless reproduced
    python -m tests.searcher_goldens --write --records-version N --reason WHY  # regenerate

What it is: for every searcher kind, the suggestions (trial index and params, floats as
float.hex) of a few seeds on a fixed toy objective, run sequentially. The numbers come
from the searchers themselves, so they prove nothing about which points are *right*;
they pin which points are *picked*, so that any change of a searcher's numbers (a
random stream, a tie rule, a library upgrade, the numeric pin) fails a test instead of
silently changing trial records. tests/test_search_goldens.py holds the searchers to it.

The Bayesian searcher's bits depend on the CPU's instruction set unless numpy's SIMD
dispatch and OpenBLAS's core type are pinned before numpy is imported (search/pinned.py),
so the sequences are always computed in a fresh process with the environment the
driver's suggestion pool uses (`search.pinned.pinned_environment`; `--emit`, started by
`--check`, `--write` and the test). Random and grid search do not depend on it; they
run in the same process for simplicity.

Regenerating: a different sequence means different trial records for the same job and
seed, which is exactly what RECORDS_VERSION (cluster/versions.py) announces. So
`--write` refuses unless RECORDS_VERSION was bumped past the version the file was made
with, and you pass the new version to say you did it on purpose; say why in the commit.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster.versions import cpu_model
from search.pinned import PINNED_ENV, pin_problems, pinned_environment

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN = REPO_ROOT / "tests" / "data" / "searcher_goldens.json"

# The suggestion processes' pin (every numpy SIMD dispatch target above numpy 2.4's
# baseline off, OpenBLAS on a generic core, one thread for every BLAS/OpenMP runtime),
# set before numpy is imported; recorded in the file's provenance.
PIN = dict(PINNED_ENV)
# What the pinned process must report, or the pin did not take effect.
PIN_FACTS = {"numpy_x86_v3_dispatch": False, "openblas_core": "Nehalem", "blas_threads": [1]}

INVALID_SCORE = -100.0
# name -> (kind, seed, iterations, options). Bayesian: 4 random points, then model
# batches (of 1 and of 4), so most suggestions come from the model.
CASES: dict[str, tuple[str, int, int, dict[str, Any]]] = {
    **{
        f"bayesian-batch{batch}-seed{seed}": (
            "bayesian",
            seed,
            16,
            {"n_initial": 4, "batch_size": batch},
        )
        for batch in (1, 4)
        for seed in (0, 1, 2)
    },
    **{f"random-seed{seed}": ("random", seed, 8, {}) for seed in (0, 1)},
    **{f"grid-seed{seed}": ("grid", seed, 8, {"points": 3}) for seed in (0, 1)},
}
OBJECTIVE = (
    "search.toys.mixed9 on search.toys.MIXED9_SPACE, maximized; a point with k2 == 8 "
    "is an invalid outcome (counted as invalid_score -100.0)"
)


def objective(params: dict[str, int | float]) -> Any:
    """The toy kernel: mixed9's score, or invalid for k2 == 8 (one int value in 8)."""
    from search.core import Outcome
    from search.toys import mixed9

    if params["k2"] == 8:
        return Outcome.invalid()
    return Outcome.ok(mixed9(params))


def encode(params: dict[str, int | float]) -> dict[str, int | str]:
    """Ints as JSON ints, floats as float.hex: every bit and the type are kept."""
    return {name: v.hex() if isinstance(v, float) else v for name, v in params.items()}


def sequence(name: str) -> list[list[Any]]:
    """[[trial_index, encoded params], ...] of one case, run to the end in trial order."""
    from search.registry import make_searcher
    from search.toys import MIXED9_SPACE

    kind, seed, iterations, options = CASES[name]
    searcher = make_searcher(
        kind,
        space=MIXED9_SPACE,
        seed=seed,
        iterations=iterations,
        invalid_score=INVALID_SCORE,
        **options,
    )
    suggestions = []
    while not searcher.finished:
        ready = searcher.ask()
        assert ready, f"{name}: nothing ready while nothing runs"
        for suggestion in ready:
            suggestions.append([suggestion.trial_index, encode(suggestion.params)])
            searcher.tell(suggestion.trial_index, objective(suggestion.params))
    return suggestions


def pin_facts() -> dict[str, Any]:
    """What numpy and OpenBLAS report in this process (see PIN_FACTS)."""
    from numpy._core._multiarray_umath import __cpu_features__
    from threadpoolctl import threadpool_info

    blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
    return {
        "numpy_x86_v3_dispatch": bool(__cpu_features__.get("X86_V3")),
        "openblas_core": next((info.get("architecture") for info in blas), None),
        "blas_threads": sorted({info["num_threads"] for info in blas}),
    }


def emit() -> dict[str, Any]:
    """Every case's sequence; run only in a process started with PIN (see `pinned`)."""
    # pin_problems reads what numpy and OpenBLAS actually use, so it also catches a
    # process that loaded them before the pin was in its environment.
    problems = pin_problems()
    if problems:
        raise SystemExit(f"--emit needs a fresh process with the pin set: {problems}")
    return {"pin_facts": pin_facts(), "cases": {name: sequence(name) for name in CASES}}


def pinned() -> dict[str, Any]:
    """`emit()` in a fresh interpreter whose environment sets PIN before numpy loads."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.searcher_goldens", "--emit"],
        cwd=REPO_ROOT,
        env=pinned_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the pinned process failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def load() -> dict[str, Any]:
    stored: dict[str, Any] = json.loads(GOLDEN.read_text())
    return stored


def render(fresh: dict[str, Any], records_version: int, reason: str) -> str:
    golden = {
        "about": (
            "CHANGE DETECTOR, not an independent reference: the suggestions the searchers "
            "made themselves, pinned so that a change of any of their bits fails "
            "tests/test_search_goldens.py. Floats are float.hex(); compare bit for bit."
        ),
        "provenance": {
            "command": f"python -m tests.searcher_goldens --write --records-version "
            f"{records_version} --reason ...",
            "reason": reason,
            "generated": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "environment": PIN,
            "pin_facts": fresh["pin_facts"],
        },
        "records_version": records_version,
        "objective": OBJECTIVE,
        "invalid_score": INVALID_SCORE,
        "cases": {
            name: {
                "kind": CASES[name][0],
                "seed": CASES[name][1],
                "iterations": CASES[name][2],
                "options": CASES[name][3],
                "suggestions": fresh["cases"][name],
            }
            for name in CASES
        },
    }
    text = json.dumps(golden, indent=1)
    # One suggestion per line keeps the file reviewable in a diff.
    out: list[str] = []
    buffer: list[str] | None = None
    lines = text.split("\n")
    for line in lines:
        if buffer is None and line.strip() == "[" and out and out[-1].endswith(("[", ",")):
            buffer = [line.rstrip()]
        elif buffer is not None:
            buffer.append(line.strip())
            if line.strip().startswith("]"):
                out.append(buffer[0] + "".join(buffer[1:-1]) + buffer[-1])
                buffer = None
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def differences(stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Human-readable differences between the golden file and a fresh run (empty: same)."""
    problems = []
    if fresh["pin_facts"] != PIN_FACTS:
        problems.append(f"the pin did not take effect: {fresh['pin_facts']} != {PIN_FACTS}")
    if set(stored["cases"]) != set(fresh["cases"]):
        problems.append(f"cases differ: {sorted(stored['cases'])} != {sorted(fresh['cases'])}")
    for name in sorted(set(stored["cases"]) & set(fresh["cases"])):
        want, got = stored["cases"][name]["suggestions"], fresh["cases"][name]
        for k, (expected, actual) in enumerate(zip(want, got, strict=False)):
            if expected != actual:
                problems.append(f"{name}: suggestion {k} is {actual}, golden {expected}")
                break
        if len(want) != len(got):
            problems.append(f"{name}: {len(got)} suggestions, golden {len(want)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 unless a fresh run matches")
    mode.add_argument(
        "--write", action="store_true", help="regenerate (needs --records-version and --reason)"
    )
    mode.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--records-version", type=int, help="the bumped RECORDS_VERSION")
    parser.add_argument("--reason", help="why the sequences changed (kept in the provenance)")
    args = parser.parse_args(argv)
    if args.emit:
        print(json.dumps(emit()))
        return 0
    if args.check:
        problems = differences(load(), pinned())
        print("\n".join(problems) or "searcher goldens reproduced")
        return 1 if problems else 0
    from cluster.versions import RECORDS_VERSION

    made_with = load()["records_version"] if GOLDEN.exists() else 0
    if args.records_version != RECORDS_VERSION or made_with >= RECORDS_VERSION:
        print(
            f"refused: the goldens were made with RECORDS_VERSION {made_with}, which is now "
            f"{RECORDS_VERSION}. New sequences mean new trial records: bump RECORDS_VERSION "
            "in cluster/versions.py first (and say so in the commit), then pass "
            "--records-version <the new value>.",
            file=sys.stderr,
        )
        return 2
    if not (args.reason or "").strip():
        print("refused: say why the sequences changed with --reason", file=sys.stderr)
        return 2
    fresh = pinned()
    if fresh["pin_facts"] != PIN_FACTS:
        print(f"refused: the pin did not take effect: {fresh['pin_facts']}", file=sys.stderr)
        return 2
    GOLDEN.write_text(render(fresh, RECORDS_VERSION, args.reason.strip()))
    print(f"wrote {GOLDEN.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
