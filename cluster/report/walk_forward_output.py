"""The walk-forward section of the report as text and JSON, ending with one sentence
that says what it means for the decision to trade the strategy.

The sentence follows fixed rules on the recorded numbers (`walk_forward_sentence`), so
the same records always give the same words.
"""

from __future__ import annotations

from typing import Any

from cluster.candles.times import format_utc
from cluster.report.robustness_output import KEPT_MOST, meaning, shown
from cluster.report.walk_forward import WalkForward

STITCHED = ("sharpe", "total_return", "max_drawdown", "n_trades")


def walk_forward_lines(found: WalkForward) -> list[str]:
    plan = found.plan
    windows = len(found.seeds[0].result["windows"]) if found.seeds else 0
    lines = [
        f"Walk-forward: each window searched again on its {plan['train']:,} candles alone, "
        f"its best then tested on the {plan['test']:,} after them ({windows} window(s) per "
        f"seed, one every {plan['step']:,} candles)",
        f"  {'seed':>10}{'window':>8}  {'test from':<18}{'trial':>6}{'train score':>13}"
        f"{'test score':>12}{'return':>10}{'trades':>8}",
    ]
    for seed in found.seeds:
        for entry in seed.result["windows"]:
            test = entry["test"]
            lines.append(
                f"  {seed.seed:>10}{entry['window_index']:>8}  {format_utc(entry['test_from']):<18}"
                f"{entry['trial_index']:>6}{shown(entry['in_sample']['score']):>13}"
                f"{shown(test['score']):>12}{shown(test['total_return']):>10}"
                f"{shown(test['n_trades']):>8}"
            )
    head = "".join(f"{t:>9}" for t in ("sharpe", "return", "max dd", "trades"))
    lines += [
        "  The test windows stitched into one equity curve per seed (compounded), beside the",
        "  seed's whole-range best on the same candles (in sample: its search saw them)",
        f"  {'seed':>10}   {'out of sample:':<15}{head}   {'in sample:':<11}{head}",
    ]
    for seed in found.seeds:
        outside, inside = seed.result["stitched"], seed.result["in_sample"]["stitched"]
        lines.append(f"  {seed.seed:>10}   {'':<15}{_row(outside)}   {'':<11}{_row(inside)}")
    lines += meaning(walk_forward_sentence(found))
    return lines


def _row(figures: dict[str, Any]) -> str:
    if "reason" in figures:
        return f"  ({figures['reason']})"
    return "".join(f"{shown(figures.get(name)):>9}" for name in STITCHED)


def walk_forward_sentence(found: WalkForward) -> str:
    """About the stitched out-of-sample Sharpe ratios of the seeds: none defined (the
    curves could not be stitched, or never moved), all at or below 0, some above 0, or
    all above 0 (and then whether they kept KEPT_MOST of the whole-range best's Sharpe
    on the same candles)."""
    test = f"{found.plan['test']:,}"
    outside = [s.result["stitched"].get("sharpe") for s in found.seeds]
    inside = [s.result["in_sample"]["stitched"].get("sharpe") for s in found.seeds]
    defined = [x for x in outside if x is not None]
    if not defined:
        reasons = [s.result["stitched"]["reason"] for s in found.seeds
                   if "reason" in s.result["stitched"]]  # fmt: skip
        if reasons:
            return (
                f"The test windows could not be stitched ({reasons[0]}), so walk-forward "
                "cannot confirm an edge."
            )
        return (
            "The stitched test windows have no Sharpe ratio (no trades), so walk-forward "
            "cannot confirm an edge; use longer test windows."
        )
    said = (
        f"Re-optimized on each training window and traded on the next {test} candles, the "
        f"strategy's stitched out-of-sample Sharpe ran {shown(min(defined))} to "
        f"{shown(max(defined))} over {len(outside)} seed(s): "
    )
    winners = sum(1 for x in outside if x is not None and x > 0.0)
    if winners == 0:
        return said + (
            "it lost money on candles no window's search saw, so re-optimizing this "
            "strategy does not carry an edge forward; do not trade it on this evidence."
        )
    if winners < len(outside):
        return said + (
            f"only {winners} of {len(outside)} seed(s) made money, so whether it works "
            "depends on the search's luck; do not trade it on this evidence."
        )
    kept = all(
        i is None or i <= 0.0 or (o is not None and o >= KEPT_MOST * i)
        for o, i in zip(outside, inside, strict=True)
    )
    if not kept:
        return said + (
            "every seed made money, but less than half the Sharpe its whole-range best "
            "shows on the same candles with hindsight: expect much less than the backtest."
        )
    return said + (
        "every seed made money out of sample and kept most of what hindsight shows, the "
        "best evidence here that re-optimizing this strategy on recent candles works."
    )


def walk_forward_json(found: WalkForward) -> dict[str, Any]:
    return {
        **found.plan,
        "recorded": "now" if found.new else "earlier",
        "by_seed": {str(seed.seed): seed.result for seed in found.seeds},
        "meaning": walk_forward_sentence(found),
    }
