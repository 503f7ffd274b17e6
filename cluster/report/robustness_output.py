"""The holdout and robustness sections of the report as text and JSON, each ending with
one sentence that says what the figure means for the decision to trade the parameters.

The sentences follow fixed rules on the numbers (stated next to each function), so the
same records always give the same words.
"""

from __future__ import annotations

from typing import Any

from cluster.candles.times import format_utc
from cluster.report.holdout import Holdout
from cluster.report.robustness import Robustness
from cluster.robustness.deflated import CONFIDENCE
from cluster.robustness.montecarlo import CANDLE_BOOTSTRAP, TRADE_BOOTSTRAP, TRADE_ORDER
from cluster.robustness.sensitivity import PLATEAU_KEEP

PBO_HIGH = 0.5  # at or above: the selection does no better than chance out of sample
PBO_LOW = 0.2  # below: it mostly holds up
KEPT_MOST = 0.5  # a holdout score of at least this share of the in-sample one "kept most"
METRICS = ("score", "sharpe", "total_return", "max_drawdown", "n_trades")


def meaning(sentence: str) -> list[str]:
    """The sentence after "=>", wrapped to the report's width."""
    import textwrap

    return textwrap.wrap(sentence, 96, initial_indent="  => ", subsequent_indent="     ",
                         break_on_hyphens=False)  # fmt: skip


def shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


# -- holdout --------------------------------------------------------------------------
def holdout_lines(holdout: Holdout, penalty: float) -> list[str]:
    titles = ("score", "sharpe", "return", "max dd", "trades")
    head = "".join(f"{t:>10}" for t in titles)
    lines = [
        f"Out of sample: the holdout [{format_utc(holdout.start)}, {format_utc(holdout.end)}) "
        f"({holdout.rows:,} candles, fingerprint {holdout.fingerprint[:12]}), never seen by "
        "the search",
        f"  {'parameter set':<15}{'in-sample:':<11}{head}   {'holdout:':<9}{head}",
    ]
    for row in holdout.sets:
        inside = "".join(f"{shown(row.in_sample.get(m)):>10}" for m in METRICS)
        evaluation = {"score": row.holdout.score, **row.holdout.metrics}
        outside = "".join(f"{shown(evaluation.get(m)):>10}" for m in METRICS)
        lines.append(f"  {row.label:<15}{'':<11}{inside}   {'':<9}{outside}")
    lines += meaning(holdout_sentence(holdout, penalty))
    return lines


def holdout_sentence(holdout: Holdout, penalty: float) -> str:
    """About the seed whose best scored highest in-sample: a holdout score at the
    penalty, <= 0, under KEPT_MOST of the in-sample score, or above it."""
    seeds = [row for row in holdout.sets if row.label.startswith("seed ")]
    row = max(seeds, key=lambda r: float(r.in_sample["score"]))
    inside, outside = float(row.in_sample["score"]), row.holdout.score
    said = f"The best seed's parameters ({row.label}) scored {shown(inside)} in-sample and "
    said += f"{shown(outside)} on the holdout: "
    if outside == penalty:
        return said + (
            "too few trades (or an invalid backtest) on candles the search never saw, so "
            "the holdout cannot confirm the edge; use a longer holdout."
        )
    if outside <= 0.0:
        return said + (
            "they lose money on candles the search never saw, so the in-sample result is "
            "not evidence of an edge."
        )
    if inside > 0.0 and outside < KEPT_MOST * inside:
        return said + (
            "they kept less than half of their in-sample score on candles the search never "
            "saw: expect much less than the backtest shows."
        )
    return said + (
        "they kept most of their in-sample score on candles the search never saw, the "
        "best evidence here that the edge is real."
    )


def holdout_json(holdout: Holdout, penalty: float) -> dict[str, Any]:
    return {
        "start": holdout.start,
        "end": holdout.end,
        "candles": holdout.rows,
        "dataset_fingerprint": holdout.fingerprint,
        "recorded": "now" if holdout.new else "earlier",
        "sets": [
            {
                "label": row.label,
                "params": row.params,
                "in_sample": row.in_sample,
                "holdout": {
                    "status": row.holdout.status.value,
                    "score": row.holdout.score,
                    "metrics": dict(row.holdout.metrics),
                    "message": row.holdout.message,
                },
            }
            for row in holdout.sets
        ],
        "meaning": holdout_sentence(holdout, penalty),
    }


# -- robustness -----------------------------------------------------------------------
def robustness_lines(figures: Robustness) -> list[str]:
    return [
        *_deflated_lines(figures.deflated_sharpe),
        "",
        *_pbo_lines(figures.pbo),
        "",
        *_monte_carlo_lines(figures),
        "",
        *_sensitivity_lines(figures),
    ]


