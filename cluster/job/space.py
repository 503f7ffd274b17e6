"""A job's search space: the strategy's declared parameters, with the job's overrides.

Every parameter the strategy declares is searched over its default range unless the job
overrides it with `[lower, upper]` (a range, both ends included) or a single value (the
parameter is fixed). An override must lie inside the parameter's valid values, and an
int parameter takes ints only (never 3.0). The space keeps the declaration's order,
which decides how random draws are assigned, so it is part of a job's identity.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping

from search.space import FloatRange, IntRange, Range, Space
from trainable.declaration import ParamDecl
from trainable.strategies import Strategy


def build_space(
    strategy: Strategy, overrides: object, where: str
) -> tuple[Space | None, list[str]]:
    """(the space, []) or (None, every problem, each naming `where`.<parameter>)."""
    if not isinstance(overrides, Mapping):
        return None, [f"{where}: expected a table of parameter = [lower, upper] or value"]
    problems: list[str] = []
    names = [p.name for p in strategy.parameters]
    for name in overrides:
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{where}.{name}: {strategy.name} has no parameter {name!r}{hint}; its "
                f"parameters are {', '.join(names)}"
            )
    ranges: list[tuple[str, Range]] = []
    for declared in strategy.parameters:
        if declared.name in overrides:
            bounds = _override(declared, overrides[declared.name], f"{where}.{declared.name}")
        else:
            bounds = declared.search
        if isinstance(bounds, str):
            problems.append(bounds)
            continue
        lower, upper = bounds
        if declared.kind == "int":
            ranges.append((declared.name, IntRange(int(lower), int(upper))))
        else:
            ranges.append((declared.name, FloatRange(float(lower), float(upper))))
    if problems:
        return None, problems
    return Space(ranges), []


def _override(declared: ParamDecl, value: object, where: str) -> tuple[float, float] | str:
    """The override's (lower, upper), or the problem with it as text."""
    if isinstance(value, list):
        if len(value) != 2:
            return f"{where}: expected [lower, upper] or a single value, got {value!r}"
        lower, upper = value
    else:
        lower = upper = value
    for end in (lower, upper):
        problem = _bound_problem(declared, end)
        if problem is not None:
            return f"{where}: {problem}"
    if lower > upper:
        return f"{where}: lower {lower!r} is above upper {upper!r}"
    return lower, upper


def _bound_problem(declared: ParamDecl, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return f"expected a number, got {value!r}"
    if declared.kind == "int" and not isinstance(value, numbers.Integral):
        return f"{declared.name} is an int parameter, got {value!r}"
    if not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    problem = declared.problem(value)
    if problem is not None:
        return f"{problem} (valid values: {declared.valid_text})"
    return None


def overrides_of(space: Space) -> dict[str, list[int | float] | int | float]:
    """The space as job-file overrides (every parameter explicit): `build_space` of
    these gives the same space back."""
    return {
        name: r.lower if r.lower == r.upper else [r.lower, r.upper] for name, r in space.items()
    }
