"""Grid search: the full product of per-parameter points, in a seeded order.

The grid is the Cartesian product of `grid_points(space, points, values)`. Trial k is
the product element at position `permutation[k]`, where the permutation of all grid
positions is drawn from (seed, GRID_STREAM). A budget below the grid's size gives each
seed a different subset; a budget equal to it covers the whole grid whatever the seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from search.core import SeededSearcher, seeded_generator
from search.space import Params, Space, grid_points

GRID_STREAM = 1
GRID_LIMIT = 1_000_000  # the permutation is one int64 array: 8 MB at the limit
DEFAULT_POINTS = 5


def grid_size(
    space: Space,
    points: int = DEFAULT_POINTS,
    values: Mapping[str, Sequence[int | float]] | None = None,
) -> int:
    """Number of points of the grid these options give (may exceed GRID_LIMIT)."""
    return math.prod(len(v) for v in grid_points(space, points, values).values())


class GridSearcher(SeededSearcher):
    """Options: `points` (per parameter, ends included) and `values` (explicit lists)."""

    kind = "grid"

    def __init__(
        self,
        space: Space,
        *,
        seed: int,
        iterations: int,
        invalid_score: float,
        points: int = DEFAULT_POINTS,
        values: Mapping[str, Sequence[int | float]] | None = None,
    ) -> None:
        super().__init__(
            space,
            seed=seed,
            iterations=iterations,
            invalid_score=invalid_score,
            points=points,
            values={k: list(v) for k, v in (values or {}).items()},
        )
        self._axes = grid_points(space, points, values)
        sizes = {name: len(axis) for name, axis in self._axes.items()}
        size = math.prod(sizes.values())
        if size > GRID_LIMIT:
            counts = " x ".join(f"{n} ({name})" for name, n in sizes.items())
            raise ValueError(
                f"the grid has {size:,} points ({counts}), more than the limit of "
                f"{GRID_LIMIT:,}: use fewer points or explicit values"
            )
        if self.iterations > size:
            raise ValueError(
                f"iterations ({self.iterations}) exceeds the grid's {size} points: "
                f"set iterations to at most {size}"
            )
        self.grid_size = size
        self._order = seeded_generator(self.seed, GRID_STREAM).permutation(size)

    def _ready_end(self) -> int:
        return self.iterations

    def _suggest(self, trial_index: int) -> Params:
        position = int(self._order[trial_index])
        params: Params = {}
        # Mixed radix, last parameter fastest: position -> one index per axis.
        for name in reversed(list(self._axes)):
            axis = self._axes[name]
            position, index = divmod(position, len(axis))
            params[name] = axis[index]
        return {name: params[name] for name in self._axes}
