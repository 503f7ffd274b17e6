"""What a user watches while an ensemble runs: per seed, trials done and the best score.

On a terminal: a tqdm bar per seed (one bar for all seeds beyond `MAX_BARS` seeds, with
the best score of each in its description). Elsewhere (a log file, `ray job logs`, the
dashboard's job page): plain lines at a steady interval, one for the whole run and
one per seed that is still running or has just finished, e.g.

    trials done=74/400 trials/s=12.3
    seed=42 done=37/200 best=1.23

Either way the same figures go to Ray metrics when `metrics` is given
(cluster.job.metrics), for the dashboard's metrics view. The figures count recorded
trials only, so they never run ahead of the database. The interval is INTERVAL_S, or
`$REPROTUNE_PROGRESS_INTERVAL_S` seconds when set.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.job.metrics import ProgressMetrics

MAX_BARS = 8
INTERVAL_S = 10.0
INTERVAL_VARIABLE = "REPROTUNE_PROGRESS_INTERVAL_S"
METRICS_EVERY_S = 1.0


def default_interval_s() -> float:
    """INTERVAL_S, or a positive `$REPROTUNE_PROGRESS_INTERVAL_S` (others are ignored)."""
    try:
        configured = float(os.environ.get(INTERVAL_VARIABLE, ""))
    except ValueError:
        return INTERVAL_S
    return configured if configured > 0 else INTERVAL_S


class Progress:
    """Per-seed counts and best scores, shown as bars or as periodic lines."""

    def __init__(
        self,
        budgets: dict[int, int],
        *,
        done: dict[int, int] | None = None,
        best: dict[int, float] | None = None,
        stream: IO[str] | None = None,
        interval_s: float | None = None,
        enabled: bool = True,
        metrics: ProgressMetrics | None = None,
    ) -> None:
        self.budgets = dict(budgets)
        self.done = {seed: 0 for seed in budgets} | (done or {})
        self.best: dict[int, float] = dict(best or {})
        self._stream = stream or sys.stderr
        self._interval = default_interval_s() if interval_s is None else interval_s
        self._enabled = enabled
        self._metrics = metrics
        self._last_lines = self._last_rate = self._last_metrics = time.monotonic()
        self._done_at_last_rate = self._done_at_start = sum(self.done.values())
        self._started = self._last_rate
        self.rate = 0.0  # trials recorded per second over the last interval
        if metrics is not None:
            metrics.seeds(self.done, self.budgets, self.best)
        self._reported: set[int] = {s for s in budgets if self.done[s] >= budgets[s]}
        self._bars: dict[int, Any] = {}
        if enabled and _is_terminal(self._stream):
            self._open_bars()

    def _open_bars(self) -> None:
        from tqdm import tqdm

        seeds = list(self.budgets)
        groups = {seed: [seed] for seed in seeds} if len(seeds) <= MAX_BARS else {-1: seeds}
        for position, (key, members) in enumerate(groups.items()):
            self._bars[key] = tqdm(
                total=sum(self.budgets[s] for s in members),
                initial=sum(self.done[s] for s in members),
                desc=self._label(key),
                position=position,
                file=self._stream,
                dynamic_ncols=True,
                leave=True,
            )

    def _label(self, key: int) -> str:
        if key == -1:
            return f"{len(self.budgets)} seeds"
        best = self.best.get(key)
        return f"seed {key}" + ("" if best is None else f" best {best:.4g}")

    def add(self, seed: int, score: float, *, best: bool = True) -> None:
        """One more recorded trial of `seed`, with its score (which counts towards the
        seed's best only when `best`: a walk-forward window's trial does not)."""
        self.done[seed] += 1
        if best and (seed not in self.best or score > self.best[seed]):
            self.best[seed] = score
        if self._metrics is not None:
            self._metrics.seed(seed, self.done[seed], self.budgets[seed], self.best.get(seed))
        bar = self._bars.get(seed, self._bars.get(-1))
        if bar is not None:
            bar.update(1)
            if seed in self._bars:
                bar.set_description(self._label(seed), refresh=False)

    def tick(self) -> None:
        """Once an interval has passed: update the rate (and its metric) and print the
        periodic lines (not with bars). The metrics are set again every second: Ray
        exports a gauge only while it is being set, so an idle seed's figures would
        vanish from the metrics view."""
        now = time.monotonic()
        if now - self._last_rate >= self._interval:
            self._update_rate(now)
        if self._metrics is not None and now - self._last_metrics >= METRICS_EVERY_S:
            self._last_metrics = now
            self._metrics.seeds(self.done, self.budgets, self.best)
            self._metrics.rate(self.rate)
        if not self._enabled or self._bars:
            return
        if now - self._last_lines >= self._interval:
            self.print_lines()

    def _update_rate(self, now: float) -> None:
        done = sum(self.done.values())
        if now > self._last_rate:
            self.rate = (done - self._done_at_last_rate) / (now - self._last_rate)
        self._last_rate, self._done_at_last_rate = now, done
        if self._metrics is not None:
            self._metrics.rate(self.rate)

    def print_lines(self) -> None:
        self._last_lines = time.monotonic()
        if len(self._reported) < len(self.budgets):
            print(self.summary_line(), file=self._stream, flush=True)
        for seed, budget in self.budgets.items():
            if seed in self._reported:
                continue
            if self.done[seed] >= budget:
                self._reported.add(seed)
            print(self.line(seed), file=self._stream, flush=True)

    def summary_line(self) -> str:
        done, budget = sum(self.done.values()), sum(self.budgets.values())
        return f"trials done={done}/{budget} trials/s={self.rate:.3g}"

    def line(self, seed: int) -> str:
        best = self.best.get(seed)
        shown = "-" if best is None else f"{best:.6g}"
        return f"seed={seed} done={self.done[seed]}/{self.budgets[seed]} best={shown}"

    def close(self) -> None:
        """Close the bars, or print the last lines."""
        if self._bars:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
        elif self._enabled:
            # The last line's rate is the whole run's, not the last interval's (a run
            # shorter than one interval would otherwise end with trials/s=0).
            elapsed = time.monotonic() - self._started
            if elapsed > 0:
                self.rate = (sum(self.done.values()) - self._done_at_start) / elapsed
            self.print_lines()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
