"""The pinned numerics of the suggestion processes: the pin and the platform record."""

from __future__ import annotations

import json

import pytest

from search.pinned import (
    NPY_DISPATCHED_FEATURES,
    PINNED_ENV,
    REMOVED_ENV,
    pinned_environment,
    platform_differences,
)


# -- the pin and the platform record, as functions --------------------------------------
def test_the_pin_disables_every_feature_numpy_dispatches_here():
    from numpy._core._multiarray_umath import __cpu_dispatch__

    assert set(__cpu_dispatch__) <= set(NPY_DISPATCHED_FEATURES.split())


def test_the_pin_replaces_a_users_core_type_and_keeps_the_rest():
    user = {
        "OPENBLAS_CORETYPE": "Haswell",  # set for a processor OpenBLAS mis-detects
        "NPY_ENABLE_CPU_FEATURES": "X86_V3",  # numpy refuses it beside the pin
        "PATH": "/usr/bin",
        "DATABASE_URL": "postgresql://db",
    }
    env = pinned_environment(user)
    assert {name: env[name] for name in PINNED_ENV} == dict(PINNED_ENV)
    assert env["OPENBLAS_CORETYPE"] == "Nehalem"
    assert all(name not in env for name in REMOVED_ENV)
    assert env["PATH"] == "/usr/bin" and env["DATABASE_URL"] == "postgresql://db"
    assert user["OPENBLAS_CORETYPE"] == "Haswell"  # the caller's mapping is untouched


RECORDED = {
    "architecture": "x86_64",
    "pinned": dict(PINNED_ENV),
    "libraries": {
        "numpy": "2.4.6 cp311-cp311-manylinux_2_28_x86_64",
        "scipy": "1.17.1 cp311-cp311-manylinux_2_28_x86_64",
        "numpy BLAS": "scipy-openblas 0.3.31.188.0",
        "C library": "glibc 2.36",
    },
}


def _changed(**groups):
    changed = json.loads(json.dumps(RECORDED))
    for group, values in groups.items():
        if isinstance(values, dict):
            for name, value in values.items():
                if value is None:
                    changed[group].pop(name)
                else:
                    changed[group][name] = value
        else:
            changed[group] = values
    return changed


def test_the_same_platform_has_no_differences():
    assert platform_differences(RECORDED, json.loads(json.dumps(RECORDED))) == []


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (_changed(architecture="aarch64"), ["architecture: recorded 'x86_64', now 'aarch64'"]),
        (
            _changed(pinned={"OPENBLAS_CORETYPE": "Haswell"}),
            ["OPENBLAS_CORETYPE (pinned setting): recorded 'Nehalem', now 'Haswell'"],
        ),
        (
            _changed(pinned={"MKL_NUM_THREADS": None}),
            ["MKL_NUM_THREADS (pinned setting): recorded '1', now absent"],
        ),
        (
            _changed(libraries={"numpy": "2.4.7 cp311-cp311-manylinux_2_28_x86_64"}),
            [
                "numpy (library build): recorded '2.4.6 cp311-cp311-manylinux_2_28_x86_64', "
                "now '2.4.7 cp311-cp311-manylinux_2_28_x86_64'"
            ],
        ),
        (
            _changed(libraries={"C library": "glibc 2.39", "scikit-learn": "1.9.1 x"}),
            [
                "C library (library build): recorded 'glibc 2.36', now 'glibc 2.39'",
                "scikit-learn (library build): recorded absent, now '1.9.1 x'",
            ],
        ),
    ],
)
def test_each_difference_is_named(current, expected):
    assert platform_differences(RECORDED, current) == expected
