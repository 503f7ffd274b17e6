"""What a dataset is: its source, range, cleaning and content fingerprint, as plain data.

A manifest round-trips through JSON exactly (`to_json` / `from_json`); the driver
records it beside an ensemble. Two datasets are the same data when their
`fingerprint`s are equal; the other fields say where the data came from and what
cleaning did (every filled range is listed). `library_versions` records the libraries
that parsed or produced the values, for diagnosis; they do not enter the fingerprint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cluster.candles.cleaning import GAP_POLICIES
from cluster.candles.fingerprint import FORMAT_VERSION
from cluster.candles.sources import Source, source_from_dict
from cluster.candles.times import Range
from cluster.errors import InvalidInput
from cluster.timeframes import timeframe_ms

MANIFEST_VERSION = 1
DATA_LIBRARIES = ("ccxt", "numpy", "pyarrow")


@dataclass(frozen=True)
class Manifest:
    """The description of one cleaned dataset; times are int ms UTC, ranges half-open."""

    source: Source
    exchange: str | None
    pair: str | None
    timeframe: str
    start: int
    end: int
    rows: int
    filled_ranges: tuple[Range, ...]
    gap_policy: str
    max_fill_share: float
    library_versions: tuple[tuple[str, str], ...]
    fingerprint: str
    fingerprint_format: int = FORMAT_VERSION

    @property
    def filled_rows(self) -> int:
        """Candles that cleaning added (flat, zero volume) to fill gaps."""
        return sum(high - low for low, high in self.filled_ranges) // timeframe_ms(self.timeframe)

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "source": self.source.to_dict(),
            "exchange": self.exchange,
            "pair": self.pair,
            "timeframe": self.timeframe,
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "filled_ranges": [list(span) for span in self.filled_ranges],
            "filled_rows": self.filled_rows,
            "gap_policy": self.gap_policy,
            "max_fill_share": self.max_fill_share,
            "library_versions": dict(self.library_versions),
            "fingerprint": self.fingerprint,
            "fingerprint_format": self.fingerprint_format,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """Canonical JSON (sorted keys); `indent` only changes whitespace."""
        separators = (",", ": ") if indent else (",", ":")
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, separators=separators)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            if data["manifest_version"] != MANIFEST_VERSION:
                raise InvalidInput(
                    f"manifest_version {data['manifest_version']!r} is not {MANIFEST_VERSION}"
                )
            if data["gap_policy"] not in GAP_POLICIES:
                raise InvalidInput(f"manifest: unknown gap_policy {data['gap_policy']!r}")
            manifest = cls(
                source=source_from_dict(data["source"]),
                exchange=data["exchange"],
                pair=data["pair"],
                timeframe=data["timeframe"],
                start=int(data["start"]),
                end=int(data["end"]),
                rows=int(data["rows"]),
                filled_ranges=tuple((int(a), int(b)) for a, b in data["filled_ranges"]),
                gap_policy=data["gap_policy"],
                max_fill_share=float(data["max_fill_share"]),
                library_versions=tuple(sorted(data["library_versions"].items())),
                fingerprint=str(data["fingerprint"]),
                fingerprint_format=int(data["fingerprint_format"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, InvalidInput):
                raise
            raise InvalidInput(f"manifest: malformed ({type(error).__name__}: {error})") from None
        if data.get("filled_rows", manifest.filled_rows) != manifest.filled_rows:
            raise InvalidInput("manifest: filled_rows does not match filled_ranges")
        return manifest

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls.from_dict(json.loads(text))
