"""Is the optimum real? The report's robustness figures, computed once from the records
and the ensemble's candles and recorded (sql/004, table `robustness`), so a later report
shows the same numbers without running anything.

- `deflated_sharpe` / "ensemble": the Deflated Sharpe Ratio and the PSR against zero of
  the ensemble's best trial and of each seed's best (cluster.robustness.deflated). N is
  the exact number of distinct parameter sets the ensemble's trials tried (all seeds,
  invalid ones included: they were tried); V[SR_n] the sample variance of those sets'
  recorded Sharpe ratios (per bar); the moments come from the selected trial's per-bar
  returns, recomputed from its parameters.
- `pbo` / "cscv": the Probability of Backtest Overfitting over every distinct parameter
  set with an equity curve (an invalid backtest has none), per-bar returns recomputed
  from the parameters, never stored (cluster.robustness.pbo).
- `monte_carlo` / "seed N": the seed's best parameters, trades reordered and
  bootstrapped (compounded return fractions) and the candles block-bootstrapped, each
  path seeded by (seed, best trial_index, scenario, path) (cluster.robustness.montecarlo).
- `sensitivity` / "seed N": each searched parameter of the seed's best moved down and
  up by SHARE of its range (ints by 1), backtested (cluster.robustness.sensitivity).

The returns are recomputed here, in the report's process, on the same candle table the
trials saw (the ensemble's dataset, fingerprint checked): the kernel's bits do not depend
on the process (DESIGN.md contract 2), so no cluster is needed to re-derive them.

Every figure is a deterministic function of the records, the candles and SETTINGS; the
result is JSON with floats in their shortest round-trip form, so the recorded text names
every bit. What a report shows is always the recorded JSON (a new figure is first
written, then read back), so a first report and a later one print the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cluster.records.exact import canonical_params
from cluster.records.out_of_sample import FigureRecord
from cluster.records.recorder import Recorder
from cluster.records.types import EnsembleDetail, TrialRecord
from cluster.report.backtests import EnsembleData, refuse_changed_code_for
from cluster.report.frame import recorded_space
from cluster.report.holdout import seed_label
from cluster.report.stability import Stability
from cluster.robustness import deflated, montecarlo, pbo, returns, sensitivity
from search.space import Space
from trainable.types import Candles

VERSION = 1  # a change of what a figure means or how it is computed needs a new one
SETTINGS: dict[str, Any] = {
    "version": VERSION,
    "blocks": pbo.DEFAULT_BLOCKS,
    "trade_paths": 1000,
    "candle_paths": 100,
    "candle_block": 48,  # consecutive candles per bootstrap block (4 hours of 5m candles)
    "share": sensitivity.DEFAULT_SHARE,
    "confidence": deflated.CONFIDENCE,
}
ENSEMBLE_LABEL = "ensemble"
PBO_LABEL = "cscv"


@dataclass(frozen=True)
class Robustness:
    """The recorded figures (plain JSON data, as `FigureRecord.result`), by analysis;
    per-seed ones by their label "seed N". `new` when this report computed them."""

    deflated_sharpe: dict[str, Any]
    pbo: dict[str, Any]
    monte_carlo: dict[int, dict[str, Any]]  # by seed
    sensitivity: dict[int, dict[str, Any]]  # by seed
    settings: dict[str, Any]
    new: bool


def robustness(
    recorder: Recorder, detail: EnsembleDetail, stability: Stability, data: EnsembleData
) -> Robustness:
    """The ensemble's recorded figures, computed and recorded first if missing."""
    wanted = _labels(stability)
    stored = {(f.analysis, f.label): f for f in recorder.figures(detail.id)}
    new = False
    if not all(key in stored for key in wanted):
        refuse_changed_code_for(detail, "robustness figures")
        for figure in compute(recorder, detail, stability, data):
            recorder.record_figure(figure)  # an existing one must be equal (else it raises)
        stored = {(f.analysis, f.label): f for f in recorder.figures(detail.id)}
        new = True
    settings = dict(stored[wanted[0]].settings)
    return Robustness(
        deflated_sharpe=dict(stored["deflated_sharpe", ENSEMBLE_LABEL].result),
        pbo=dict(stored["pbo", PBO_LABEL].result),
        monte_carlo={
            s.seed: dict(stored["monte_carlo", seed_label(s.seed)].result) for s in stability.seeds
        },
        sensitivity={
            s.seed: dict(stored["sensitivity", seed_label(s.seed)].result) for s in stability.seeds
        },
        settings=settings,
        new=new,
    )


