"""Mutation check: does the suite catch small deliberate bugs? (Not run in CI.)

    .venv/bin/python bench/mutation.py                    # every mutant, every area
    .venv/bin/python bench/mutation.py --area search      # trainable | search | records
    .venv/bin/python bench/mutation.py --only trade_exit  # mutants whose id contains this
    .venv/bin/python bench/mutation.py --ids survivors.txt --tests tests/test_kernel_bounds.py
    .venv/bin/python bench/mutation.py --list             # print the mutants, run nothing

A mutant is one small change to one source file: a comparison's strictness flipped
(every `<`, `<=`, `>`, `>=` of the kernel's signals, engine and metrics, and of the
searchers' core, Bayesian, space and grid modules, generated from their syntax tree),
or one of the hand-written changes in `HAND_MUTANTS` (off-by-ones, wrong random
streams, first-vs-last, turn-taking, the recorder's comparisons, ...). mutmut cannot
mutate inside numba-compiled functions, hence this scripted list.

How it runs: the repository's files (`git ls-files`, working-tree content) are copied
to a temporary directory once; each mutant is written into that copy alone, the
area's test files run against it (`pytest -x`, this virtual environment's Python, the
copy first on the path), and the file is restored. The working tree is never touched.
Compiled kernels go to a private NUMBA_CACHE_DIR, keyed by the kernel's source
(trainable/jit.py), so a mutated kernel always compiles fresh. A mutant is killed when
the tests fail (or hang past the timeout); it survives when they pass. Survivors are
listed with the bug they model; those in `EQUIVALENT` are argued there to be
equivalent (no input can tell them from the original). Exit code 0 when every area
kills at least 95% and every survivor is argued equivalent.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.95

# The test files each area runs, fast and sharp ones first (-x stops at the first failure).
TESTS = {
    "trainable": [
        "tests/test_backtest_boundaries.py",
        "tests/test_backtest_cases.py",
        "tests/test_backtest_cases_metrics.py",
        "tests/test_kernel_metrics.py",
        "tests/test_kernel_validation.py",
        "tests/test_backtest_golden.py",
        "tests/test_backtest_differential.py",
        "tests/test_backtest_lookahead.py",
        "tests/test_kernel_bounds.py",
    ],
    "search": [
        "tests/test_search_goldens.py",
        "tests/test_search_contract.py",
        "tests/test_search_bayesian.py",
        "tests/test_search_grid_random_registry.py",
        "tests/test_search_interleave.py",
        "tests/test_search_space.py",
        # Last (it starts processes): paths only a suggestion pool takes.
        "tests/test_search_pool.py",
    ],
    "records": [
        "tests/test_records_retries.py",
        "tests/test_records_types.py",
        "tests/test_records_recorder.py",
        "tests/test_records_export.py",
        "tests/test_records_evaluations.py",
    ],
}
# Test files to run first for a mutant of this module (the rest of its area follows).
FIRST = {
    "search/interleave.py": ["tests/test_search_interleave.py"],
    "search/core.py": ["tests/test_search_contract.py"],
    "search/space.py": ["tests/test_search_space.py"],
    "search/grid.py": ["tests/test_search_grid_random_registry.py"],
    "search/random_search.py": ["tests/test_search_grid_random_registry.py"],
    "cluster/records/types.py": ["tests/test_records_types.py"],
    "cluster/records/exact.py": ["tests/test_records_export.py"],
}
AREA_OF = {"trainable/": "trainable", "search/": "search", "cluster/records/": "records"}
# Modules whose every comparison operator is flipped (<-><=, >-><=).
COMPARISON_MODULES = [
    "trainable/signals.py",
    "trainable/engine.py",
    "trainable/metrics.py",
    "search/core.py",
    "search/bayesian.py",
    "search/space.py",
    "search/grid.py",
    "cluster/records/types.py",
]
FLIP = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">")}


@dataclass(frozen=True)
class Mutant:
    id: str
    area: str
    path: str
    start: int  # character offsets in the original file
    end: int
    after: str
    why: str


# (path, function ("" = the whole module), text before, text after, the bug it models).
# `before` must occur exactly once in that function.
HAND_MUTANTS: list[tuple[str, str, str, str, str]] = [
    # ---- trainable: signals
    ("trainable/signals.py", "find_pivots", "range(PIVOT_WING, n - PIVOT_WING)",
     "range(PIVOT_WING + 1, n - PIVOT_WING)", "rule 1: bar 2 can never be a pivot"),
    ("trainable/signals.py", "find_pivots", "range(PIVOT_WING, n - PIVOT_WING)",
     "range(PIVOT_WING, n - PIVOT_WING - 1)", "rule 1: bar n-3 can never be a pivot"),
    ("trainable/signals.py", "find_pivots", "h > high[i + 2]", "h > high[i + 1]",
     "rule 1: a swing high compared with 1 bar after it, not 2"),
    ("trainable/signals.py", "find_pivots", "lo < low[i - 2]", "lo < low[i - 1]",
     "rule 1: a swing low compared with 1 bar before it, not 2"),
    ("trainable/signals.py", "volume_means", "offset = start - VOLUME_BARS + j",
     "offset = start - VOLUME_BARS + j + 1", "C6: the mean includes the pierce bar itself"),
    ("trainable/signals.py", "volume_means", "offset = start - VOLUME_BARS + j",
     "offset = start - VOLUME_BARS + j - 1", "C6: the mean is of bars p-21 .. p-2"),
    ("trainable/signals.py", "volume_means", "total[q] / VOLUME_BARS",
     "total[q] / (VOLUME_BARS - 1)", "C6: sum / 19"),
    ("trainable/signals.py", "long_confirmed", "range(p + 1, p + reversal_candles + 1)",
     "range(p + 1, p + reversal_candles)", "C5: the last confirmation close is not checked"),
    ("trainable/signals.py", "short_confirmed", "range(p + 1, p + reversal_candles + 1)",
     "range(p + 2, p + reversal_candles + 1)", "C5: the first confirmation close is not checked"),
    ("trainable/signals.py", "qualifying_levels", "level = total / (j - i)",
     "level = total / (j - i + 1)", "C3: a level is not its group's mean"),
    ("trainable/signals.py", "qualifying_levels", "math.isnan(support)\n", "True\n",
     "C4: the highest qualifying support instead of the lowest"),
    ("trainable/signals.py", "qualifying_levels",
     "if level > close_prev and high_p > level",
     "if math.isnan(resistance) and level > close_prev and high_p > level",
     "C4: the lowest qualifying resistance instead of the highest"),
    ("trainable/signals.py", "qualifying_levels", "limit = min_distance * first",
     "limit = min_distance * sorted_prices[j - 1]", "C3: distance measured from the last price"),
    ("trainable/signals.py", "", "BAND_SLACK = 1e-9", "BAND_SLACK = -1e-9",
     "the necessary-condition band is narrowed instead of widened"),
    ("trainable/signals.py", "setup_levels", "upper = min(upper, low_p / ((1.0 - pierce_depth)",
     "upper = min(upper, low_p * ((1.0 - pierce_depth)",
     "the band's upper bound for a support is wrong (the pierce-depth bound inverted)"),
    # ---- trainable: engine
    ("trainable/engine.py", "wilder_atr", "range(1, ATR_PERIOD + 1)", "range(1, ATR_PERIOD)",
     "C10: ATR[14] seeded from TR[1..13]"),
    ("trainable/engine.py", "wilder_atr", "value * (ATR_PERIOD - 1.0)", "value * ATR_PERIOD",
     "C10: not Wilder's smoothing"),
    ("trainable/engine.py", "_true_range", "abs(low[i] - previous)", "abs(low[i] - close[i])",
     "C10: the true range ignores a gap down"),
    ("trainable/engine.py", "enter_and_exit", "atr[entry_bar - 1]", "atr[entry_bar]",
     "C10: the stop uses the entry bar's ATR (lookahead)"),
    ("trainable/engine.py", "enter_and_exit", "entry = open_[entry_bar]",
     "entry = close[entry_bar - 1]", "rule 4: entry at the confirmation close, not the open"),
    ("trainable/engine.py", "enter_and_exit", "entry * (1.0 + slippage)",
     "entry * (1.0 - slippage)", "C14: a long's entry slippage is favourable"),
    ("trainable/engine.py", "enter_and_exit", "fee * (1.0 + gross)", "fee * gross",
     "C14: the entry fee is not charged"),
    ("trainable/engine.py", "enter_and_exit", "entry - risk_reward * distance",
     "entry - distance", "rule 5: a short's target ignores the risk/reward ratio"),
    ("trainable/engine.py", "trade_exit", "range(entry_bar, last + 1)",
     "range(entry_bar + 1, last + 1)", "C12: the entry bar itself is not checked"),
    ("trainable/engine.py", "trade_exit", "b == entry_bar + max_holding",
     "b == entry_bar + max_holding - 1", "C13: the time exit one bar early"),
    ("trainable/engine.py", "trade_exit",
     "            if low[b] <= stop:\n                return b, stop, EXIT_STOP\n"
     "            if high[b] >= target:\n                return b, target, EXIT_TARGET\n",
     "            if high[b] >= target:\n                return b, target, EXIT_TARGET\n"
     "            if low[b] <= stop:\n                return b, stop, EXIT_STOP\n",
     "C12: a long's target checked before its stop (optimistic)"),
    ("trainable/engine.py", "trade_exit", "return b, open_[b], EXIT_TARGET\n            if high",
     "return b, target, EXIT_TARGET\n            if high",
     "C12: a short's gap through the target exits at the target, not the open"),
    ("trainable/engine.py", "find_trades", "p = VOLUME_BARS", "p = VOLUME_BARS + 1",
     "C6: no setup at bar 20"),
    ("trainable/engine.py", "find_trades", "last_pierce = n - 2 - reversal_candles",
     "last_pierce = n - 3 - reversal_candles", "C7: a setup entering at the last bar is lost"),
    ("trainable/engine.py", "find_trades", "entry_bar = p + reversal_candles + 1",
     "entry_bar = p + reversal_candles + 2", "rule 4: entry one bar late"),
    ("trainable/engine.py", "find_trades", "exit_bar - reversal_candles)",
     "exit_bar - reversal_candles + 1)", "C8: an exit on the confirmation bar blocks"),
    ("trainable/engine.py", "find_trades", "exit_bar - reversal_candles)",
     "exit_bar - reversal_candles - 1)", "C8: an exit on the entry bar does not block"),
    ("trainable/engine.py", "advance_window", "pivot_bar[new_known] + PIVOT_WING <= p",
     "pivot_bar[new_known] + PIVOT_WING - 1 <= p", "C2: a pivot known one bar early"),
    ("trainable/engine.py", "advance_window", "pivot_bar[new_oldest] < p - lookback",
     "pivot_bar[new_oldest] < p - lookback + 1", "C2: the lookback window one bar short"),
    ("trainable/engine.py", "confirmed_setup",
     "if not math.isnan(support) and long_confirmed",
     "if False and long_confirmed", "C9: the short wins when both confirm (longs never)"),
    ("trainable/engine.py", "equity_curve", "kept = 1.0 - fee", "kept = 1.0",
     "C15: marked equity ignores the entry fee"),
    ("trainable/engine.py", "equity_curve", "while t < entry_bar:", "while t <= entry_bar:",
     "C15: the entry bar marked as flat"),
    # ---- trainable: metrics
    ("trainable/metrics.py", "return_sums", "mean = total / (n - 1)", "mean = total / n",
     "C16: the mean over n bars, not n-1 returns"),
    ("trainable/metrics.py", "_return_metrics", "squares / (n_returns - 1)",
     "squares / n_returns", "Results: std with ddof=0"),
    ("trainable/metrics.py", "_return_metrics", "downside / n_returns",
     "downside / (n_returns - 1)", "C16: Sortino's denominator"),
    ("trainable/metrics.py", "_trade_metrics", "(held + n_trades) / n_bars",
     "held / n_bars", "C16: exposure counts bars held, not bars in a position"),
    ("trainable/metrics.py", "_return_metrics", "bars_per_year / n_returns",
     "bars_per_year / (n_returns + 1)", "C16: CAGR over n bars, not n-1 returns"),
    # ---- search
    ("search/bayesian.py", "", "BAYES_STREAM = 2", "BAYES_STREAM = 0",
     "a Bayesian batch draws from the random search's stream"),
    ("search/bayesian.py", "BatchRequest.compute",
     "seeded_random_state(self.seed, BAYES_STREAM, self.batch)",
     "seeded_random_state(self.seed, BAYES_STREAM, 0)",
     "every Bayesian batch draws from the same stream"),
    ("search/bayesian.py", "BatchRequest._observations",
     "rows.setdefault(unit, score)", "rows[unit] = score",
     "a repeated point keeps its last score instead of its first"),
    ("search/bayesian.py", "BayesianSearcher._request",
     "history=tuple(self._params[k] for k in range(trials.start)),\n"
     "            scores=tuple(self._score(k) for k in range(trials.start)),",
     "history=tuple(self._params[k] for k in range(trials.start - 1)),\n"
     "            scores=tuple(self._score(k) for k in range(trials.start - 1)),",
     "a batch ignores the last outcome before it"),
    ("search/bayesian.py", "BatchRequest.compute",
     '{"min": float(y.min()), "mean": float(y.mean()), "max": float(y.max())}',
     '{"min": float(y.max()), "mean": float(y.mean()), "max": float(y.min())}',
     "the liar's min and max swapped"),
    ("search/bayesian.py", "BatchRequest.compute",
     "private.register(evaluated, float(lie))", "pass",
     "pending points never reach the private TargetSpace"),
    ("search/bayesian.py", "BayesianSearcher.batch_of",
     "1 + (trial_index - self.n_initial) // self.batch_size",
     "(trial_index - self.n_initial) // self.batch_size + (trial_index > self.n_initial)",
     "the first model batch is one trial short"),
    ("search/gp.py", "standardize",
     "direct = (scores - scores.mean()) / (spread if spread > 0 else 1.0)",
     "direct = scores - scores.mean()",
     "scores are centred but not scaled (xi no longer in standard deviations)"),
    ("search/random_search.py", "", "RANDOM_STREAM = 0", "RANDOM_STREAM = 1",
     "random search draws from the grid's stream"),
    ("search/random_search.py", "random_point",
     "seeded_generator(seed, RANDOM_STREAM, trial_index)",
     "seeded_generator(seed, RANDOM_STREAM, trial_index + 1)",
     "trial k gets trial k+1's random point"),
    ("search/grid.py", "", "GRID_STREAM = 1", "GRID_STREAM = 0",
     "the grid's order draws from the random search's stream"),
    ("search/grid.py", "GridSearcher._suggest", "for name in reversed(list(self._axes))",
     "for name in list(self._axes)", "the grid's mixed radix runs the other way"),
    ("search/interleave.py", "Interleaver._scan",
     "position = (self._turn + offset) % len(self._seeds)", "position = offset",
     "the interleaver always asks the first seed first"),
    ("search/interleave.py", "Interleaver._scan",
     "self._turn = (position + 1) % len(self._seeds)", "self._turn = position",
     "the interleaver asks the seed it just served first again"),
    ("search/interleave.py", "Interleaver._deliver", "self._next_delivery[seed] += 1\n"
     "                if self.on_result", "pass\n                if self.on_result",
     "delivery never moves past a delivered trial"),
    ("search/core.py", "SeededSearcher.tell", "if known == outcome:", "if True:",
     "a conflicting second outcome is silently ignored"),
    ("search/core.py", "same_params", "type(a[k]) is type(b[k]) and ", "",
     "3 and 3.0 count as the same params"),
    ("search/core.py", "SeededSearcher._replay",
     "self._must_replay(k) and not same_params", "False and not same_params",
     "a rebuild never checks the params it recomputes"),
    ("search/core.py", "seeded_generator", "[seed, *stream]", "[*stream, seed]",
     "streams keyed in another order (seed 1 stream 0 == seed 0 stream 1)"),
    ("search/space.py", "IntRange.from_unit", "math.floor(u * self.size)",
     "round(u * self.size)", "int cells rounded, so the end values are half as likely"),
    # ---- records
    ("cluster/records/sql.py", "upsert", '"{c}, {c}::text = {p}::jsonb::text"', '"{c}, true"',
     "a retried write with different searcher_options, spec or manifest is accepted"),
    ("cluster/records/sql.py", "upsert", "elif not same_value(stored, value):", "elif False:",
     "a retried write with a different searcher, budget, seeds, ... is accepted"),
    ("cluster/records/sql.py", "upsert", '"{c}, {c}::text = {p}::jsonb::text"',
     '"{c}, {c} = {p}::jsonb"', "jsonb compared by value: 5 and 5.0 are the same options"),
    ("cluster/records/sql.py", "differences", "for k in new if not same_value",
     'for k in new if k != "message" and not same_value',
     "a retried trial with a different message is accepted"),
    ("cluster/records/sql.py", "differences", "for k in new if not same_value",
     'for k in new if k != "status" and not same_value',
     "a retried trial with a different status is accepted"),
    ("cluster/records/recorder.py", "Recorder.record_trials",
     "if conflicts:", "if False:", "a retried trial is never compared with the stored one"),
    ("cluster/records/recorder.py", "Recorder.upsert_training_jobs",
     "if job.spec_id != spec_id:", "if False:",
     "a job's spec_id is not checked against its ensemble's"),
    ("cluster/records/recorder.py", "Recorder.record_trials",
     "if trial.spec_id != job_spec_id:", "if False:",
     "a trial's spec_id is not checked against its job's"),
    ("cluster/records/exact.py", "same_bits", 'struct.pack("<d", a) == struct.pack("<d", b)',
     "a == b", "floats compared by value: -0.0 == 0.0"),
    ("cluster/records/exact.py", "same_value",
     "if type(a) is not type(b):\n        return False\n    ", "",
     "values of different types (1 and True) compared by =="),
    ("cluster/records/exact.py", "canonical_params", "encoded[name] = value.hex()",
     "encoded[name] = repr(value)", "params_exact holds decimal floats, not hex"),
    ("cluster/records/sql.py", "update_job_best", "ORDER BY score DESC, trial_index LIMIT 1",
     "ORDER BY score DESC, trial_index DESC LIMIT 1", "a tie for best goes to the later trial"),
    ("cluster/records/recorder.py", "Recorder.set_job_status",
     "if current == JobStatus.COMPLETE and status != JobStatus.COMPLETE:", "if False:",
     "a complete job can be set back to running"),
    ("cluster/records/types.py", "_metric", "return number if math.isfinite(number) else None",
     "return number", "C18: an infinite metric is written instead of NULL"),
    ("cluster/records/sql.py", "",
     'ON CONFLICT (training_job_id, trial_index) DO NOTHING "',
     'ON CONFLICT (training_job_id, trial_index) DO UPDATE SET score = EXCLUDED.score "',
     "a retried trial overwrites the stored score (last write wins)"),
    ("cluster/records/sql.py", "upsert", "values.values()]).fetchone():",
     "values.values()]) or True:",
     "a retried dataset, ensemble or job write counts as a first write (never compared)"),
    ("cluster/records/queries.py", "RecordsQueries.ensemble_trials",
     "ORDER BY t.seed, t.trial_index", "ORDER BY t.seed, t.trial_index DESC",
     "recorded trials come back in reverse trial order"),
    ("cluster/records/queries.py", "RecordsQueries.best_trials",
     "ORDER BY t.score DESC, t.trial_index", "ORDER BY t.score DESC, t.trial_index DESC",
     "of trials with the same score, `show` lists the later first"),
    ("cluster/records/export.py", "build_export", "key=lambda t: (t.seed, t.trial_index)",
     "key=lambda t: (t.trial_index, t.seed)", "the export (and its digest) sorted by trial first"),
    ("cluster/records/export.py", "_text_row", "row.append(float_hex(value))",
     "row.append(repr(value))", "the export writes floats as decimal text"),
    ("cluster/records/recorder.py", "Recorder.record_evaluation",
     '            "basis": Jsonb(evaluation.basis),\n', "",
     "an evaluation's basis is neither stored nor compared on a retry"),
    ("cluster/records/recorder.py", "Recorder.set_ensemble_status",
     "if status == EnsembleStatus.COMPLETE and incomplete:", "if False:",
     "an ensemble can be complete while a job is not"),
]  # fmt: skip

# Mutants that survive because they cannot change any result, and why. A survivor not
# listed here is a gap in the tests.
EQUIVALENT: dict[str, str] = {
    # ---- trainable
    "signals.insert_sorted: `window[i - 1] > price` > -> >=": (
        "inserting a price before its equals instead of after them gives the same sorted "
        "values in the same order: equal prices are interchangeable"
    ),
    "signals.find_pivots: rule 1: bar n-3 can never be a pivot": (
        "a pivot at bar n-3 is known from bar n-1 (C2), but the last bar that can pierce "
        "is n-2-reversal_candles <= n-3 (C7): no setup can use it"
    ),
    "signals.qualifying_levels: `sorted_prices[i] <= highest_start` <= -> <": (
        "it only stops forming a group whose lowest price is exactly highest_start, the "
        "upper end of the band (bound * (1 + min_distance) * (1 + 1e-9), bound = "
        "min(close[p-1], low[p] / ((1 - depth)(1 - 1e-9))) for a support, high[p] for a "
        "resistance); that group's level is at least its lowest price, above the bound by "
        "a relative 1e-9 at least, so it fails level < close[p-1], low[p] >= level * "
        "(1 - depth) and high[p] > level alike: no such group ever qualifies"
    ),
    "signals.setup_levels: `low_p < close_prev` < -> <=": (
        "with low[p] == close[p-1] no support S has low[p] < S < close[p-1]: the mutant "
        "only searches the band, and qualifying_levels still finds no support"
    ),
    "signals.setup_levels: `high_p > close_prev` > -> >=": (
        "the mirror: with high[p] == close[p-1] no resistance R has close[p-1] < R < high[p]"
    ),
    "signals.setup_levels: `pierce_depth < 1.0` < -> <=": (
        "differs only at pierce_depth == 1.0, where the extra bound is low[p] / 0.0 = +inf "
        "(error_model='numpy': no exception) and min(close[p-1], inf) = close[p-1]"
    ),
    "engine.trade_exit: `side > 0` > -> >=": "side is +1 or -1, never 0",
    "engine.enter_and_exit: `side > 0` > -> >=": "side is +1 or -1, never 0",
    "engine.enter_and_exit: `side > 0` > -> >= #2": "side is +1 or -1, never 0",
    "engine.trade_exit: `open_[b] < stop` < -> <=": (
        "a long's bar opening exactly at the stop: the mutant exits at the open, the rule "
        "exits at the stop because low <= open = stop; the same bar, price and reason "
        "(tests/test_backtest_boundaries.py pins the case)"
    ),
    "engine.trade_exit: `open_[b] > stop` > -> >=": (
        "the short's mirror: high >= open = stop, so the rule exits at the stop, which is "
        "the open the mutant exits at"
    ),
    "metrics.return_sums: `r < 0.0` < -> <=": "a zero return adds 0 * 0 = 0 to the downside sum",
    "metrics.return_sums: `n >= 2` >= -> >": (
        "differs only for n == 2 bars (one return), where the mean it computes feeds only "
        "the sum of squares, which the Sharpe uses from two returns on (n >= 3)"
    ),
    "metrics.return_sums: `n > 0` > -> >=": (
        "differs only for an empty equity curve, which compute_metrics never receives "
        "(its contract: at least one bar; backtest refuses empty candles first)"
    ),
    "metrics.return_sums: `equity[t] > peak` > -> >=": "a tie does not change the peak's value",
    "metrics.return_sums: `fall > drawdown` > -> >=": "a tie does not change the maximum",
    # ---- search
    "core.SeededSearcher.ask: `len(ready) < budget` < -> <= #2": (
        "with len(ready) == budget, ready_end is _ready_end() instead of 0, and the block "
        "that follows has room for nothing: end = min(ready_end, _next_index + 0) = "
        "_next_index, no trial is added and _next_index is unchanged. _ready_end() may "
        "submit a due Bayesian batch to the pool a call earlier: execution only (a batch "
        "is a pure function of its request)"
    ),
    "core.SeededSearcher.ask: `self._next_index < ready_end` < -> <=": (
        "with _next_index == ready_end the block adds range(_next_index, end) with end = "
        "min(ready_end, ...) = _next_index (budget - len(ready) >= 0): empty, and "
        "_next_index stays as it was"
    ),
    "bayesian.BayesianSearcher._due_end: `self._prefix >= self.iterations` >= -> >": (
        "with _prefix == iterations, batch_range(batch_of(iterations)).stop is "
        "min(start + batch_size, iterations) with start <= iterations < start + batch_size "
        "(or range(min(n_initial, iterations)) when iterations <= n_initial): iterations "
        "either way"
    ),
    "core.same_params: 3 and 3.0 count as the same params": (
        "the repr comparison beside the type check already tells the types apart: 3 and "
        "3.0, 1 and True, 0.5 and numpy 2's np.float64(0.5) all print differently; the "
        "values compared are plain ints and floats (Space.problems refuses anything else "
        "in records, suggestions are built by the space), so no pair of different types "
        "has equal reprs (tests/test_search_contract.py checks the int-vs-float refusal)"
    ),
    "bayesian.BatchRequest.compute: pending points never reach the private TargetSpace": (
        "the pending point still enters the model (posterior.with_points); the private "
        "TargetSpace only gives bayes_opt 3.4's acquisition its bounds (random samples), "
        "a non-empty check and, for EI, y_max, the best registered target; a lie (the "
        "min, mean or max of the observed targets) is never above it, so y_max and every "
        "suggestion stay the same"
    ),
}


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function and method."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{node.name}.{item.name}", item


def _offsets(source: str) -> list[int]:
    starts, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line.encode())
        starts.append(total)
    return starts


def _char_offset(source: str, line_starts: list[int], lineno: int, col: int) -> int:
    """ast's (line, utf-8 byte column) as a character offset into `source`."""
    byte_offset = line_starts[lineno - 1] + col
    return len(source.encode()[:byte_offset].decode())