def _best(figures: Robustness) -> tuple[int, dict[str, Any]]:
    selected = figures.deflated_sharpe["selected"][0]
    return int(selected["seed"]), selected


def deflated_sentence(figure: dict[str, Any]) -> str:
    """DSR above CONFIDENCE: unlikely to be luck; else within what luck gives."""
    best = figure["selected"][0]
    n = figure["trials"]
    if best.get("dsr") is None:
        return (
            "The best trial has no deflated Sharpe ratio (no per-bar Sharpe ratio), so "
            "nothing here tells its edge from luck."
        )
    if best["dsr"] > CONFIDENCE:
        return (
            f"DSR {best['dsr']:.3f} > {CONFIDENCE}: a best Sharpe this high is unlikely to "
            f"be the luck of trying {n:,} parameter sets; worth testing further."
        )
    return (
        f"DSR {best['dsr']:.3f} <= {CONFIDENCE}: after trying {n:,} parameter sets, a best "
        "Sharpe this high is within what luck alone gives; do not take it as evidence of an "
        "edge."
    )


def _deflated_lines(figure: dict[str, Any]) -> list[str]:
    lines = [
        f"Deflated Sharpe ratio (Bailey and Lopez de Prado 2014): N = {figure['trials']:,} "
        f"distinct parameter sets tried, variance of their Sharpe ratios "
        f"{shown(figure['sharpe_variance'] * figure['annualize'] ** 2)} (annualized)",
        f"  {'selected':<12}{'seed':>10}{'trial':>7}{'Sharpe':>10}{'luck':>10}{'returns':>10}"
        f"{'skew':>10}{'kurt':>10}{'PSR(0)':>10}{'DSR':>10}",
    ]
    for rank, entry in enumerate(figure["selected"]):
        label = "best" if rank == 0 else "seed's best"
        if "reason" in entry:
            lines.append(f"  {label:<12}{entry['seed']:>10}{entry['trial_index']:>7}  "
                         f"{entry['reason']}")  # fmt: skip
            continue
        scale = entry["annualize"]
        lines.append(
            f"  {label:<12}{entry['seed']:>10}{entry['trial_index']:>7}"
            f"{shown(entry['sharpe'] * scale):>10}{shown(entry['expected_max'] * scale):>10}"
            f"{entry['n_returns']:>10}{shown(entry['skewness']):>10}{shown(entry['kurtosis']):>10}"
            f"{shown(entry['psr']):>10}{shown(entry['dsr']):>10}"
        )
    lines.append("  (Sharpe and luck annualized; luck: the best Sharpe N unskilled trials reach)")
    lines += meaning(deflated_sentence(figure))
    return lines


def pbo_sentence(figure: dict[str, Any]) -> str:
    """PBO at or above PBO_HIGH: chance; at or above PBO_LOW: often fails; else holds."""
    if "reason" in figure:
        return f"No PBO: {figure['reason']}."
    share = f"In {figure['pbo']:.0%} of the {figure['splits']:,} splits"
    said = f"{share} the in-sample best ranked in the bottom half out of sample: "
    if figure["pbo"] >= PBO_HIGH:
        return said + (
            "picking parameters by this backtest does no better than chance, so do not "
            "trust the selected set."
        )
    if figure["pbo"] >= PBO_LOW:
        return said + "the selection often fails out of sample; treat the best set with caution."
    return said + "the selection mostly holds up out of sample."


def _pbo_lines(figure: dict[str, Any]) -> list[str]:
    if "reason" in figure:
        return [f"Probability of backtest overfitting: none ({figure['reason']})"]
    q = figure["logit_quantiles"]
    return [
        f"Probability of backtest overfitting (CSCV, {figure['blocks']} blocks, "
        f"{figure['splits']:,} splits, {figure['trials']:,} parameter sets, "
        f"{figure['n_returns']:,} returns each): PBO {figure['pbo']:.3f}",
        f"  logit of the in-sample best's out-of-sample rank: 5% {shown(q['0.05'])}, median "
        f"{shown(q['0.5'])}, 95% {shown(q['0.95'])}; degradation slope "
        f"{shown(figure['slope'])}; probability of loss {figure['probability_of_loss']:.3f}",
        *meaning(pbo_sentence(figure)),
    ]


