"""A run's progress as Ray metrics, for the dashboard's metrics view and Prometheus.

The same figures as the progress lines (cluster.job.progress), as gauges the driver
sets; Ray exports them from the head node's metrics port with the prefix `ray_`:

    ray_reprotune_trials_done{ensemble, seed}        recorded trials of the seed
    ray_reprotune_trials_budget{ensemble, seed}      the seed's trials in all
    ray_reprotune_best_score{ensemble, seed}         its best recorded score (set once
                                                     it has one)
    ray_reprotune_trials_per_second{ensemble}        trials recorded per second, over
                                                     the last progress interval

`ensemble` is the ensemble's id. Figures count recorded trials only, as the lines do.
Needs a connected Ray (the driver's); setting a gauge costs a few microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping


class ProgressMetrics:
    """The gauges of one ensemble's run (see the module docstring)."""

    def __init__(self, ensemble_id: str) -> None:
        from ray.util.metrics import Gauge

        self._ensemble = ensemble_id
        per_seed = ("ensemble", "seed")
        self._done = Gauge("reprotune_trials_done", "recorded trials of a seed", tag_keys=per_seed)
        self._budget = Gauge("reprotune_trials_budget", "a seed's trials in all", tag_keys=per_seed)
        self._best = Gauge(
            "reprotune_best_score", "a seed's best recorded score", tag_keys=per_seed
        )
        self._rate = Gauge(
            "reprotune_trials_per_second",
            "trials recorded per second over the last progress interval",
            tag_keys=("ensemble",),
        )

    def seed(self, seed: int, done: int, budget: int, best: float | None) -> None:
        tags = {"ensemble": self._ensemble, "seed": str(seed)}
        self._done.set(done, tags=tags)
        self._budget.set(budget, tags=tags)
        if best is not None:
            self._best.set(best, tags=tags)

    def seeds(
        self, done: Mapping[int, int], budgets: Mapping[int, int], best: Mapping[int, float]
    ) -> None:
        for seed, budget in budgets.items():
            self.seed(seed, done[seed], budget, best.get(seed))

    def rate(self, trials_per_second: float) -> None:
        self._rate.set(trials_per_second, tags={"ensemble": self._ensemble})