def _labels(stability: Stability) -> list[tuple[str, str]]:
    labels = [("deflated_sharpe", ENSEMBLE_LABEL), ("pbo", PBO_LABEL)]
    for best in stability.seeds:
        labels += [("monte_carlo", seed_label(best.seed)), ("sensitivity", seed_label(best.seed))]
    return labels


def compute(
    recorder: Recorder, detail: EnsembleDetail, stability: Stability, data: EnsembleData
) -> list[FigureRecord]:
    """Every figure of the module docstring, from the records and the candles."""
    spec, candles, _ = data.load()
    strategy, constants = spec.strategy_object(), spec.constants()
    annualize = math.sqrt(constants.bars_per_year)
    trials = recorder.ensemble_trials(detail.id)
    distinct = distinct_sets(trials)
    curves = _equity_curves(strategy, candles, constants, distinct)

    def figure(analysis: str, label: str, result: Mapping[str, Any]) -> FigureRecord:
        return FigureRecord(detail.id, analysis, label, _plain(result), SETTINGS)

    figures = [
        figure("deflated_sharpe", ENSEMBLE_LABEL,
               _deflated(stability, distinct, curves, annualize)),
        figure("pbo", PBO_LABEL, _pbo(curves, annualize)),
    ]  # fmt: skip
    space = recorded_space(detail.spec)
    penalty = float(detail.spec["score_penalty"])
    for best in stability.seeds:
        label = seed_label(best.seed)
        figures.append(figure("monte_carlo", label, _monte_carlo(spec, candles, best.seed, best)))
        measured = [t.score for t in trials if t.seed == best.seed and t.score != penalty]
        figures.append(
            figure("sensitivity", label,
                   _sensitivity(strategy, candles, constants, best, space, measured))
        )  # fmt: skip
    return figures


def distinct_sets(trials: list[TrialRecord]) -> dict[str, TrialRecord]:
    """The first trial of each distinct parameter set (canonical params, bit for bit),
    in seed, trial_index order."""
    found: dict[str, TrialRecord] = {}
    for trial in sorted(trials, key=lambda t: (t.seed, t.trial_index)):
        found.setdefault(canonical_params(trial.params), trial)
    return found


def _equity_curves(
    strategy: Any, candles: Candles, constants: Any, distinct: Mapping[str, TrialRecord]
) -> dict[str, np.ndarray]:
    """The equity curve of every distinct set with an `ok` outcome (strategies without
    equity curves give none)."""
    if strategy.equity is None:
        return {}
    curves = {}
    for key, trial in distinct.items():
        if trial.status.value != "ok":
            continue
        try:
            curves[key] = strategy.equity(candles, trial.params, constants)
        except ValueError:  # the same rejection the trial recorded as invalid
            continue
    return curves