def monte_carlo_sentence(figures: Robustness) -> str:
    """About the best seed: the 95% drawdown of reordered trades against the backtest's,
    and the 5% Sharpe of resampled markets (below zero: this history's luck matters)."""
    seed, _ = _best(figures)
    figure = figures.monte_carlo[seed]
    parts = []
    order = figure.get(TRADE_ORDER)
    if order and order.get("max_drawdown"):
        parts.append(
            f"with seed {seed}'s trades in other orders, 1 path in 20 fell more than "
            f"{order['max_drawdown']['0.95']:.1%} (the backtest: "
            f"{order['actual']['max_drawdown']:.1%}), so size positions for that drawdown"
        )
    candles = figure.get(CANDLE_BOOTSTRAP)
    if candles and candles.get("sharpe"):
        low, high = candles["sharpe"]["0.05"], candles["sharpe"]["0.95"]
        verdict = (
            "below zero in more than 1 in 20, so the edge may be this history's luck"
            if low < 0.0
            else "above zero in 19 of 20, so it does not hinge on this one history"
        )
        parts.append(
            f"on resampled markets its Sharpe ran {shown(low)} to {shown(high)}, {verdict}"
        )
    if not parts:
        return f"Seed {seed}'s best has no trades or resampled markets to judge."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _monte_carlo_lines(figures: Robustness) -> list[str]:
    settings = figures.settings
    lines = [
        f"Monte Carlo of each seed's best ({settings['trade_paths']:,} trade paths, "
        f"{settings['candle_paths']:,} market paths of {settings['candle_block']}-candle blocks)",
        f"  {'seed':>10}  {'scenario':<17}{'Sharpe 5%':>10}{'50%':>10}{'95%':>10}"
        f"{'max dd 50%':>12}{'95%':>10}{'backtest dd':>13}",
    ]
    for seed, figure in figures.monte_carlo.items():
        for scenario in (TRADE_ORDER, TRADE_BOOTSTRAP, CANDLE_BOOTSTRAP):
            found = figure.get(scenario)
            if not found:
                continue
            sharpe = found.get("sharpe") or {}
            drawdown = found.get("max_drawdown") or {}
            lines.append(
                f"  {seed:>10}  {scenario:<17}{shown(sharpe.get('0.05')):>10}"
                f"{shown(sharpe.get('0.5')):>10}{shown(sharpe.get('0.95')):>10}"
                f"{shown(drawdown.get('0.5')):>12}{shown(drawdown.get('0.95')):>10}"
                f"{shown(found['actual'].get('max_drawdown')):>13}"
            )
    lines += meaning(monte_carlo_sentence(figures))
    return lines


def sensitivity_sentence(figures: Robustness) -> str:
    """About the best seed: plateau (every neighbour keeps at least PLATEAU_KEEP of the
    edge over the seed's median trial) or spike (names the parameter that keeps least)."""
    seed, _ = _best(figures)
    figure = figures.sensitivity[seed]
    share = figures.settings["share"]
    if figure["verdict"] is None:
        return f"Seed {seed}'s best has no edge over its median trial to keep: no verdict."
    if figure["verdict"] == "plateau":
        return (
            f"Every neighbour of seed {seed}'s best (each parameter moved by {share:.0%} of "
            f"its range, ints by 1) keeps at least {PLATEAU_KEEP:.0%} of its edge: a "
            "plateau, so small errors in the parameters cost little."
        )
    worst = figure["worst"]
    kept = min(figure["keeps"][worst].values())
    return (
        f"Moving {worst} of seed {seed}'s best a little keeps only {kept:.0%} of its edge "
        "over the median trial: a spike, likely fitted to noise; prefer parameters where "
        "the score is flat."
    )


def _sensitivity_lines(figures: Robustness) -> list[str]:
    share = figures.settings["share"]
    lines = [
        f"Sensitivity of each seed's best (each parameter moved by {share:.0%} of its "
        "range, ints by 1; kept = share of the edge over the seed's median trial)",
        f"  {'seed':>10}  {'verdict':<9}{'score':>10}{'median':>10}  least kept",
    ]
    for seed, figure in figures.sensitivity.items():
        worst = figure["worst"]
        kept = "-" if worst is None else f"{min(figure['keeps'][worst].values()):.0%} ({worst})"
        lines.append(
            f"  {seed:>10}  {figure['verdict'] or '-':<9}{shown(figure['score']):>10}"
            f"{shown(figure['median']):>10}  {kept}"
        )
    lines += meaning(sensitivity_sentence(figures))
    return lines


def robustness_json(figures: Robustness) -> dict[str, Any]:
    return {
        "settings": figures.settings,
        "recorded": "now" if figures.new else "earlier",
        "deflated_sharpe": {**figures.deflated_sharpe, "meaning": deflated_sentence(
            figures.deflated_sharpe)},
        "pbo": {**figures.pbo, "meaning": pbo_sentence(figures.pbo)},
        "monte_carlo": {
            "by_seed": {str(seed): f for seed, f in figures.monte_carlo.items()},
            "meaning": monte_carlo_sentence(figures),
        },
        "sensitivity": {
            "by_seed": {str(seed): f for seed, f in figures.sensitivity.items()},
            "meaning": sensitivity_sentence(figures),
        },
    }  # fmt: skip
