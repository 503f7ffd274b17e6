"""numba compilation for the kernel, with an on-disk cache keyed by the kernel's content.

Why not numba's own `cache=True`: it stores compiled code next to the source file (or,
with NUMBA_CACHE_DIR, under a hash of the source's directory). `ray job submit
--working-dir` unpacks the project to a new directory for every job, so a Tune worker
importing the kernel from there would find no cache and compile cold (several seconds,
bench/RESULTS.md) in every worker process of every job. numba also keys a cached
function only on its own file, so a change in a callee in another kernel module would
not invalidate its callers.

What this module does instead: every kernel function is compiled with `kernel`, whose
cache lives in one directory per *content* of the kernel: `<base>/<key>`, where `key` is
a sha256 of the source bytes of every module in `KERNEL_MODULES` (and numba's version).
The same code therefore finds the same cache from any path, and any edit to any kernel
module starts a fresh cache. numba's index still keys each entry by signature, bytecode
and the target CPU (name and features), so a cache built on one CPU is never loaded on
another and `NUMBA_CPU_NAME=generic` builds have entries of their own.

`<base>` is `NUMBA_CACHE_DIR` when set (tests use a private one), else
`$XDG_CACHE_HOME/reprotune/numba` (default `~/.cache/reprotune/numba`). When it is not
writable, numba's own locators take over (a cold compile at worst, never a wrong result).

Bits: no fastmath, no parallel, `error_model="numpy"` (no ZeroDivisionError checks: the
kernel's divisors are positive by construction, see `trainable.backtest`). Compiled
code is the same function whether loaded from the cache or compiled afresh.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numba
from numba.core import caching, config

PACKAGE_DIR = Path(__file__).resolve().parent

# Modules whose functions are compiled with `kernel`; together they key the cache.
KERNEL_MODULES = ("jit", "signals", "engine", "metrics")

F = TypeVar("F", bound=Callable[..., Any])


def _content_key() -> str:
    digest = hashlib.sha256(f"numba {numba.__version__}\n".encode())
    for name in KERNEL_MODULES:
        source = (PACKAGE_DIR / f"{name}.py").read_bytes()
        digest.update(f"{name} {len(source)}\n".encode())
        digest.update(source)
    return digest.hexdigest()[:24]


CONTENT_KEY = _content_key()


def cache_base_dir() -> Path:
    """Where kernel caches live (one subdirectory per CONTENT_KEY)."""
    configured = getattr(config, "CACHE_DIR", "")  # NUMBA_CACHE_DIR
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg) if xdg else Path.home() / ".cache"
    return root / "reprotune" / "numba"


def cache_dir() -> Path:
    """This kernel's cache directory: the same for the same kernel source, from any path."""
    return cache_base_dir() / CONTENT_KEY


class ContentKeyedLocator(caching._CacheLocator):
    """numba cache locator for kernel functions: path and freshness from CONTENT_KEY."""

    def __init__(self, py_func: Callable[..., Any], py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_dir())

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> str:
        return CONTENT_KEY

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Callable[..., Any], py_file: str) -> ContentKeyedLocator | None:
        if Path(py_file).resolve().parent != PACKAGE_DIR:
            return None
        locator = cls(py_func, py_file)
        try:
            locator.ensure_cache_path()
        except OSError:
            return None
        return locator


class _ContentKeyedImpl(caching.CompileResultCacheImpl):
    _locator_classes = [  # noqa: RUF012 (numba's own class attribute, read only)
        ContentKeyedLocator,
        *caching.CacheImpl._locator_classes,
    ]


class _ContentKeyedCache(caching.FunctionCache):
    _impl_class = _ContentKeyedImpl


def kernel(function: F) -> F:
    """Compile `function` in nopython mode with the content-keyed on-disk cache."""
    module = function.__module__.rsplit(".", 1)[-1]
    if module not in KERNEL_MODULES:
        raise TypeError(f"{function.__module__} is not listed in KERNEL_MODULES")
    dispatcher = numba.njit(cache=False, error_model="numpy")(function)
    # numba 0.68 has no public hook for a per-function locator; `cache=True` would set
    # `_cache = FunctionCache(py_func)`, and this is the same with our locator first.
    dispatcher._cache = _ContentKeyedCache(function)  # type: ignore[attr-defined]
    return cast(F, dispatcher)
