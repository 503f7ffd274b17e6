"""The CI skip gate (tests/skip_gate.py), run on a tiny suite in a nested pytest session."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.skip_gate import ALLOWED_SKIPS, AllowedSkip, read_allow_list

pytest_plugins = ["pytester"]

SUITE = {
    "conftest.py": (
        "from pathlib import Path\n"
        "import pytest\n"
        "from tests.skip_gate import configure\n\n"
        "def pytest_configure(config):\n"
        "    configure(config, Path(__file__).parent / 'allowed.txt')\n\n"
        "@pytest.fixture\n"
        "def missing_tool():\n"
        "    pytest.skip('the tool is not installed')\n"
    ),
    "test_one.py": (
        "import pytest\n\n"
        "def test_runs():\n    pass\n\n"
        "def test_skips_itself():\n    pytest.skip('not today')\n\n"
        "def test_skips_in_a_fixture(missing_tool):\n    pass\n\n"
        "@pytest.mark.skipif(True, reason='marked')\n"
        "def test_skipif():\n    pass\n\n"
        "@pytest.mark.parametrize('x', [1, 2])\n"
        "def test_param(x):\n"
        "    if x == 2:\n        pytest.skip('only one')\n\n"
        "@pytest.mark.xfail(reason='known')\n"
        "def test_xfail():\n    assert False\n"
    ),
    "test_module.py": "import pytest\npytest.skip('whole module', allow_module_level=True)\n",
}
SKIPPING = [
    "test_one.py::test_skips_itself",
    "test_one.py::test_skips_in_a_fixture",
    "test_one.py::test_skipif",
    "test_one.py::test_param[2]",
    "test_one.py::test_xfail",
    "test_module.py",
]


class Run:
    """What a pytest run of the tiny suite gave: exit code and output."""

    def __init__(self, ret: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = int(ret), stdout, stderr


def _run(pytester, monkeypatch, allowed: str, ci: str | None) -> Run:
    """The tiny suite in a nested pytest session (in this process: ~0.2 s, not ~2 s)."""
    for name, text in SUITE.items():
        (pytester.path / name).write_text(text)
    (pytester.path / "allowed.txt").write_text(allowed)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    return Run(result.ret, result.stdout.str(), result.stderr.str())


def test_in_ci_every_kind_of_unlisted_skip_fails_the_run(pytester, monkeypatch):
    done = _run(pytester, monkeypatch, "# nothing allowed\n", ci="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skips not allowed in CI" in done.stdout
    for nodeid in SKIPPING:
        assert f"\n{nodeid}: " in done.stdout, nodeid
    assert "test_one.py::test_runs:" not in done.stdout
    assert "test_one.py::test_param[1]:" not in done.stdout
    assert "6 test(s) skipped without an entry in allowed.txt" in done.stdout


def test_in_ci_listed_skips_pass_and_unlisted_ones_still_fail(pytester, monkeypatch):
    allowed = "".join(f"{nodeid} -- a reason\n" for nodeid in SKIPPING[:-1])
    done = _run(pytester, monkeypatch, allowed, ci="true")
    assert done.returncode == 1, done.stdout
    assert "1 test(s) skipped without an entry" in done.stdout
    assert "\ntest_module.py: " in done.stdout
    done = _run(pytester, monkeypatch, allowed + "test_mod*.py -- a pattern\n", ci="true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skips not allowed" not in done.stdout


@pytest.mark.parametrize("ci", [None, "false"])
def test_outside_ci_skips_are_only_reported(pytester, monkeypatch, ci):
    done = _run(pytester, monkeypatch, "# nothing allowed\n", ci=ci)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skips not allowed" not in done.stdout
    assert "5 skipped" in done.stdout and "1 xfailed" in done.stdout


def test_an_entry_without_a_reason_is_an_error(pytester, monkeypatch):
    done = _run(pytester, monkeypatch, "test_one.py::test_skipif\n", ci="true")
    assert done.returncode == 4  # pytest's usage error
    assert "allowed.txt:1: needs 'node id -- reason'" in done.stderr


def test_the_repositorys_allow_list_is_short_and_every_entry_has_a_reason():
    entries = read_allow_list(ALLOWED_SKIPS)
    assert all(len(entry.reason) >= 30 for entry in entries)
    # The environment-dependent skips CI must not hide are not listed (see the file).
    for nodeid in (
        "tests/test_records_recorder.py::test_statuses_follow_the_rules[debian15]",
        "tests/test_backtest_differential.py::test_kernel_matches_reference_on_shared_data",
        "tests/test_candles_core.py::test_the_full_1h_file_has_28_gaps",
        "tests/test_defects_pg_server.py::test_a_refused_home_directory_is_left_untouched",
        "tests/test_search_pinned.py::test_every_simulated_cpu_gives_the_same_sequences_when_pinned",
    ):
        assert not any(entry.matches(nodeid) for entry in entries), nodeid


def test_patterns_match_whole_node_ids_with_brackets_taken_literally():
    entry = AllowedSkip("tests/a.py::test_x[embedded]", "why")
    assert entry.matches("tests/a.py::test_x[embedded]")
    assert not entry.matches("tests/a.py::test_x[e]")
    assert not entry.matches("tests/a.py::test_x[embedded]-more")
    assert AllowedSkip("tests/a.py::*", "why").matches("tests/a.py::test_y[1-2]")


def test_every_entry_of_the_repositorys_allow_list_names_a_test_that_exists():
    # A renamed or deleted test leaves a stale entry that allows nothing; say so.
    repo = ALLOWED_SKIPS.parent.parent
    for entry in read_allow_list(ALLOWED_SKIPS):
        path, _, name = entry.pattern.partition("::")
        assert "*" not in path and (repo / path).is_file(), entry.pattern
        function = name.split("[")[0]
        tree = ast.parse(Path(repo / path).read_text())
        defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert function in defined, entry.pattern
