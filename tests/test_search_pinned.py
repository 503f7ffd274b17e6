"""The pinned numerics of the suggestion processes: the pin, the platform record, and
simulated CPUs that must all give one Bayesian sequence.

The simulated-CPU test starts a driver (tests/cpu_simulation_driver.py) under several
CPU simulations: `OPENBLAS_CORETYPE` values and `NPY_DISABLE_CPU_FEATURES` subsets that
this CPU can run (read from /proc/cpuinfo; a core type whose instructions it lacks
would crash, e.g. SkylakeX without AVX-512). Pinned, every simulation must give the
same sequences bit for bit. The same drivers with the pool's test-only unpinned switch
show that the simulations really differ, so the first test would catch a lost pin; on
a CPU where they do not differ, the control skips and says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from search.pinned import (
    NPY_DISPATCHED_FEATURES,
    PINNED_ENV,
    REMOVED_ENV,
    pinned_environment,
    platform_differences,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "cpu_simulation_driver.py"
ALL_DISPATCHED = NPY_DISPATCHED_FEATURES


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


# -- simulated CPUs ----------------------------------------------------------------------
def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_simulations(flags: set[str]) -> dict[str, dict[str, str]]:
    """Up to three environments that make numpy and OpenBLAS behave as on other CPUs,
    each one this CPU can run: as detected, then the most distant older classes."""
    simulations: dict[str, dict[str, str]] = {"as detected": {}}
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"} <= flags:
        simulations["Skylake-X class"] = {
            "OPENBLAS_CORETYPE": "SkylakeX",
            "NPY_DISABLE_CPU_FEATURES": "AVX512_ICL AVX512_SPR",
        }
    if "avx" in flags:
        simulations["Sandy Bridge class"] = {
            "OPENBLAS_CORETYPE": "Sandybridge",
            "NPY_DISABLE_CPU_FEATURES": ALL_DISPATCHED,
        }
    if {"ssse3", "sse4_2"} <= flags:  # OpenBLAS's Core2 kernels; blocking from the L2 size
        simulations["Core 2 class"] = {
            "OPENBLAS_CORETYPE": "Core2",
            "NPY_DISABLE_CPU_FEATURES": ALL_DISPATCHED,
        }
    return dict(list(simulations.items())[:3])


def _simulated_environment(simulation: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", *REMOVED_ENV):
        env.pop(name, None)
    env.update(simulation)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _drive(simulation: dict[str, str], control: bool) -> dict:
    arguments = [sys.executable, str(DRIVER), *(["--unpinned-control"] if control else [])]
    done = subprocess.run(
        arguments,
        env=_simulated_environment(simulation),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def simulations() -> dict[str, dict[str, str]]:
    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo: cannot tell which CPU simulations this CPU runs")
    found = cpu_simulations(cpu_flags())
    assert len(found) >= 3, f"only {sorted(found)} can run on this CPU"
    return found


@pytest.fixture(scope="module")
def pinned_runs(simulations) -> dict[str, dict]:
    return {name: _drive(env, control=False) for name, env in simulations.items()}


@pytest.mark.slow
def test_every_simulated_cpu_gives_the_same_sequences_when_pinned(pinned_runs):
    (first_name, first), *others = pinned_runs.items()
    assert len(first["sequences"]) == 6  # 3 seeds x batch sizes 1 and 4
    assert all(len(sequence) == 60 for sequence in first["sequences"].values())
    for name, run in others:
        for key, sequence in first["sequences"].items():
            assert run["sequences"][key] == sequence, f"{name} differs from {first_name}: {key}"
        # The simulated settings never reach the suggestion processes.
        assert platform_differences(first["platform"], run["platform"]) == []


@pytest.mark.slow
def test_without_the_pin_the_simulated_cpus_disagree(simulations, pinned_runs):
    # The control proves the test above can fail: the same drivers, unpinned.
    control = {name: _drive(env, control=True) for name, env in simulations.items()}
    distinct = {json.dumps(run["sequences"], sort_keys=True) for run in control.values()}
    if len(distinct) == 1:
        pytest.skip(
            "the unpinned control gave identical sequences under every simulation on this "
            f"CPU ({', '.join(simulations)}): here the pinned test cannot show that it "
            "would catch a lost pin"
        )
    differing = [
        name
        for name, run in control.items()
        if run["sequences"] != control["as detected"]["sequences"]
    ]
    assert differing, "expected some simulation to differ from the CPU as detected"
    print(f"unpinned, these differ from the CPU as detected: {differing}")