def _deflated(
    stability: Stability,
    distinct: Mapping[str, TrialRecord],
    curves: Mapping[str, np.ndarray],
    annualize: float,
) -> dict[str, Any]:
    sharpes = [t.metrics.get("sharpe") for t in distinct.values()]
    per_bar = [float(s) / annualize for s in sharpes if s is not None]
    variance = deflated.sample_variance(per_bar)
    result: dict[str, Any] = {
        "trials": len(distinct),
        "sharpe_variance": variance,
        "with_sharpe": len(per_bar),
        "annualize": annualize,
        "selected": [],  # each seed's best, the best first (highest score, then seed)
    }
    for best in sorted(stability.seeds, key=lambda s: (-s.score, s.seed)):
        entry: dict[str, Any] = {"seed": best.seed, "trial_index": best.trial_index}
        curve = curves.get(canonical_params(best.params))
        found = None if curve is None else returns.moments(returns.bar_returns(curve))
        if found is None or found.sharpe is None:
            entry["reason"] = "no per-bar Sharpe ratio (no equity curve, or it never moved)"
        else:
            assert found.skewness is not None and found.kurtosis is not None
            entry.update(asdict(deflated.deflated_sharpe(
                trials=len(distinct), sharpe_variance=variance, sharpe=found.sharpe,
                n_returns=found.n, skewness=found.skewness, kurtosis=found.kurtosis,
                annualize=annualize,
            )))  # fmt: skip
        result["selected"].append(entry)
    return result


def _pbo(curves: Mapping[str, np.ndarray], annualize: float) -> dict[str, Any]:
    blocks = int(SETTINGS["blocks"])
    if len(curves) < 2:
        return {"reason": f"{len(curves)} parameter set(s) with an equity curve; PBO needs 2"}
    n_returns = len(next(iter(curves.values()))) - 1
    try:
        sums = pbo.BlockSums(n_returns, blocks)
    except ValueError as error:
        return {"reason": str(error)}
    for curve in curves.values():
        sums.add(returns.bar_returns(curve))
    return asdict(pbo.cscv(sums, annualize=annualize))


def _trade_returns(strategy: Any, candles: Candles, params: Any, constants: Any) -> Any:
    """The net return of each trade (None for a strategy that does not list its trades,
    or an invalid backtest)."""
    if strategy.trade_returns is None:
        return None
    try:
        return strategy.trade_returns(candles, params, constants)
    except ValueError:
        return None


def _monte_carlo(spec: Any, candles: Candles, seed: int, best: Any) -> dict[str, Any]:
    from trainable.strategies import outcome

    strategy, constants = spec.strategy_object(), spec.constants()
    result: dict[str, Any] = {"seed": seed, "trial_index": best.trial_index}
    trades = _trade_returns(strategy, candles, best.params, constants)
    if trades is not None:
        per_year = trades.size * constants.bars_per_year / max(1, len(candles) - 1)
        for scenario in (montecarlo.TRADE_ORDER, montecarlo.TRADE_BOOTSTRAP):
            result[scenario] = asdict(montecarlo.trade_scenario(
                trades, scenario, seed=seed, candidate=best.trial_index,
                paths=int(SETTINGS["trade_paths"]), trades_per_year=per_year,
            ))  # fmt: skip
    actual, message = outcome(strategy, candles, best.params, constants)
    if message is None:
        result[montecarlo.CANDLE_BOOTSTRAP] = asdict(montecarlo.candle_scenario(
            candles, lambda resampled: outcome(strategy, resampled, best.params, constants),
            seed=seed, candidate=best.trial_index, paths=int(SETTINGS["candle_paths"]),
            block=int(SETTINGS["candle_block"]), actual=actual,
        ))  # fmt: skip
    return result


def _sensitivity(
    strategy: Any,
    candles: Candles,
    constants: Any,
    best: Any,
    space: Space,
    measured: list[float],
) -> dict[str, Any]:
    from trainable.strategies import outcome

    scored = []
    for neighbour in sensitivity.neighbours(best.params, space, float(SETTINGS["share"])):
        metrics, _ = outcome(strategy, candles, neighbour.params, constants)
        scored.append((neighbour, float(metrics["score"])))  # type: ignore[arg-type]
    found = sensitivity.summarize(best.score, scored, measured)
    values = {f"{n.parameter} {n.direction:+d}": n.value for n, _ in scored}
    return {"seed": best.seed, "trial_index": best.trial_index, **asdict(found),
            "values": values}  # fmt: skip


def _plain(value: Any) -> Any:
    """JSON data with non-finite floats as None (an undefined figure, as in records)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
