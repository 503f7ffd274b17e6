"""The job: a spec and a seed list in, one Tune experiment, every trial recorded.

- `spec.py` the frozen job spec and its identity (`spec_id`); `parse.py` reads job
  files and seed lists, reporting every problem at once; `space.py` builds the search
  space from the strategy's declaration and the job's overrides.
- `data.py` resolves and loads the job's candles; `driver.py` runs an ensemble (the
  experiment itself is `experiment.py`, recording `recording.py`, the progress display
  `progress.py`); `resume.py` continues one from its records; `verify.py` compares two.
- The commands `run`, `resume`, `verify` (`command_*.py`).

For notebooks and tests, `run_job`, `resume_job` and `verify_ensembles` are importable
from here; importing this package itself stays light (Ray loads on first use).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "run_job": "cluster.job.driver",
    "resume_job": "cluster.job.resume",
    "verify_ensembles": "cluster.job.verify",
    "load_job_file": "cluster.job.parse",
    "parse_job": "cluster.job.parse",
    "parse_seeds": "cluster.job.parse",
    "JobSpec": "cluster.job.spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cluster.job' has no attribute {name!r}")
