"""Random search: uniform points, independent of outcomes.

Trial k's point is drawn from its own generator, seeded from (seed, RANDOM_STREAM, k),
through the space's unit-cube mapping (floats uniform on [lower, upper], every int value
equally likely). So any trial is computed in O(1), in any order, and rebuild costs
nothing; the Bayesian searcher's initial points are these same points.
"""

from __future__ import annotations

from search.core import SeededSearcher, seeded_generator
from search.space import Params, Space

RANDOM_STREAM = 0


def random_point(space: Space, seed: int, trial_index: int) -> Params:
    """The uniform random point of trial `trial_index` for `seed`."""
    unit = seeded_generator(seed, RANDOM_STREAM, trial_index).random(len(space))
    return space.from_unit(unit)


class RandomSearcher(SeededSearcher):
    """Every trial is ready at once; outcomes are recorded but never change a point."""

    kind = "random"

    def _due_end(self) -> int:
        return self.iterations

    def _suggest(self, trial_index: int) -> Params:
        return random_point(self.space, self.seed, trial_index)
