"""Seeded, strategy-agnostic searchers (Bayesian optimization, random, grid).

The Tune-free core lives in `search.core` (ask / tell / finished, save / restore,
rebuild); `search.registry.make_searcher` builds one; `search.interleave` runs several
seeds side by side; `search.tune_searcher` (the only module importing Ray) adapts them
to Ray Tune. Importing this package does not import Ray.
"""

from search.core import Outcome, RebuildMismatch, RecordedTrial, SeededSearcher, Suggestion
from search.interleave import CompletedTrial, Interleaver, TrialKey
from search.registry import SEARCHER_OPTIONS, make_searcher, rebuild_searcher, restore_searcher
from search.space import FloatRange, IntRange, Space, grid_points

__all__ = [
    "SEARCHER_OPTIONS",
    "CompletedTrial",
    "FloatRange",
    "IntRange",
    "Interleaver",
    "Outcome",
    "RebuildMismatch",
    "RecordedTrial",
    "SeededSearcher",
    "Space",
    "Suggestion",
    "TrialKey",
    "grid_points",
    "make_searcher",
    "rebuild_searcher",
    "restore_searcher",
]