def _area(path: str) -> str:
    return next(area for prefix, area in AREA_OF.items() if path.startswith(prefix))


def comparison_mutants(path: str, source: str) -> list[Mutant]:
    tree = ast.parse(source)
    starts = _offsets(source)
    module = Path(path).stem
    mutants: list[Mutant] = []
    for name, function in _functions(tree):
        seen: dict[str, int] = {}
        for node in ast.walk(function):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                if type(op) not in FLIP:
                    continue
                old, new = FLIP[type(op)]
                left, right = operands[i], operands[i + 1]
                assert left.end_lineno is not None and left.end_col_offset is not None
                gap_start = _char_offset(source, starts, left.end_lineno, left.end_col_offset)
                gap_end = _char_offset(source, starts, right.lineno, right.col_offset)
                gap = source[gap_start:gap_end]
                at = gap.index(old)
                assert gap[at : at + len(old)].strip() == old, (path, gap)
                text = ast.get_source_segment(source, node) or "?"
                text = " ".join(text.split())
                key = f"{module}.{name}: `{text}` {old} -> {new}"
                seen[key] = seen.get(key, 0) + 1
                if seen[key] > 1:
                    key = f"{key} #{seen[key]}"
                mutants.append(
                    Mutant(
                        key,
                        _area(path),
                        path,
                        gap_start + at,
                        gap_start + at + len(old),
                        new,
                        "strictness of a comparison",
                    )
                )
    return mutants


