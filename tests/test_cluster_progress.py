"""The progress a user watches on a cluster (cluster.job.progress): the log's lines and
the same figures as Ray metrics. No Ray: the metrics object is a recorder of calls."""

from __future__ import annotations

import io

import pytest

from cluster.job.progress import INTERVAL_S, Progress, default_interval_s


class Recorded:
    """Stands in for cluster.job.metrics.ProgressMetrics."""

    def __init__(self) -> None:
        self.by_seed: dict[int, tuple[int, int, float | None]] = {}
        self.rates: list[float] = []

    def seed(self, seed: int, done: int, budget: int, best: float | None) -> None:
        self.by_seed[seed] = (done, budget, best)

    def seeds(self, done, budgets, best) -> None:
        for seed, budget in budgets.items():
            self.seed(seed, done[seed], budget, best.get(seed))

    def rate(self, trials_per_second: float) -> None:
        self.rates.append(trials_per_second)


def test_lines_and_metrics_carry_the_same_figures():
    out, metrics = io.StringIO(), Recorded()
    progress = Progress({42: 200, 7: 10}, done={7: 10}, best={7: 0.5}, stream=out,
                        interval_s=1e-9, metrics=metrics)  # fmt: skip
    assert metrics.by_seed == {42: (0, 200, None), 7: (10, 10, 0.5)}
    for score in (1.0, 1.23, 0.7):
        progress.add(42, score)
    assert metrics.by_seed[42] == (3, 200, 1.23)
    progress.tick()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("trials done=13/210 trials/s=")
    assert lines[1:] == ["seed=42 done=3/200 best=1.23"]  # seed 7 was finished before
    assert metrics.rates and metrics.rates[-1] == progress.rate > 0


def test_a_run_shorter_than_one_interval_ends_with_its_whole_rate_not_zero(monkeypatch):
    now = [100.0]  # the Progress is made at 100 s, closed at 104 s
    monkeypatch.setattr("cluster.job.progress.time.monotonic", lambda: now[0])
    out = io.StringIO()
    progress = Progress({42: 10}, done={42: 2}, stream=out, interval_s=60.0)
    for score in (1.0,) * 8:
        progress.add(42, score)  # the interval never passes: no line, no rate yet
    assert out.getvalue() == ""
    now[0] = 104.0
    progress.close()
    # 8 trials recorded by this run (2 were recorded before it) in 4 s.
    assert out.getvalue().splitlines()[0] == "trials done=10/10 trials/s=2"


@pytest.mark.parametrize(("value", "expected"), [("2.5", 2.5), ("", INTERVAL_S),
                                                 ("0", INTERVAL_S), ("x", INTERVAL_S)])  # fmt: skip
def test_the_interval_can_be_set_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("REPROTUNE_PROGRESS_INTERVAL_S", value)
    assert default_interval_s() == expected
