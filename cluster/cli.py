"""`python -m cluster <command> ...`: a registry of subcommands.

A command is a module with `HELP` (one line), `add_arguments(parser)` and
`run(args) -> int` (the exit code). Modules keep heavy imports inside `run`, so that
building the parser for `--help` stays fast. To add a command, add one line to
`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from cluster.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID_INPUT,
    Failed,
    Interrupted,
    InvalidInput,
)

# Set to see the traceback of an unexpected error (a bug); users get one line.
DEBUG = "REPROTUNE_DEBUG"

COMMANDS: dict[str, str] = {
    "run": "cluster.job.command_run",
    "resume": "cluster.job.command_resume",
    "verify": "cluster.job.command_verify",
    "report": "cluster.report.command",
    "data": "cluster.candles.command",
    "list": "cluster.records.command_list",
    "show": "cluster.records.command_show",
    "export": "cluster.records.command_export",
    "psql": "cluster.records.command_psql",
    "backtest": "cluster.backtest_command",
}


def _load(module_name: str) -> ModuleType:
    module = importlib.import_module(module_name)
    for attribute in ("HELP", "add_arguments", "run"):
        if not hasattr(module, attribute):
            raise TypeError(f"command module {module_name} has no {attribute}")
    return module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cluster",
        description="reprotune: reproducible, distributed strategy optimization on Ray.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (argparse exits 2 itself on a usage error).

    Output into a pipe whose reader is gone (`... | head`) ends the command quietly
    with exit code 1: no traceback, no message.
    """
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # here, not at exit, where a closed pipe could not be caught
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_FAILED
    except SystemExit:  # argparse's --help and usage errors
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _discard_stdout()
        raise


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (a test's capture)
        pass


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except BrokenPipeError:
        raise
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except Interrupted as error:
        print(f"interrupted (resumable): {error}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Failed as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the last line of defence: a bug in this program
        if os.environ.get(DEBUG):
            traceback.print_exc()
        text = " ".join(str(error).split())
        print(
            f"error: unexpected {type(error).__name__}{': ' if text else ''}{text[:500]} "
            f"(a bug in reprotune; {DEBUG}=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_FAILED
