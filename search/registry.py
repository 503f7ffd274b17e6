"""`make_searcher(kind, ...)`: the one way to build a searcher from a job's settings.

`pool` (a `search.pool.SuggestionPool`) is where the Bayesian searcher computes its
model batches; pass the driver's pool to every searcher of an ensemble (the other kinds
ignore it). It is execution-only: never an option, never part of a job's identity.
`rebuild_searchers` rebuilds every seed of an ensemble from its records, with the
seeds' current batches computed in the pool at once.

Unknown kinds and unknown options are refused with a did-you-mean hint (Ray's own
factory silently drops a misspelt option); option values are checked by the searcher's
constructor. `SEARCHER_OPTIONS` publishes each kind's options and defaults as data for
job-spec validation, the resolved spec (its identity) and the docs.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from search.bayesian import DEFAULTS as BAYESIAN_DEFAULTS
from search.bayesian import BayesianSearcher
from search.core import ComputePool, RecordedTrial, SeededSearcher
from search.grid import DEFAULT_POINTS, GridSearcher
from search.random_search import RandomSearcher
from search.space import Space

SEARCHERS: Mapping[str, type[SeededSearcher]] = MappingProxyType(
    {"bayesian": BayesianSearcher, "random": RandomSearcher, "grid": GridSearcher}
)

# kind -> option -> default. Every option a kind accepts is listed; a job spec that
# leaves one out gets this default (fill them in before hashing a spec; take a copy
# with `searcher_defaults`).
SEARCHER_OPTIONS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "bayesian": MappingProxyType(dict(BAYESIAN_DEFAULTS)),
        "random": MappingProxyType({}),
        "grid": MappingProxyType({"points": DEFAULT_POINTS, "values": {}}),
    }
)

# Kinds whose suggestions depend on the numeric platform (`search.pinned`): an
# ensemble of these records `SuggestionPool.platform`, and resume / verify compare it.
PLATFORM_DEPENDENT_KINDS: frozenset[str] = frozenset({"bayesian"})

OPTION_HELP: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "bayesian": MappingProxyType(
            {
                "n_initial": "random points before the model is used (trials 0..n_initial-1)",
                "batch_size": "trials per model batch; each batch sees every earlier outcome",
                "acquisition": "'ei' (expected improvement) or 'ucb' (upper confidence bound)",
                "xi": "EI's exploration margin, in standard deviations of observed scores",
                "kappa": "UCB's exploration weight (standardized scores)",
                "liar": "constant lie for pending points of a batch: 'min', 'mean', 'max'",
                "n_random": "random samples of the acquisition per suggestion",
                "n_smart": "L-BFGS-B starts (the best random samples) per suggestion",
            }
        ),
        "random": MappingProxyType({}),
        "grid": MappingProxyType(
            {
                "points": "evenly spaced points per parameter, ends included (ints deduped)",
                "values": "explicit grid values per parameter name (override points)",
            }
        ),
    }
)


def searcher_defaults(kind: str) -> dict[str, Any]:
    """A fresh, mutable copy of `kind`'s options and defaults (for a resolved job spec)."""
    return copy.deepcopy(dict(SEARCHER_OPTIONS[kind]))


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def option_problems(kind: str, options: Mapping[str, Any]) -> list[str]:
    """Unknown kind or option names, each with a hint; empty when all are known."""
    if kind not in SEARCHERS:
        return [
            f"unknown searcher {kind!r}{_did_you_mean(str(kind), list(SEARCHERS))}; "
            f"choose one of {', '.join(SEARCHERS)}"
        ]
    known = list(SEARCHER_OPTIONS[kind])
    return [
        f"unknown option {name!r} for the {kind} searcher{_did_you_mean(name, known)}; "
        f"its options are: {', '.join(known) or 'none'}"
        for name in options
        if name not in known
    ]


def make_searcher(
    kind: str,
    *,
    space: Space,
    seed: int,
    iterations: int,
    invalid_score: float,
    pool: ComputePool | None = None,
    **options: Any,
) -> SeededSearcher:
    """A new searcher of `kind`; raises ValueError naming every bad kind/option."""
    problems = option_problems(kind, options)
    if problems:
        raise ValueError("; ".join(problems))
    return SEARCHERS[kind](
        space, seed=seed, iterations=iterations, invalid_score=invalid_score, pool=pool,
        **options,
    )  # fmt: skip


def rebuild_searcher(
    kind: str,
    *,
    space: Space,
    seed: int,
    iterations: int,
    invalid_score: float,
    recorded: Mapping[int, RecordedTrial],
    pool: ComputePool | None = None,
    **options: Any,
) -> SeededSearcher:
    """`make_searcher`, continued from recorded trials (see `SeededSearcher.rebuild`)."""
    problems = option_problems(kind, options)
    if problems:
        raise ValueError("; ".join(problems))
    return SEARCHERS[kind].rebuild(
        space,
        seed=seed,
        iterations=iterations,
        invalid_score=invalid_score,
        recorded=recorded,
        pool=pool,
        **options,
    )


def rebuild_searchers(
    kind: str,
    *,
    space: Space,
    iterations: int,
    invalid_score: float,
    recorded: Mapping[int, Mapping[int, RecordedTrial]],
    pool: ComputePool | None = None,
    **options: Any,
) -> dict[int, SeededSearcher]:
    """`rebuild_searcher` for every seed of `recorded` (seed -> trial_index -> record).

    The same searchers as one `rebuild_searcher` per seed, but with a pool every
    seed's current batch is submitted before any is waited for, so they compute at
    once. Raises `RebuildMismatch` for the first seed whose records differ.
    """
    problems = option_problems(kind, options)
    if problems:
        raise ValueError("; ".join(problems))
    searchers: dict[int, SeededSearcher] = {}
    for seed, trials in recorded.items():
        searcher = SEARCHERS[kind](
            space, seed=seed, iterations=iterations, invalid_score=invalid_score, pool=pool,
            **options,
        )  # fmt: skip
        searcher._load_history(trials)
        searchers[seed] = searcher
    for seed, searcher in searchers.items():
        searcher._replay(recorded[seed])
    return searchers


def restore_searcher(state: Mapping[str, Any], pool: ComputePool | None = None) -> SeededSearcher:
    """A searcher from its `save()` state, whatever its kind (`pool` as in make_searcher)."""
    kind = str(state.get("kind"))
    if kind not in SEARCHERS:
        raise ValueError(f"saved state of an unknown searcher kind {kind!r}")
    return SEARCHERS[kind].restore(state, pool=pool)
