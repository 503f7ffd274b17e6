"""What decides the bits of a trial record, so that records can say what made them.

`RECORDS_VERSION` is part of every spec_id (DESIGN.md, contract 1). Bump it in the same
commit as any change that can alter a trial record (strategy, metrics, searchers, data
cleaning), and say in the commit message that records change.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

RECORDS_VERSION = 3

# Distributions whose builds decide result bits: the kernel (numpy, numba, llvmlite),
# the searchers (bayesian-optimization, scikit-learn, scipy, numpy's BLAS), the data
# (pyarrow, ccxt's parsing, pandas) and the orchestration that feeds them (ray).
BIT_DECIDING = (
    "numpy",
    "numba",
    "llvmlite",
    "scipy",
    "scikit-learn",
    "bayesian-optimization",
    "pyarrow",
    "pandas",
    "ccxt",
    "ray",
)

LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements.lock"


def installed_versions(names: tuple[str, ...] = BIT_DECIDING) -> dict[str, str]:
    """Installed version of each distribution, by its canonical (lower-case) name."""
    return {name: metadata.version(name) for name in names}


def locked_versions(lock_file: Path = LOCK_FILE) -> dict[str, str]:
    """`name==version` pins of a requirements lock file, by canonical name."""
    pins: dict[str, str] = {}
    for line in lock_file.read_text().splitlines():
        line = line.strip()
        if "==" not in line or line.startswith("#"):
            continue
        requirement = line.split(";")[0].split("\\")[0].strip()
        name, version = requirement.split("==", 1)
        name = name.split("[")[0].strip().lower().replace("_", "-")
        pins[name] = version.strip()
    return pins


def host_description() -> dict[str, str]:
    """The host facts recorded beside the versions: CPU, BLAS build, Python."""
    import numpy as np

    blas = "unknown"
    config = np.show_config(mode="dicts")
    if isinstance(config, dict):
        blas_info = config.get("Build Dependencies", {}).get("blas", {})
        blas = f"{blas_info.get('name', '?')} {blas_info.get('version', '?')}"
    return {
        "machine": platform.machine(),
        "processor": cpu_model(),
        "python": platform.python_version(),
        "blas": blas,
    }


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo, else what `platform` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
