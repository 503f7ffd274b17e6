"""Fuzzing the job-spec parser and every command's argument handling (Hypothesis, a
bounded number of examples each): whatever comes in, the answer is a spec or a refusal
naming problems, and a command ends with an exit code and never a traceback.

The commands run in this process against a database nobody listens on (so that every
records command fails fast, exit 1) and an exchange URL nobody listens on, in a
private REPROTUNE_HOME; a generated command line can therefore reach real work only
where that work is cheap (a backtest of the committed fixture, a small synthetic
dataset). Tokens come from each command's own options plus values chosen to go past
argparse: real exchanges and pairs, job files that are wrong in depth, candle files.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURE_CANDLES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import BASE, leaves

from cluster.cli import build_parser, main
from cluster.errors import InvalidInput
from cluster.job.parse import load_job_file, parse_job
from cluster.job.spec import JobSpec

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    database=None,
)  # fmt: skip
NOWHERE_DB = "postgresql://fuzz@127.0.0.1:9/fuzz"
NOWHERE_API = "http://127.0.0.1:9/api/v3"

# --- the job-spec parser ------------------------------------------------------------------

scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(-3, 30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["bayesian", "random", "grid", "synthetic", "parquet", "ccxt", "5m", "1h",
                     "fill", "reject", "toy_quadratic", "key_level_reversal", "2024-01-01"]),
    st.booleans(),
    st.dates(),
    st.datetimes(timezones=st.just(dt.UTC)),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
PATHS = [
    *leaves(BASE), ("bogus",), ("data", "path"), ("data", "end"), ("data", "last_candles"),
    ("data", "exchange"), ("data", "pair"), ("searcher", "points"), ("searcher", "values"),
    ("searcher", "acquisition"), ("searcher", "liar"), ("strategy", "space", "k"),
]  # fmt: skip
DELETE = object()


def mutated(mutations: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    table: dict[str, Any] = _copy(BASE)
    for path, value in mutations:
        parent: Any = table
        for key in path[:-1]:
            if not isinstance(parent.get(key), dict):
                parent[key] = {}
            parent = parent[key]
        if value is DELETE:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    return table


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value


def check_parse(table: Any) -> None:
    try:
        spec = parse_job(table)
    except InvalidInput as error:
        assert error.problems and all(isinstance(p, str) and p for p in error.problems)
        return
    assert isinstance(spec, JobSpec) and len(spec.spec_id) == 64


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), values | st.just(DELETE)), min_size=1,
                max_size=3))  # fmt: skip
def test_the_parser_answers_a_spec_or_named_problems(mutations):
    check_parse(mutated(mutations))


@FUZZ
@given(st.dictionaries(st.text(max_size=10) | st.sampled_from(list(BASE)), values, max_size=6))
def test_the_parser_takes_any_table(table):
    if table:
        check_parse(table)


def toml_value(value: Any) -> str:
    """A TOML rendering of the generated values (imperfect on purpose: so is input)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_text(table: dict[str, Any]) -> str:
    top = [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    sections = [
        f"[{k}]\n" + "\n".join(f'"{kk}" = {toml_value(vv)}' for kk, vv in v.items())
        for k, v in table.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top + sections) + "\n"


job_files = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.lists(st.tuples(st.sampled_from(PATHS), values | st.just(DELETE)), max_size=3).map(
        lambda mutations: toml_text(mutated(mutations)).encode()
    ),
)


@FUZZ
@given(job_files)
def test_a_job_file_of_any_content_is_a_spec_or_a_refusal(content):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "job.toml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        try:
            load_job_file(path)
        except InvalidInput as error:
            assert error.problems


# --- every command's argument handling ----------------------------------------------------


@pytest.fixture(scope="module")
def playground() -> Iterator[dict[str, str]]:
    """Files that make generated command lines go deep, in a private home."""
    with tempfile.TemporaryDirectory(prefix="rt-fuzz-") as directory:
        root = Path(directory)
        (root / "bad.toml").write_text('iterations = "many"\n[data]\nkind = "csv"\n')
        (root / "no-data.toml").write_text(
            'iterations = 3\nseeds = [1]\n[data]\nkind = "parquet"\npath = "missing.parquet"\n'
            'timeframe = "5m"\n'
        )
        (root / "junk.parquet").write_bytes(b"PAR1" + b"\x00" * 64)
        names = {"bad": "bad.toml", "no-data": "no-data.toml", "junk": "junk.parquet"}
        yield {"root": str(root), **{key: str(root / name) for key, name in names.items()}}


def commands() -> dict[str, list[str]]:
    """Each command line's prefix -> the option strings it takes."""
    found: dict[str, list[str]] = {}

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        options = [s for a in parser._actions for s in a.option_strings]
        found[" ".join(prefix)] = options
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    return {k: v for k, v in found.items() if k not in ("", "data")}


COMMANDS = commands()
# Their own settings come first; a generated line can add options, not take these back.
# (data fetch's required market too, so that lines get past argparse: they may change it)
SAFE = {
    "data fetch": ["--api-url", NOWHERE_API, "--retries", "0", "--timeout", "0.5",
                   "--exchange", "binanceus", "--pair", "BTC/USDT", "--timeframe", "5m"],
}  # fmt: skip
UNSAFE_TOKENS = {"--api-url", "--retries", "--timeout", "--"}


def tokens(command: str, playground: dict[str, str]) -> st.SearchStrategy[str]:
    words = [
        "0", "-1", "1", "5", "1e309", "nan", "inf", "99999999999999999999", "", " ", "-",
        "5m", "7m", "1h", "binanceus", "binanceuss", "BTC/USDT", "DOGE/USDT", "2024-01-01",
        "2024-13-45", "2021-09-29T09:00Z", "1..5", "5..1", "1,1", "ffff", "abc:1", "csv",
        "parquet", "digest", "reject", "fill", "x=1", "key_level_lookback=50",
        "pierce_depth=2", "/nonexistent/x", "/tmp", NOWHERE_DB, "mysql://u:p@h/d",
        "postgresql+psycopg://u:pw@h/d", str(FIXTURE_CANDLES), *playground.values(),
    ]  # fmt: skip
    options = [o for o in COMMANDS[command] if o not in UNSAFE_TOKENS]
    return st.one_of(
        st.sampled_from(options or ["--help"]),
        st.sampled_from(words),
        st.text(max_size=10).filter(lambda t: t not in UNSAFE_TOKENS),
        st.integers(-5, 2000).map(str),
    )


@contextlib.contextmanager
def environment(home: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REPROTUNE_HOME")}
    os.environ.update(DATABASE_URL=NOWHERE_DB, REPROTUNE_HOME=home)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_no_command_line_ends_in_a_traceback(command, playground):
    seen: set[object] = set()

    @settings(FUZZ, max_examples=60)
    @given(st.lists(tokens(command, playground), max_size=7))
    def one(argv: list[str]) -> None:
        line = [*command.split(), *SAFE.get(command, []), *argv]
        out, err = io.StringIO(), io.StringIO()
        with environment(playground["root"]), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):  # fmt: skip
            try:
                code = main(line)
            except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
                assert exit_.code in (0, 2), (line, err.getvalue())
                seen.add("argparse")
                return  # (a usage error may echo the argument it did not expect)
        text = err.getvalue()
        seen.add(code)
        assert code in (0, 1, 2, 3), (line, code, text)
        assert "Traceback" not in text and "unexpected" not in text, (line, text)
        assert "pw@" not in text + out.getvalue(), (line, text)  # a URL's password

    one()
    assert seen - {"argparse"}, "no generated line got past argparse"
