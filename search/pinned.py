"""The pinned numeric environment of the processes that compute Bayesian suggestions.

Why a pin: the Bayesian searcher's GP (Cholesky factors, matrix products, `exp` over
arrays) runs through numpy's and OpenBLAS's compute kernels, and both choose those
kernels at run time from the CPU they find: numpy dispatches SIMD loops (AVX2,
AVX-512, ...) above the baseline it was built for, and OpenBLAS picks kernels and
blocking for the core type it detects. Different kernels round differently in the
last bit (~1e-16 relative), the first model-chosen trial then differs, and the
sequences diverge from there. The same seed would give other trials on a laptop, on a
cluster head with another CPU, or on resume after moving the driver, breaking the
promise that a (spec, seed) gives the same records everywhere.

What is pinned (`PINNED_ENV`), in the environment of each suggestion process before
numpy, scipy or scikit-learn load (both libraries read it only when they load, which
is why the suggestions need processes of their own, `search.pool`):
- `NPY_DISABLE_CPU_FEATURES` lists every feature numpy 2.4 dispatches above its
  x86-64 baseline (X86_V2): numpy then runs its baseline loops on every CPU. A CPU
  without a listed feature is unaffected (disabling what is absent is a no-op).
  `NPY_ENABLE_CPU_FEATURES`, which numpy refuses beside it, is removed.
- `OPENBLAS_CORETYPE=Nehalem` for both OpenBLAS builds loaded (numpy's and scipy's):
  OpenBLAS uses that core type's kernels instead of detecting the CPU. Nehalem's
  kernels need SSE4.2 at most, which numpy's own baseline already requires, so every
  CPU that runs numpy runs them; and unlike the older core types (Prescott, Core2,
  Penryn, Dunnington, Opteron), whose matrix blocking OpenBLAS derives from the L2
  cache size the CPU reports, Nehalem's blocking is a constant of the build.
- One thread for OpenBLAS, OpenMP and MKL: a parallel reduction's order, hence its
  last bits, would depend on the thread count.

A user environment that sets `OPENBLAS_CORETYPE` for a processor's sake (OpenBLAS
mis-detecting a new CPU, or a hypervisor hiding features it reports) still works: the
pin replaces that value in the suggestion processes only, and it is safe there for the
same reason as everywhere: Nehalem's kernels ask for nothing beyond what numpy needs,
and a forced core type skips the detection that setting worked around. The driver and
the trials keep the user's value.

What cannot be pinned is recorded: `numeric_platform()` describes the architecture,
the pinned settings and the builds of the libraries that decide a suggestion's bits
(numpy, scipy, scikit-learn, bayesian-optimization, the two OpenBLAS builds and the C
library, whose `exp` numpy's baseline loops call). `platform_differences(recorded,
current)` names what changed, so that resuming or re-running an ensemble elsewhere can
refuse instead of silently continuing with other suggestions. Random and grid search
do not depend on any of this.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from importlib import metadata
from types import MappingProxyType
from typing import Any

# numpy 2.4's dispatched x86-64 features above its baseline (X86_V2), as
# numpy._core._multiarray_umath.__cpu_dispatch__ lists them; `pin_problems` checks
# that none is left enabled, so a numpy that dispatches more is caught.
NPY_DISPATCHED_FEATURES = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
OPENBLAS_CORE = "Nehalem"

PINNED_ENV: Mapping[str, str] = MappingProxyType(
    {
        "NPY_DISABLE_CPU_FEATURES": NPY_DISPATCHED_FEATURES,
        "OPENBLAS_CORETYPE": OPENBLAS_CORE,
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
)
# numpy refuses to load with both this and NPY_DISABLE_CPU_FEATURES set.
REMOVED_ENV = ("NPY_ENABLE_CPU_FEATURES",)

# The distributions whose builds decide a Bayesian suggestion's bits.
SUGGESTION_LIBRARIES = ("numpy", "scipy", "scikit-learn", "bayesian-optimization")


def pinned_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the pin applied: the values of
    `PINNED_ENV` replace any the user set, and `REMOVED_ENV` is dropped."""
    env = dict(os.environ if base is None else base)
    for name in REMOVED_ENV:
        env.pop(name, None)
    env.update(PINNED_ENV)
    return env


