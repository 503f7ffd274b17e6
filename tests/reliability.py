"""The reliability suite as data: every known defect and fault scenario of issue 13, what
it injects and what it checks, so that RELIABILITY.md can be generated from a test run
instead of typed by hand.

A test belongs to an entry by its marker, `@pytest.mark.reliability("fault-5")` (a test
may name several entries); an entry may have several tests (all must pass). Collection
fails on an id that is not below, so the table and the tests cannot drift apart.

    .venv/bin/python -m pytest -m reliability --reliability-json=reliability.json
    .venv/bin/python tests/reliability.py reliability.json > RELIABILITY.md

`--reliability-json` (tests/conftest.py) writes one record per marked test: its id,
node id, outcome and duration. `render` turns that into the Markdown table (an entry
without a test in the run shows as "not run").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    injects: str
    checks: str


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "defect-1",
        "database URL problems leak the password",
        "URLs libpq cannot use (SQLAlchemy forms, another scheme, a typo, a leading space) "
        "and URLs carrying a password, via DATABASE_URL and --database-url",
        "list/show/export/run exit 2 with one line, no traceback, no password",
    ),
    Entry(
        "defect-2",
        "export to a bad --output path",
        "--output in a missing directory, --output naming a directory",
        "exit 2 naming the path; nothing written",
    ),
    Entry(
        "defect-3",
        "output into a closed pipe",
        "stdout closed by the reader (`| head`)",
        "the command ends quietly: no BrokenPipeError traceback",
    ),
    Entry(
        "defect-4",
        "temporary cache files left by a SIGKILL",
        "SIGKILL inside a candle-cache write (hook REPROTUNE_TEST_KILL_IN_CACHE_WRITE)",
        "the fault left a *.tmp file; the next fetch removes it",
    ),
    Entry(
        "defect-5",
        "a refresh that stores candles the cleaning rules reject",
        "the exchange revises a cached candle to high < close, then `data fetch --refresh`",
        "exit 2 naming the candle; the cache file is byte-identical to before",
    ),
    Entry(
        "defect-6",
        "the embedded server after a signal during start-up or initdb",
        "SIGKILL/SIGTERM/SIGINT at named points of start-up and the first initdb "
        "(hook REPROTUNE_TEST_SIGNAL_IN_PG_START); a refused home directory",
        "no server left after SIGTERM/SIGINT; the next command recovers after SIGKILL; "
        "no orphan initdb; no .pg.lock left by a refusal",
    ),
    Entry(
        "defect-7",
        "CSV floats as hex",
        "an export of floats with many digits, subnormal, -0.0",
        "CSV holds shortest round-trip decimals that pandas reads back bit for bit",
    ),
    Entry(
        "defect-8",
        "null or NaN prices not named",
        "a Parquet file with a null (as pandas writes NaN) and one with NaN",
        "the message names the row, its time and the column",
    ),
    Entry(
        "defect-9",
        "an interrupted download restarts from zero",
        "the exchange fails for good after 4 pages of a 6-page fetch (default settings)",
        "the finished pages are cached; the rerun asks only for the rest",
    ),
    Entry(
        "fault-1",
        "worker processes SIGKILLed while they run trials",
        "SIGKILL of the Tune worker right before it evaluates seed 1's trial 1 (a random "
        "point), seed 2's trial 6 (a model batch) and seed 1's trial 11 (the last), on the "
        "first attempt only (hook REPROTUNE_TEST_KILL_WORKER); Bayesian batches of 4, "
        "chunks of 2 candidates per Tune trial",
        "a marker file per kill; those trials recorded with attempts = 2; the run "
        "completes: golden digest, every trial recorded once; executions = the trials "
        "plus only the killed chunks' candidates that ran before the kill",
    ),
    Entry(
        "fault-2",
        "a worker node lost mid-run",
        "a 2-node local cluster (`ray start`); the worker node's first trial holds "
        "(hooks REPROTUNE_TEST_HOLD_MARKER/_NODE in the job's environment), then every "
        "process of that node is SIGKILLed",
        "the cluster no longer counts the node, a trial needed a second attempt, every "
        "trial is recorded from the head; the run completes: the one-node golden digest, "
        "every trial once",
    ),
    Entry(
        "fault-3",
        "the driver SIGKILLed, then resume",
        "SIGKILL of the driver (hook REPROTUNE_TEST_KILL_DRIVER_AT) before the first trial, "
        "mid-batch, right after the commit of a finished batch before its searcher computed "
        "the next one from it, and during the last batch",
        "exit by SIGKILL with exactly the point's records and no process of the driver "
        "left; resume exits 0: golden digest, every trial recorded once, and it executes "
        "exactly the trials that were not recorded",
    ),
    Entry(
        "fault-4",
        "`ray job stop` mid-run, then resume",
        "`ray job submit` with RAY_JOB_STOP_SIGNAL=SIGINT; `ray job stop` while a trial "
        "holds (hook REPROTUNE_TEST_HOLD_MARKER, the 3rd evaluation of a worker process)",
        "the job is STOPPED, the driver recorded the run as interrupted with fewer trials "
        "and logged how to resume, no traceback; a `resume` job SUCCEEDED: golden, every "
        "trial once",
    ),
    Entry(
        "fault-5",
        "PostgreSQL restarted mid-run, or down past the retry budget",
        "a fast restart (pg_ctl restart -m fast) right before the write that records the "
        "6th trial; a stop at the same point, longer than the retry budget (~1 s)",
        "the server log shows the shutdown; the run completes, golden digest, no duplicate; "
        "down: Interrupted (exit 3) naming the database, committed trials kept, then "
        "resume: golden",
    ),
    Entry(
        "fault-6",
        "a connection cut after COMMIT was sent",
        "a socket proxy forwards the COMMIT of the first trial write and drops its reply",
        "the proxy dropped one reply; the retry finds the identical rows (golden, no "
        "duplicate); a retry with another payload raises NonDeterministicRetry and the "
        "stored row stays",
    ),
    Entry(
        "fault-7",
        "two drivers for one ensemble",
        "a second `resume` while the first (frozen by SIGSTOP) holds the ensemble's lock",
        "the second exits 1 naming the holder, wrote nothing, never reached Ray (it was "
        "given an address where nothing listens); the first then completes: golden",
    ),
    Entry(
        "fault-8",
        "the embedded server's owner SIGKILLed earlier",
        "SIGKILL during the first initdb, during start-up, and after start-up",
        "the fault left a staging dir or a server; the next command exits 0 and leaves "
        "no postgres, initdb or lock behind",
    ),
    Entry(
        "fault-9",
        "the exchange misbehaving during a download",
        "429 with Retry-After, 5xx, timeouts, short pages, a conflicting duplicate, a "
        "connection stalling mid-response, SIGKILL of the fetch while a reply stalls",
        "bounded retries, clear errors; the cache is always a complete, checked file (no "
        "partial or temporary file) and a rerun continues where it stopped",
    ),
)
SCENARIOS: Mapping[str, Entry] = {entry.id: entry for entry in ENTRIES}


def render(results: Iterable[Mapping[str, object]]) -> str:
    """The Markdown table of ENTRIES with each entry's result and runtime in `results`
    (records as `--reliability-json` writes them)."""
    by_id: dict[str, list[Mapping[str, object]]] = {}
    for record in results:
        by_id.setdefault(str(record["id"]), []).append(record)
    lines = [
        "| id | what | injects | checks | result | runtime |",
        "|---|---|---|---|---|---|",
    ]
    for entry in ENTRIES:
        records = by_id.get(entry.id, [])
        outcomes = {str(r["outcome"]) for r in records}
        if not records:
            result = "not run"
        elif outcomes == {"passed"}:
            result = f"passed ({len(records)} test{'s' if len(records) > 1 else ''})"
        else:
            failed = sum(1 for r in records if r["outcome"] != "passed")
            result = f"{failed} of {len(records)} not passed"
        runtime = sum(float(str(r["duration_s"])) for r in records)
        cells = [entry.id, entry.title, entry.injects, entry.checks, result, f"{runtime:.1f} s"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


HEADER = """# Reliability

Every known defect and fault scenario of the fault-injection suite: what it injects,
what it checks, and its result and runtime in the run this file was generated from.
Generated, not typed: `tests/reliability.py` holds the entries, the tests name them with
`@pytest.mark.reliability("fault-N")`, and

    .venv/bin/python -m pytest -m reliability --reliability-json=reliability.json
    .venv/bin/python tests/reliability.py reliability.json {source}> RELIABILITY.md

runs the suite (it also runs in the full test command, which CI runs) and writes this
file. {run}

"""


def header(results: list[Mapping[str, object]], source: str | None) -> str:
    total = sum(float(str(r["duration_s"])) for r in results)
    run = f"This run: {len(results)} tests, {total:.0f} s in all"
    run += f", {source}." if source else "."
    return HEADER.format(source='"DESCRIPTION" ' if source else "", run=run)


if __name__ == "__main__":
    records = json.loads(Path(sys.argv[1]).read_text())
    description = sys.argv[2] if len(sys.argv) > 2 else None
    sys.stdout.write(header(records, description) + render(records))
