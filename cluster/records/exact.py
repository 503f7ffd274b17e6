"""Exact text for floats and parameter sets, and bit-for-bit equality.

Records compare floats by their bits (DESIGN.md, contract 2): `0.0` and `-0.0` differ,
and so do `1` (int) and `1.0` (float). Text forms use `float.hex`, which names every
bit; `fromhex(hex(x))` gives `x` back exactly, subnormals and -0.0 included.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from typing import Any

ParamValue = int | float


def float_hex(value: float) -> str:
    """`float.hex` of a finite float: '0x1.8000000000000p+0', '-0x0.0p+0'."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite float: {value!r}")
    return float(value).hex()


def same_bits(a: float, b: float) -> bool:
    """Whether two floats have the same IEEE-754 binary64 bits."""
    return struct.pack("<d", a) == struct.pack("<d", b)


def same_value(a: Any, b: Any) -> bool:
    """Equality where floats compare by bits and int/float/bool are different types.

    Recurses into dicts (same keys) and lists/tuples (same length and order).
    """
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and same_bits(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def canonical_params(params: Mapping[str, ParamValue]) -> str:
    """Canonical JSON of a parameter set: keys sorted, ints as JSON numbers, floats as
    JSON strings of `float.hex(x)`, no whitespace, ASCII. Equal text <=> same names,
    types and bits: `{"a":3,"b":"0x1.8000000000000p+0"}`.

    Raises ValueError naming the parameter for anything but a str -> int/float mapping
    of finite values (bools and numpy scalars are refused: records hold plain Python).
    """
    encoded: dict[str, object] = {}
    for name, value in params.items():
        if not isinstance(name, str):
            raise ValueError(f"parameter name {name!r} is not a string")
        if type(value) is int:
            encoded[name] = value
        elif type(value) is float:
            if not math.isfinite(value):
                raise ValueError(f"parameter {name} is not finite: {value!r}")
            encoded[name] = value.hex()
        else:
            raise ValueError(
                f"parameter {name} must be a plain int or float, got {type(value).__name__} "
                f"{value!r}"
            )
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def parse_canonical_params(text: str) -> dict[str, ParamValue]:
    """The inverse of `canonical_params`: the exact ints and floats back."""
    decoded = json.loads(text)
    params: dict[str, ParamValue] = {}
    for name, value in decoded.items():
        if isinstance(value, str):
            params[name] = float.fromhex(value)
        elif type(value) is int:
            params[name] = value
        else:
            raise ValueError(f"not canonical params JSON: {name}={value!r}")
    return params
