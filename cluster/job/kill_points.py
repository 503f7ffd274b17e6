"""Named points where a test SIGKILLs the driver (the fault scenarios of issue 13).

Test hook (never set outside tests): `REPROTUNE_TEST_KILL_DRIVER_AT=POINT` SIGKILLs the
driver process at POINT, a deterministic place in a run rather than a moment:
- `experiment-start`: the ensemble, its jobs and this run are recorded, Ray is up and
  the candles are in its object store, and the experiment has not started: no trial
  ran;
- `recorded:N`: right after the commit that brings the trials this process recorded to
  N or more (cluster.job.recording commits as soon as N are buffered, so exactly N
  are recorded);
- `recorded:SEED:N`: the same for seed SEED's trials alone (the commit also holds the
  other seeds' buffered trials); SEED may be a walk-forward window's searcher key
  (`window_seed(seed, w)`), naming that window's search alone.
Trials are recorded from inside the searchers' completion callback, so a kill at
`recorded:...` comes before Tune asks any searcher for more: when the Nth trial of a
seed is the last of its batch, the searcher was told the batch's outcomes but has not
computed the next batch from them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

KILL_DRIVER_AT = "REPROTUNE_TEST_KILL_DRIVER_AT"
EXPERIMENT_START = "experiment-start"


@dataclass(frozen=True)
class KillPoint:
    """A parsed `REPROTUNE_TEST_KILL_DRIVER_AT`; `recorded` is None at experiment-start."""

    recorded: int | None = None
    seed: int | None = None

    @classmethod
    def from_environment(cls) -> KillPoint | None:
        """The point the environment names, None when it names none; ValueError when the
        value is malformed (a test's typo must not run the scenario without its fault)."""
        value = os.environ.get(KILL_DRIVER_AT)
        if not value:
            return None
        if value == EXPERIMENT_START:
            return cls()
        kind, *numbers = value.split(":")
        if kind != "recorded" or len(numbers) not in (1, 2):
            raise ValueError(f"{KILL_DRIVER_AT}: unknown point {value!r}")
        try:
            counts = [int(number) for number in numbers]
        except ValueError:
            raise ValueError(f"{KILL_DRIVER_AT}: unknown point {value!r}") from None
        return cls(recorded=counts[-1], seed=counts[0] if len(counts) == 2 else None)

    def reached(self, recorded: Mapping[int, int]) -> bool:
        """Whether trials per seed `recorded` reach this point (never at experiment-start)."""
        if self.recorded is None:
            return False
        if self.seed is None:
            return sum(recorded.values()) >= self.recorded
        return recorded.get(self.seed, 0) >= self.recorded


def kill_at_experiment_start() -> None:
    """SIGKILL this process if the environment names `experiment-start`."""
    point = KillPoint.from_environment()
    if point is not None and point.recorded is None:
        kill()


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