def pin_problems() -> list[str]:
    """Why this process's numerics are not the pinned ones (empty when they are).

    Call it after numpy and scipy have loaded: it reads what they actually use
    (numpy's enabled dispatch targets; each OpenBLAS's core type and thread count).
    """
    import numpy  # noqa: F401  (loads the libraries the check reads)
    import scipy.linalg  # noqa: F401
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    from threadpoolctl import threadpool_info

    problems = []
    for name, value in PINNED_ENV.items():
        if os.environ.get(name) != value:
            problems.append(f"{name} is {os.environ.get(name)!r}, not {value!r}")
    enabled = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    if enabled:
        problems.append(f"numpy dispatches {', '.join(enabled)} above its baseline")
    for library in threadpool_info():
        if library.get("internal_api") == "openblas":
            core = library.get("architecture")
            if core != OPENBLAS_CORE:
                problems.append(f"OpenBLAS {library['filepath']} uses core type {core!r}")
        if library.get("num_threads") != 1:
            problems.append(f"{library['filepath']} runs {library.get('num_threads')} threads")
    return problems


def _build(distribution: str) -> str:
    """Version and wheel tags of an installed distribution ("2.4.6 cp311-cp311-...")."""
    dist = metadata.distribution(distribution)
    wheel = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")]
    return f"{dist.version} {'.'.join(tags) or 'no wheel tag'}"


def _blas(config: Any) -> str:
    """The BLAS a numpy/scipy build links, from its `show_config(mode="dicts")`."""
    if not isinstance(config, dict):
        return "unknown"
    blas = config.get("Build Dependencies", {}).get("blas", {})
    detail = blas.get("openblas configuration") or ""
    return f"{blas.get('name', '?')} {blas.get('version', '?')} {detail}".strip()


def numeric_platform() -> dict[str, Any]:
    """What decides a Bayesian suggestion's bits beyond (space, seed, options,
    outcomes), as this process sees it; JSON-able, to be recorded with an ensemble.

    Meaningful in a pinned suggestion process: the driver records the description its
    `search.pool.SuggestionPool` reports (`pool.platform`), not its own.
    """
    import numpy
    import scipy

    libc, libc_version = platform.libc_ver()
    return {
        "architecture": platform.machine(),
        "pinned": {name: os.environ.get(name) for name in PINNED_ENV},
        "libraries": {
            **{name: _build(name) for name in SUGGESTION_LIBRARIES},
            "numpy BLAS": _blas(numpy.show_config(mode="dicts")),
            "scipy BLAS": _blas(scipy.show_config(mode="dicts")),
            "C library": f"{libc} {libc_version}".strip() or "unknown",
        },
    }


def _shown(value: object) -> str:
    return "absent" if value is None else repr(value)


def platform_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Each difference between two `numeric_platform()` descriptions, one line each
    ("OPENBLAS_CORETYPE (pinned setting): recorded 'Nehalem', now 'Haswell'"); empty
    when the same suggestions follow from the same inputs on both."""
    differences = []
    if recorded.get("architecture") != current.get("architecture"):
        differences.append(
            f"architecture: recorded {_shown(recorded.get('architecture'))}, "
            f"now {_shown(current.get('architecture'))}"
        )
    for group, what in (("pinned", "pinned setting"), ("libraries", "library build")):
        old, new = recorded.get(group) or {}, current.get(group) or {}
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                differences.append(
                    f"{name} ({what}): recorded {_shown(old.get(name))}, "
                    f"now {_shown(new.get(name))}"
                )
    return differences