def hand_mutants(sources: dict[str, str]) -> list[Mutant]:
    mutants = []
    for path, function, before, after, why in HAND_MUTANTS:
        source = sources[path]
        lo, hi = 0, len(source)
        if function:
            tree = ast.parse(source)
            starts = _offsets(source)
            nodes = dict(_functions(tree))
            if function not in nodes:
                raise ValueError(f"{path}: no function {function}")
            node = nodes[function]
            lo = _char_offset(source, starts, node.lineno, 0)
            end_line = node.end_lineno or node.lineno
            hi = _char_offset(source, starts, end_line, node.end_col_offset or 0)
        segment = source[lo:hi]
        if segment.count(before) != 1:
            raise ValueError(f"{path} {function}: {before!r} occurs {segment.count(before)} times")
        at = lo + segment.index(before)
        module = Path(path).stem
        key = f"{module}.{function or '<module>'}: {why}"
        mutants.append(Mutant(key, _area(path), path, at, at + len(before), after, why))
    return mutants


def all_mutants(root: Path) -> list[Mutant]:
    paths = {p for p in COMPARISON_MODULES} | {m[0] for m in HAND_MUTANTS}
    sources = {p: (root / p).read_text() for p in paths}
    # The hand-written mutants first: they model the bugs the issue names.
    mutants = hand_mutants(sources)
    mutants += [m for p in COMPARISON_MODULES for m in comparison_mutants(p, sources[p])]
    ids = [m.id for m in mutants]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate mutant ids: {sorted(duplicates)}")
    for m in mutants:  # every mutant must still be valid Python
        source = sources[m.path]
        ast.parse(source[: m.start] + m.after + source[m.end :])
    return mutants


