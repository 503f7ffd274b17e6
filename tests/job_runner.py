"""`python tests/job_runner.py ARGS...`: the command line, as a separate driver process,
with the test strategies registered (tests/job_strategies.py).

`REPROTUNE_TEST_COUNT_FILE` (when set): the strategies `counted_reversal` (the production
strategy under another name) and `counted_toy` (the toy bowl) append one line per
execution to this file, so a test can count what a killed driver and its resume really
ran.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import job_strategies

from cluster.cli import main

job_strategies.register_toys()
job_strategies.ship_by_value()
if os.environ.get("REPROTUNE_TEST_COUNT_FILE"):
    job_strategies.counting_reversal(Path(os.environ["REPROTUNE_TEST_COUNT_FILE"]))
    job_strategies.counting_toy(Path(os.environ["REPROTUNE_TEST_COUNT_FILE"]))

sys.exit(main(sys.argv[1:]))
