"""The report as text (for people) and as JSON (for programs): the same numbers.

`report_json` holds every number the text shows, floats exact (JSON numbers in Python's
shortest round-trip form); the text rounds them for reading with `shown` (six
significant digits) and `shown_spread` (three decimals).
"""

from __future__ import annotations

from typing import Any

from cluster.report.report import Report
from cluster.report.robustness_output import (
    holdout_json,
    holdout_lines,
    robustness_json,
    robustness_lines,
)
from cluster.report.stability import (
    MIN_SEEDS,
    NEAR_BEST_SHARE,
    PARAM_SPREAD_LIMIT,
    ParameterSpread,
)
from cluster.report.walk_forward_output import walk_forward_json, walk_forward_lines

MAX_SEED_COLUMNS = 6  # more seeds than this: the parameter table shows lowest and highest
SCOPE = (
    "The verdict is an in-sample statement about the optimizer: whether searches with "
    "different seeds end at the same parameters on the data they were tuned on. It is not "
    "an out-of-sample test: a stable optimum can still be overfitted, and fail on data the "
    "search never saw; the holdout and walk-forward (when the job has them) and the "
    "robustness figures above test that."
)


def shown(value: float | int | None) -> str:
    """A number as the text shows it: ints in full, floats to 6 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}"


def shown_spread(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_text(report: Report) -> str:
    """The report for a terminal (about 100 columns wide with up to 6 seeds)."""
    lines = [*_header(report), "", *_seed_table(report), "", *_parameter_table(report)]
    lines += ["", *_consensus(report), "", *_verdict(report)]
    if report.holdout is not None:
        lines += ["", *holdout_lines(report.holdout, report.penalty)]
    if report.walk_forward is not None:
        lines += ["", *walk_forward_lines(report.walk_forward)]
    if report.robustness is not None:
        lines += ["", *robustness_lines(report.robustness)]
    if report.plots or report.plot_notes:
        lines += ["", "Pictures:"]
        lines += [f"  {path}" for path in report.plots]
        lines += [f"  ({note})" for note in report.plot_notes]
    lines += ["", *_wrap(SCOPE, 88)]
    return "\n".join(lines) + "\n"


def _header(report: Report) -> list[str]:
    candles = report.candles
    source = " ".join(str(v) for v in (candles["pair"] or candles["source"], candles["timeframe"]))
    rows = f"{candles['rows']:,} candles" if candles["rows"] is not None else "candles"
    name = f"  ({report.name})" if report.name else ""
    return [
        f"Ensemble {report.ensemble_id}{name}",
        f"  spec {report.spec_id[:12]}, strategy {report.strategy}, {report.searcher} searcher, "
        f"{report.iterations} trials per seed, {len(report.seeds)} seed(s)",
        f"  data: {rows} of {source}, fingerprint {report.dataset_fingerprint[:12]}",
    ]


def _seed_table(report: Report) -> list[str]:
    near = f"trials to within {NEAR_BEST_SHARE:.0%}"
    lines = [
        "Best trial of each seed (ties go to the lowest trial_index)",
        f"  {'seed':>10}  {'trials':>6}  {'best trial':>10}  {'best score':>12}  {near:>21}",
    ]
    for seed in report.stability.seeds:
        lines.append(
            f"  {seed.seed:>10}  {seed.trials:>6}  {seed.trial_index:>10}  "
            f"{shown(seed.score):>12}  {seed.trials_to_near_best:>21}"
        )
    scores = report.stability.scores
    lines.append(
        f"  best scores: lowest {shown(scores.lowest)}, median {shown(scores.median)}, "
        f"highest {shown(scores.highest)}, spread {shown(scores.spread)}"
    )
    return lines


def _parameter_table(report: Report) -> list[str]:
    seeds = report.stability.seeds
    side_by_side = len(seeds) <= MAX_SEED_COLUMNS
    titles = [f"seed {s.seed}" for s in seeds] if side_by_side else ["lowest", "highest"]
    texts = [shown(v) for p in report.stability.parameters for v in (*p.values, p.consensus)]
    width = max(len(t) for t in [*titles, *texts, "consensus"]) + 2
    name_width = max(len(p.name) for p in report.stability.parameters) + 2
    header = f"  {'parameter':<{name_width}}{'range':<18}" + "".join(
        f"{t:>{width}}" for t in titles
    )
    lines = [
        "The seeds' best parameters; spread = how much of the search range they span (0 to 1)",
        header + f"{'spread':>9}{'consensus':>{width}}",
    ]
    for p in report.stability.parameters:
        shown_values = p.values if side_by_side else (min(p.values), max(p.values))
        cells = "".join(f"{shown(v):>{width}}" for v in shown_values)
        spread = shown_spread(p.spread) if p.spread is not None else "fixed"
        lines.append(
            f"  {p.name:<{name_width}}{_range(p):<18}{cells}{spread:>9}"
            f"{shown(p.consensus):>{width}}"
        )
    return lines


def _range(p: ParameterSpread) -> str:
    return f"{shown(p.lower)}..{shown(p.upper)}"


def _consensus(report: Report) -> list[str]:
    evaluation = report.consensus.evaluation
    where = "backtested now and recorded" if report.consensus.new else "as recorded earlier"
    if evaluation.message is None:
        outcome = f"{evaluation.metrics['n_trades']} trades"
    else:
        outcome = f"invalid: {evaluation.message}"
    return [
        "Consensus (each parameter's median over the seeds' bests, ints rounded): "
        f"score {shown(evaluation.score)} ({outcome}; {where})",
    ]


def _verdict(report: Report) -> list[str]:
    verdict = report.stability.verdict
    result = verdict.result.upper() if verdict.result else "none"
    lines = [f"Verdict: {result}: {verdict.reason}"]
    lines.append(
        f"  rule: stable when every searched parameter's spread is at most "
        f"{PARAM_SPREAD_LIMIT}, with at least {MIN_SEEDS} seeds; largest spread "
        f"{shown_spread(verdict.largest_spread)} ({verdict.parameter or '-'}), "
        f"{len(report.seeds)} seeds"
    )
    return lines


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False)


def report_json(report: Report) -> dict[str, Any]:
    """Every number and word of the text, as plain JSON data (floats exact)."""
    stability = report.stability
    evaluation = report.consensus.evaluation
    return {
        "ensemble": {
            "id": str(report.ensemble_id),
            "name": report.name,
            "spec_id": report.spec_id,
            "strategy": report.strategy,
            "searcher": report.searcher,
            "iterations": report.iterations,
            "seeds": list(report.seeds),
            "dataset_fingerprint": report.dataset_fingerprint,
            "candles": report.candles,
        },
        "seeds": [
            {
                "seed": s.seed,
                "trials": s.trials,
                "best_trial_index": s.trial_index,
                "best_score": s.score,
                "trials_to_within_1pct": s.trials_to_near_best,
                "best_params": s.params,
            }
            for s in stability.seeds
        ],
        "best_scores": vars(stability.scores),
        "parameters": [
            {
                "name": p.name,
                "type": p.kind,
                "lower": p.lower,
                "upper": p.upper,
                "best_values": _by_seed(report, p.values),
                "positions": _by_seed(report, p.positions),
                "spread": p.spread,
                "consensus": p.consensus,
            }
            for p in stability.parameters
        ],
        "consensus": {
            "params": dict(evaluation.params),
            "status": evaluation.status.value,
            "score": evaluation.score,
            "metrics": dict(evaluation.metrics),
            "message": evaluation.message,
            "basis": evaluation.basis,
            "recorded": "now" if report.consensus.new else "earlier",
        },
        "verdict": {
            "result": stability.verdict.result,
            "reason": stability.verdict.reason,
            "largest_spread": stability.verdict.largest_spread,
            "parameter": stability.verdict.parameter,
            "above_limit": list(stability.verdict.above_limit),
            "param_spread_limit": PARAM_SPREAD_LIMIT,
            "min_seeds": MIN_SEEDS,
            "near_best_share": NEAR_BEST_SHARE,
        },
        "holdout": None if report.holdout is None else holdout_json(report.holdout, report.penalty),
        "walk_forward": None
        if report.walk_forward is None
        else walk_forward_json(report.walk_forward),
        "robustness": None if report.robustness is None else robustness_json(report.robustness),
        "plots": [str(path) for path in report.plots],
        "plot_notes": list(report.plot_notes),
        "scope": SCOPE,
    }


def _by_seed(report: Report, values: tuple[Any, ...]) -> dict[str, Any]:
    """Values in the order of the seeds, keyed by the seed (JSON keys are strings)."""
    return {str(s.seed): v for s, v in zip(report.stability.seeds, values, strict=True)}