def copy_repository(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_tests(copy: Path, files: list[str], env: dict[str, str], timeout: float) -> tuple[str, str]:
    """('passed' | 'failed' | 'timeout', the first failing test's node id or "")."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *files]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            command,
            cwd=copy,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this run started, nothing else
            process.wait()
            return "timeout", ""
        output.seek(0)
        text = output.read().decode(errors="replace")
    if code == 0:
        return "passed", ""
    # "FAILED <node id> - <message>"; a node id may hold spaces inside its brackets.
    found = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", text, re.MULTILINE)
    return "failed", found.group(1) if found else f"(pytest exit code {code})"


def check(
    mutants: list[Mutant],
    areas: list[str],
    tests: list[str] | None = None,
    baseline_check: bool = True,
) -> dict[str, list[dict[str, object]]]:
    """Run each mutant against its area's test files (or `tests`, when given)."""
    results: dict[str, list[dict[str, object]]] = {area: [] for area in areas}
    with tempfile.TemporaryDirectory(prefix="mutation-") as temp:
        copy, numba_cache = Path(temp) / "repo", Path(temp) / "numba"
        copy_repository(copy)
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH")}
        env |= {"PYTHONPATH": str(copy), "NUMBA_CACHE_DIR": str(numba_cache)}
        shared = REPO_ROOT.parent / "shared" / "data"
        if shared.is_dir():
            env.setdefault("REPROTUNE_SHARED_DATA", str(shared))
        where = subprocess.run(
            [sys.executable, "-c", "import trainable, search, cluster.records as r; "
             "print(trainable.__file__, search.__file__, r.__file__)"],
            cwd=copy, env=env, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if not all(Path(p).is_relative_to(copy) for p in where):
            raise RuntimeError(f"the copy's packages are not the ones imported: {where}")
        for area in areas:
            started = time.monotonic()
            area_tests = tests or TESTS[area]
            if baseline_check:
                if run_tests(copy, area_tests, env, timeout=3600)[0] != "passed":
                    raise RuntimeError(f"the {area} tests fail without any mutant")
                baseline = time.monotonic() - started
                print(f"{area}: tests pass unmutated in {baseline:.0f} s", flush=True)
            else:
                baseline = 180.0
                print(f"{area}: unmutated run skipped (--no-baseline)", flush=True)
            timeout = max(300.0, 5 * baseline)
            todo = [m for m in mutants if m.area == area]
            for n, mutant in enumerate(todo, 1):
                path = copy / mutant.path
                original = path.read_text()
                path.write_text(original[: mutant.start] + mutant.after + original[mutant.end :])
                began = time.monotonic()
                first = FIRST.get(mutant.path, [])
                files = tests or first + [f for f in area_tests if f not in first]
                try:
                    outcome, killer = run_tests(copy, files, env, timeout)
                finally:
                    path.write_text(original)
                status = "SURVIVED" if outcome == "passed" else f"killed ({outcome})"
                seconds = time.monotonic() - began
                print(f"[{area} {n}/{len(todo)}] {status:16} {seconds:5.0f} s  {mutant.id}",
                      flush=True)  # fmt: skip
                if killer:
                    print(f"    by {killer}", flush=True)
                results[area].append({**asdict(mutant), "outcome": outcome, "killed_by": killer})
    return results


def report(results: dict[str, list[dict[str, object]]]) -> bool:
    ok = True
    print()
    for area, rows in results.items():
        killed = sum(1 for row in rows if row["outcome"] != "passed")
        share = killed / len(rows) if rows else 1.0
        print(f"{area}: {killed}/{len(rows)} killed ({share:.1%})")
        ok &= share >= TARGET
        for row in rows:
            if row["outcome"] == "passed":
                argued = EQUIVALENT.get(str(row["id"]))
                ok &= argued is not None
                note = f"equivalent: {argued}" if argued else f"NOT ARGUED: {row['why']}"
                print(f"  survived: {row['id']}\n    {note}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--area", choices=list(TESTS), action="append")
    parser.add_argument(
        "--only", action="append", help="run only mutants whose id contains this text"
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the unmutated run (only right after the same tests passed on this tree)",
    )
    parser.add_argument("--ids", type=Path, help="run only the mutant ids listed in this file")
    parser.add_argument(
        "--tests",
        nargs="+",
        help="run these test files instead of the area's (e.g. a test file added since a "
        "full run, against that run's survivors)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    areas = args.area or list(TESTS)
    mutants = [m for m in all_mutants(REPO_ROOT) if m.area in areas]
    if args.only:
        mutants = [m for m in mutants if any(text in m.id for text in args.only)]
    if args.ids:
        wanted = set(filter(None, args.ids.read_text().splitlines()))
        unknown = wanted - {m.id for m in mutants}
        if unknown:
            parser.error(f"unknown mutant ids in {args.ids}: {sorted(unknown)}")
        mutants = [m for m in mutants if m.id in wanted]
    if args.list:
        for m in mutants:
            print(f"{m.area:9} {m.id}")
        print(f"{len(mutants)} mutants")
        return 0
    started = datetime.now()
    areas = sorted({m.area for m in mutants}, key=list(TESTS).index)
    results = check(mutants, areas, args.tests, not args.no_baseline)
    ok = report(results)
    minutes = (datetime.now() - started).total_seconds() / 60
    print(f"\n{started:%Y-%m-%d %H:%M}, {minutes:.0f} min; target {TARGET:.0%} per area: "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
