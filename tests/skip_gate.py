"""No silent skips in CI: with CI=true, a skipped test fails the run unless it is listed.

A test that skips is green, so a CI run where the database, the data or a tool went
missing would stay green while proving nothing. With `CI=true` in the environment
(.ci/run sets it), every skip (a `pytest.skip` in a test or fixture, a `skipif`, a
module-level skip, and an xfail, which proves nothing either) is collected, and the run
fails with exit code 1 when any of them is not matched by an entry of
tests/allowed_skips.txt. Without CI=true nothing changes: a developer's machine may
lack Debian's PostgreSQL or ../shared/data, and `-ra` lists what skipped.

The allow-list has one entry per line: a test node id (where `*` matches any run of
characters), then ` -- `, then why it may skip in CI. An entry without a reason is an
error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWED_SKIPS = Path(__file__).resolve().parent / "allowed_skips.txt"
SEPARATOR = " -- "


@dataclass(frozen=True)
class AllowedSkip:
    pattern: str
    reason: str

    def matches(self, nodeid: str) -> bool:
        # Only `*` is special: node ids are full of brackets (parameter ids).
        regex = ".*".join(re.escape(part) for part in self.pattern.split("*"))
        return re.fullmatch(regex, nodeid) is not None


def read_allow_list(path: Path) -> list[AllowedSkip]:
    """The entries of an allow-list file; ValueError naming each line without a reason."""
    entries, problems = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        pattern, _, reason = text.partition(SEPARATOR)
        if not pattern.strip() or not reason.strip():
            problems.append(f"{path.name}:{number}: needs 'node id{SEPARATOR}reason': {text!r}")
            continue
        entries.append(AllowedSkip(pattern.strip(), reason.strip()))
    if problems:
        raise ValueError("; ".join(problems))
    return entries


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class SkipGate:
    """The pytest plugin that collects skips and fails the session on unlisted ones."""

    def __init__(self, allowed: list[AllowedSkip], source: str) -> None:
        self.allowed = allowed
        self.source = source
        self.skipped: dict[str, str] = {}

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped:
            return
        if hasattr(report, "wasxfail"):
            self.skipped[report.nodeid] = f"xfail: {report.wasxfail}"
            return
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        self.skipped[report.nodeid] = reason

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)

    def unlisted(self) -> dict[str, str]:
        return {
            nodeid: reason
            for nodeid, reason in self.skipped.items()
            if not any(entry.matches(nodeid) for entry in self.allowed)
        }

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.unlisted() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        unlisted = self.unlisted()
        if not unlisted:
            return
        terminalreporter.section("skips not allowed in CI", red=True, bold=True)
        for nodeid, reason in unlisted.items():
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(
            f"CI=true: {len(unlisted)} test(s) skipped without an entry in {self.source}. "
            "Make them run (install what they need), or list them there with the reason."
        )


def configure(config: pytest.Config, allow_list: Path = ALLOWED_SKIPS) -> None:
    """Register the gate when CI=true (call from pytest_configure)."""
    if not in_ci():
        return
    try:
        allowed = read_allow_list(allow_list)
    except (OSError, ValueError) as problem:
        raise pytest.UsageError(f"the CI skip allow-list is unusable: {problem}") from None
    config.pluginmanager.register(SkipGate(allowed, allow_list.name), "reprotune-skip-gate")
