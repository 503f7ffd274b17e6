"""A run's suggestion processes and its numeric platform.

The Bayesian searcher's suggestions depend on the CPU's numerics: its batches are
computed in pinned processes (search.pool.SuggestionPool), whose numeric platform is
recorded with the run and, on a resume or rerun, must equal the ensemble's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cluster.errors import InvalidInput
from cluster.job.spec import JobSpec
from search.registry import PLATFORM_DEPENDENT_KINDS

if TYPE_CHECKING:
    from cluster.job.driver import RunOptions
    from search.pool import SuggestionPool


@contextmanager
def suggestion_pool(spec: JobSpec, settings: RunOptions) -> Iterator[SuggestionPool | None]:
    """The pinned suggestion processes of a job whose searcher's bits depend on the
    CPU (the Bayesian one); None for the others."""
    if spec.searcher not in PLATFORM_DEPENDENT_KINDS:
        yield None
        return
    from search.pool import SuggestionPool

    size = settings.suggestion_processes or spec.execution.suggestion_processes
    with SuggestionPool(size) as pool:
        yield pool


def platform_changed(
    spec: JobSpec,
    expected: Mapping[str, Any] | None,
    platform: Mapping[str, Any],
    allowed: bool,
) -> bool:
    """Whether this run's numeric platform differs from the ensemble's; InvalidInput
    naming each difference unless that is `allowed`. Only the Bayesian searcher's
    suggestions depend on it."""
    if spec.searcher not in PLATFORM_DEPENDENT_KINDS or not expected:
        return False
    from search.pinned import platform_differences

    differences = platform_differences(expected, platform)
    if differences and not allowed:
        raise InvalidInput(
            [
                "this machine's numeric platform differs from the one the ensemble's "
                "Bayesian suggestions were computed on, so they would not be reproduced:",
                *differences,
                "--allow-platform-change proceeds anyway (and records that it did)",
            ]
        )
    return bool(differences)
