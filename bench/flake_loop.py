"""Run test files again and again on a machine kept busy, and count the failures.

    .venv/bin/python bench/flake_loop.py --runs 20 tests/test_candles_cli.py ...
    .venv/bin/python bench/flake_loop.py --runs 10 --repo /tmp/old-checkout tests/...

Starts `--hogs` busy-loop processes (default: one per core) at normal priority, then
runs pytest on the given files `--runs` times, one after another, and prints how many
runs failed and which tests. The hogs are this script's own child processes and are
stopped (by their pid) whatever happens. `--repo` runs the files of another checkout
(e.g. the commit before a fix) with this virtual environment's Python.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _spin() -> None:
    while True:
        pass


def run_loop(repo: Path, files: list[str], runs: int, hogs: int) -> int:
    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=_spin, daemon=True) for _ in range(hogs)]
    for spinner in spinners:
        spinner.start()
    failed_runs = 0
    failures: dict[str, int] = {}
    started = time.monotonic()
    try:
        for run in range(1, runs + 1):
            load = os.getloadavg()[0]
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                cwd=repo,
                capture_output=True,
                text=True,
                check=False,
            )
            summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "?"
            if done.returncode != 0:
                failed_runs += 1
                for test in re.findall(r"^FAILED (\S+)", done.stdout, re.MULTILINE):
                    failures[test] = failures.get(test, 0) + 1
            print(f"run {run}/{runs} (load {load:.1f}): {summary}", flush=True)
    finally:
        for spinner in spinners:
            spinner.terminate()
            spinner.join()
    minutes = (time.monotonic() - started) / 60
    print(f"{runs - failed_runs}/{runs} runs passed, {failed_runs} failed ({minutes:.1f} min)")
    for test, count in sorted(failures.items()):
        print(f"  {test}: failed in {count} run(s)")
    return 1 if failed_runs else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="test files, relative to the repository")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repo", type=Path, default=REPO_ROOT)
    args = parser.parse_args(argv)
    return run_loop(args.repo, args.files, args.runs, args.hogs)


if __name__ == "__main__":
    sys.exit(main())
