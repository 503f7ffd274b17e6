"""The strategy's parameters as a frozen, validated value (built from the declaration)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from trainable.declaration import PARAMETERS, PARAMETERS_BY_NAME


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """The nine parameters of STRATEGY.md; fields are plain Python ints and floats.

    Build it with `StrategyParams.from_mapping(...)` (or the constructor): every value
    is checked against the declaration, and a wrong one raises a ValueError naming the
    parameter.
    """

    key_level_lookback: int
    min_level_touches: int
    min_distance_from_level: float
    pierce_depth: float
    reversal_candles: int
    volume_spike_threshold: float
    atr_multiplier_sl: float
    risk_reward_ratio: float
    max_holding_periods: int

    def __post_init__(self) -> None:
        problems = []
        for decl in PARAMETERS:
            value = getattr(self, decl.name)
            problem = decl.problem(value)
            if problem is not None:
                problems.append(problem)
                continue
            # Normalize numpy scalars and int-valued floats to the declared Python type.
            plain = int(value) if decl.kind == "int" else float(value)
            object.__setattr__(self, decl.name, plain)
        if problems:
            raise ValueError("invalid strategy parameters: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> StrategyParams:
        """Build from a name -> value mapping; unknown and missing names are errors."""
        unknown = [name for name in values if name not in PARAMETERS_BY_NAME]
        missing = [decl.name for decl in PARAMETERS if decl.name not in values]
        problems = [_unknown_message(name) for name in unknown]
        problems += [f"missing parameter {name!r}" for name in missing]
        if problems:
            raise ValueError("invalid strategy parameters: " + "; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


def default_params() -> StrategyParams:
    """The middle of every default search range (ints rounded down): a sane example."""
    values: dict[str, int | float] = {}
    for decl in PARAMETERS:
        lo, hi = decl.search
        values[decl.name] = int((lo + hi) // 2) if decl.kind == "int" else (lo + hi) / 2
    return StrategyParams.from_mapping(values)


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, PARAMETERS_BY_NAME, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown parameter {name!r}{hint}"
