"""Errors that decide the command's exit code (DESIGN.md, contract 6).

Exit codes: 0 done; 2 invalid input; 3 interrupted, resumable; 1 anything else.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_INTERRUPTED = 3


class InvalidInput(ValueError):
    """Input (a job spec, a seed list, a dataset, an argument) is wrong.

    Raised before anything is scheduled or written. Carries every problem found, each
    naming the field or row at fault, so that one run reports them all.
    """

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if not self.problems:
            raise ValueError("InvalidInput needs at least one problem")
        super().__init__("; ".join(self.problems))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return "\n".join(["invalid input:", *(f"  - {p}" for p in self.problems)])


class Interrupted(RuntimeError):
    """The run stopped before it finished, and can be resumed (exit code 3)."""


class Failed(RuntimeError):
    """A failure that is neither bad input nor resumable, and not a bug in this program
    (e.g. a resume found that the code no longer reproduces its records): one line on
    stderr, exit code 1, no traceback."""
