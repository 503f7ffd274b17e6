"""Grid search: the full product of per-parameter points, in a seeded order.

The grid is the Cartesian product of `grid_points(space, points, values)`. Trial k is
the product element at position `order[k]`, where `order` is a permutation of all grid
positions chosen by (seed, GRID_STREAM). A budget below the grid's size gives each seed
a different subset; a budget equal to it covers the whole grid whatever the seed.

The permutation is never stored: `SeededPermutation` evaluates `order[k]` on its own,
in O(1) time and memory. The strategy's own default space has 9 parameters, and 5
points each make 1,562,500 grid positions (4 for the int with range 2-5); a stored
permutation (8 bytes a position) would cost 12.5 MB per seed, ~800 MB at 64 seeds, and
the job's default grid had to be refused above 1,000,000 points. Fewer default points
would only move the wall (a strategy with 10 parameters is past it again) and would
make the default grid coarse. So the default stays 5 points and every grid of up to
2**64 positions works, whatever the number of seeds.

`SeededPermutation` is a Feistel network on `2b` bits (the smallest even number of bits
that holds every position), each round keyed by (seed, stream) through BLAKE2b, and
"cycle walking": a result outside the grid is encrypted again until it falls inside,
which keeps a bijection on exactly [0, size) (on average under 4 walks, as 2**2b < 4 *
size). A Feistel network is a bijection whatever its round function; with a keyed hash
as the round function it is a pseudo-random permutation (Luby-Rackoff), so a seed's
subset of a large grid is as good as a uniformly shuffled one.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

from search.core import ComputePool, SeededSearcher
from search.space import Params, Space, grid_points

GRID_STREAM = 1
GRID_LIMIT = 2**64  # positions fit the 64-bit halves of one BLAKE2b digest
DEFAULT_POINTS = 5
FEISTEL_ROUNDS = 8


def grid_size(
    space: Space,
    points: int = DEFAULT_POINTS,
    values: Mapping[str, Sequence[int | float]] | None = None,
) -> int:
    """Number of points of the grid these options give (may exceed GRID_LIMIT)."""
    return math.prod(len(v) for v in grid_points(space, points, values).values())


class SeededPermutation:
    """A permutation of range(size) chosen by (seed, stream); see the module docstring.

    `permutation[k]` is its k-th element, computed alone (no state, any order).
    """

    def __init__(self, size: int, seed: int, stream: int) -> None:
        if not 1 <= size <= GRID_LIMIT:
            raise ValueError(f"size must be in [1, 2**64], got {size}")
        bits = max(2, (size - 1).bit_length())
        self.size = size
        self._half = (bits + 1) // 2
        self._mask = (1 << self._half) - 1
        key = seed.to_bytes(8, "little") + stream.to_bytes(8, "little")
        self._rounds = [
            hashlib.blake2b(key=key, digest_size=8, salt=r.to_bytes(16, "little"))
            for r in range(FEISTEL_ROUNDS)
        ]

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} is outside [0, {self.size})")
        position = self._encrypt(index)
        while position >= self.size:  # cycle walking: stays a bijection on [0, size)
            position = self._encrypt(position)
        return position

    def _encrypt(self, value: int) -> int:
        left, right = value >> self._half, value & self._mask
        for keyed in self._rounds:
            digest = keyed.copy()
            digest.update(right.to_bytes(8, "little"))
            left, right = right, left ^ (int.from_bytes(digest.digest(), "little") & self._mask)
        return (left << self._half) | right


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
        pool: ComputePool | None = None,
    ) -> None:
        super().__init__(
            space,
            seed=seed,
            iterations=iterations,
            invalid_score=invalid_score,
            pool=pool,
            points=points,
            values={k: list(v) for k, v in (values or {}).items()},
        )
        self._axes = grid_points(space, points, values)
        sizes = {name: len(axis) for name, axis in self._axes.items()}
        size = math.prod(sizes.values())
        if size > GRID_LIMIT:
            counts = " x ".join(f"{n} ({name})" for name, n in sizes.items())
            raise ValueError(
                f"the grid has {size:,} points ({counts}), more than the limit of 2**64: "
                f"use fewer points or explicit values"
            )
        if self.iterations > size:
            raise ValueError(
                f"iterations ({self.iterations}) exceeds the grid's {size} points: "
                f"set iterations to at most {size}"
            )
        self.grid_size = size
        self._order = SeededPermutation(size, self.seed, GRID_STREAM)

    def _due_end(self) -> int:
        return self.iterations

    def _suggest(self, trial_index: int) -> Params:
        position = self._order[trial_index]
        params: Params = {}
        # Mixed radix, last parameter fastest: position -> one index per axis.
        for name in reversed(list(self._axes)):
            axis = self._axes[name]
            position, index = divmod(position, len(axis))
            params[name] = axis[index]
        return {name: params[name] for name in self._axes}
