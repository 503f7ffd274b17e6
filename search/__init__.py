"""Seeded, strategy-agnostic searchers (Bayesian optimization, random, grid).

The Tune-free core lives in `search.core` (ask / tell / finished, save / restore,
rebuild); `search.registry.make_searcher` builds one; `search.interleave` runs several
seeds side by side; `search.tune_searcher` (the only module importing Ray) adapts them
to Ray Tune. Importing this package does not import Ray.

Bayesian suggestions are computed in a `search.pool.SuggestionPool`: processes on the
driver's host with pinned numerics (`search.pinned`), so that the same seed gives the
same trials on every x86-64 CPU; the pool's `platform` is what an ensemble records and
`platform_differences` compares on resume.
"""

from search.core import Outcome, RebuildMismatch, RecordedTrial, SeededSearcher, Suggestion
from search.interleave import CompletedTrial, Interleaver, TrialKey
from search.pinned import PINNED_ENV, platform_differences
from search.pool import SuggestionError, SuggestionPool, default_pool_size
from search.registry import (
    PLATFORM_DEPENDENT_KINDS,
    SEARCHER_OPTIONS,
    make_searcher,
    rebuild_searcher,
    rebuild_searchers,
    restore_searcher,
)
from search.space import FloatRange, IntRange, Space, grid_points

__all__ = [
    "PINNED_ENV",
    "PLATFORM_DEPENDENT_KINDS",
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
    "SuggestionError",
    "SuggestionPool",
    "TrialKey",
    "default_pool_size",
    "grid_points",
    "make_searcher",
    "platform_differences",
    "rebuild_searcher",
    "rebuild_searchers",
    "restore_searcher",
]
