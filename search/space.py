"""Search spaces: typed parameter ranges, the unit-cube mapping and grid points.

A `Space` is an ordered, frozen mapping of parameter name -> `FloatRange` | `IntRange`.
Bounds are inclusive at both ends; `lower == upper` pins a parameter.

The unit-cube mapping is shared by every searcher, so that their random points agree:
a float maps linearly, `lower + u * (upper - lower)`; an int owns the cell
`[lower - 0.5, upper + 0.5]` split into equal cells, so every value is equally likely
under a uniform `u` and a Gaussian process sees an int at its cell's centre.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = dict[str, int | float]
"""A point of a space: parameter name -> plain Python int or float, in space order."""


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class FloatRange:
    """Real values in `[lower, upper]`, both finite."""

    lower: float
    upper: float

    def __post_init__(self) -> None:
        for end in ("lower", "upper"):
            value = getattr(self, end)
            if not _is_real(value) or not math.isfinite(value):
                raise ValueError(f"FloatRange {end} must be a finite number, got {value!r}")
            object.__setattr__(self, end, float(value))
        if self.lower > self.upper:
            raise ValueError(f"FloatRange lower {self.lower!r} > upper {self.upper!r}")

    def contains(self, value: object) -> bool:
        return _is_real(value) and self.lower <= float(value) <= self.upper  # type: ignore[arg-type]

    def from_unit(self, u: float) -> float:
        value = self.lower + u * (self.upper - self.lower)
        return float(min(max(value, self.lower), self.upper))  # rounding may step past an end

    def to_unit(self, value: float) -> float:
        width = self.upper - self.lower
        return 0.5 if width == 0 else (value - self.lower) / width

    def grid(self, points: int) -> tuple[float, ...]:
        """`points` evenly spaced values, both ends included (one value when pinned)."""
        if self.lower == self.upper:
            return (self.lower,)
        return tuple(float(v) for v in np.linspace(self.lower, self.upper, points))


@dataclass(frozen=True)
class IntRange:
    """Integers in `[lower, upper]`; the bounds must be integers (never bools or 3.0)."""

    lower: int
    upper: int

    def __post_init__(self) -> None:
        for end in ("lower", "upper"):
            value = getattr(self, end)
            if not _is_int(value):
                raise ValueError(
                    f"IntRange {end} must be an int, got {type(value).__name__} {value!r}"
                )
            object.__setattr__(self, end, int(value))
        if self.lower > self.upper:
            raise ValueError(f"IntRange lower {self.lower} > upper {self.upper}")

    @property
    def size(self) -> int:
        return self.upper - self.lower + 1

    def contains(self, value: object) -> bool:
        return _is_int(value) and self.lower <= int(value) <= self.upper  # type: ignore[call-overload]

    def from_unit(self, u: float) -> int:
        # Equal cells: lower - 0.5 + u * size rounded half up is lower + floor(u * size).
        return int(min(self.lower + math.floor(u * self.size), self.upper))

    def to_unit(self, value: int) -> float:
        return (value - self.lower + 0.5) / self.size

    def grid(self, points: int) -> tuple[int, ...]:
        """`points` evenly spaced values rounded half up, ends included, duplicates dropped."""
        spaced = np.linspace(self.lower, self.upper, points)
        return tuple(sorted({math.floor(v + 0.5) for v in spaced}))


Range = FloatRange | IntRange


class Space(Mapping[str, Range]):
    """An ordered, immutable mapping of parameter name -> range (at least one)."""

    __slots__ = ("_ranges",)

    def __init__(self, ranges: Mapping[str, Range] | Sequence[tuple[str, Range]]) -> None:
        items = list(ranges.items()) if isinstance(ranges, Mapping) else list(ranges)
        if not items:
            raise ValueError("a space needs at least one parameter")
        names = [name for name, _ in items]
        for name, range_ in items:
            if not isinstance(name, str) or not name:
                raise ValueError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(range_, FloatRange | IntRange):
                raise ValueError(
                    f"parameter {name}: expected FloatRange or IntRange, got {range_!r}"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate parameter names: {', '.join(duplicates)}")
        self._ranges: dict[str, Range] = dict(items)

    def __getitem__(self, name: str) -> Range:
        return self._ranges[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)

    def __repr__(self) -> str:
        return f"Space({self._ranges!r})"

    def __eq__(self, other: object) -> bool:
        # Order is part of a space's identity: it decides how random draws are assigned.
        return isinstance(other, Space) and list(self.items()) == list(other.items())

    def __hash__(self) -> int:
        return hash(tuple(self.items()))

    def from_unit(self, unit: Sequence[float] | np.ndarray) -> Params:
        """The point at unit-cube coordinates `unit` (one per parameter, in order)."""
        return {
            name: r.from_unit(float(u)) for (name, r), u in zip(self.items(), unit, strict=True)
        }

    def to_unit(self, params: Mapping[str, int | float]) -> np.ndarray:
        """Unit-cube coordinates of a valid point (ints at their cell's centre)."""
        return np.array([r.to_unit(params[name]) for name, r in self.items()])  # type: ignore[arg-type]

    def normalized(self, params: Mapping[str, int | float]) -> Params:
        """A valid point in space order, as plain Python int / float (values unchanged)."""
        return {
            name: int(params[name]) if isinstance(r, IntRange) else float(params[name])
            for name, r in self.items()
        }

    def problems(self, params: object) -> list[str]:
        """Why `params` is not a point of this space (empty when it is)."""
        if not isinstance(params, Mapping):
            return [f"params must be a mapping, got {type(params).__name__}"]
        problems = [f"unknown parameter {name!r}" for name in params if name not in self]
        for name, r in self.items():
            if name not in params:
                problems.append(f"missing parameter {name!r}")
            elif not r.contains(params[name]):
                kind = "an int" if isinstance(r, IntRange) else "a number"
                problems.append(
                    f"{name} must be {kind} in [{r.lower}, {r.upper}], got {params[name]!r}"
                )
        return problems

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A JSON-able description, in order: name -> {"type", "lower", "upper"}."""
        return {
            name: {
                "type": "int" if isinstance(r, IntRange) else "float",
                "lower": r.lower,
                "upper": r.upper,
            }
            for name, r in self.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Space:
        ranges: list[tuple[str, Range]] = []
        for name, spec in data.items():
            kind = spec.get("type")
            if kind == "int":
                ranges.append((name, IntRange(spec["lower"], spec["upper"])))
            elif kind == "float":
                ranges.append((name, FloatRange(spec["lower"], spec["upper"])))
            else:
                raise ValueError(f"parameter {name}: type must be 'int' or 'float', got {kind!r}")
        return cls(ranges)


MAX_AXIS_POINTS = 1_000_000  # evenly spaced points of one parameter, held in memory


def grid_points(
    space: Space, points: int, values: Mapping[str, Sequence[int | float]] | None = None
) -> dict[str, tuple[int | float, ...]]:
    """Each parameter's grid: its explicit `values`, else `points` evenly spaced values.

    Explicit values must lie in the parameter's range (ints for an int range); they are
    sorted and deduplicated, so the grid does not depend on how they were listed.
    `points` is at most MAX_AXIS_POINTS: every axis is held in memory.
    """
    if not _is_int(points) or not 2 <= points <= MAX_AXIS_POINTS:
        raise ValueError(f"points must be an int in [2, {MAX_AXIS_POINTS:,}], got {points!r}")
    values = values or {}
    unknown = sorted(set(values) - set(space))
    if unknown:
        raise ValueError(f"grid values for unknown parameters: {', '.join(unknown)}")
    grid: dict[str, tuple[int | float, ...]] = {}
    for name, r in space.items():
        if name not in values:
            grid[name] = r.grid(points)
            continue
        listed = values[name]
        if isinstance(listed, str | bytes) or not isinstance(listed, Sequence) or not listed:
            raise ValueError(f"grid values for {name} must be a non-empty list, got {listed!r}")
        bad = [v for v in listed if not r.contains(v)]
        if bad:
            raise ValueError(
                f"grid values for {name} must lie in [{r.lower}, {r.upper}]"
                f"{' and be ints' if isinstance(r, IntRange) else ''}: {bad!r}"
            )
        cast = int if isinstance(r, IntRange) else float
        grid[name] = tuple(sorted({cast(v) for v in listed}))
    return grid
