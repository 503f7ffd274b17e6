"""What a user watches while an ensemble runs: per seed, trials done and the best score.

On a terminal: a tqdm bar per seed (one bar for all seeds beyond `MAX_BARS` seeds, with
the best score of each in its description). Elsewhere (a log file, `ray job logs`, the
dashboard's job page): plain lines at a steady interval, one per seed that is still
running or has just finished, e.g.

    seed=42 done=37/200 best=1.23

The figures count recorded trials only, so they never run ahead of the database.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

MAX_BARS = 8
INTERVAL_S = 10.0


class Progress:
    """Per-seed counts and best scores, shown as bars or as periodic lines."""

    def __init__(
        self,
        budgets: dict[int, int],
        *,
        done: dict[int, int] | None = None,
        best: dict[int, float] | None = None,
        stream: IO[str] | None = None,
        interval_s: float = INTERVAL_S,
        enabled: bool = True,
    ) -> None:
        self.budgets = dict(budgets)
        self.done = {seed: 0 for seed in budgets} | (done or {})
        self.best: dict[int, float] = dict(best or {})
        self._stream = stream or sys.stderr
        self._interval = interval_s
        self._enabled = enabled
        self._last_lines = time.monotonic()
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

    def add(self, seed: int, score: float) -> None:
        """One more recorded trial of `seed`, with its score."""
        self.done[seed] += 1
        if seed not in self.best or score > self.best[seed]:
            self.best[seed] = score
        bar = self._bars.get(seed, self._bars.get(-1))
        if bar is not None:
            bar.update(1)
            if seed in self._bars:
                bar.set_description(self._label(seed), refresh=False)

    def tick(self) -> None:
        """Print the periodic lines when the interval has passed (no-op with bars)."""
        if not self._enabled or self._bars:
            return
        if time.monotonic() - self._last_lines >= self._interval:
            self.print_lines()

    def print_lines(self) -> None:
        self._last_lines = time.monotonic()
        for seed, budget in self.budgets.items():
            if seed in self._reported:
                continue
            if self.done[seed] >= budget:
                self._reported.add(seed)
            print(self.line(seed), file=self._stream, flush=True)

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
            self.print_lines()


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
