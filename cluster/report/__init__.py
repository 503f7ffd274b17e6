"""The ensemble report: do the seeds agree? (`python -m cluster report`)

- `frame.py`: an ensemble's trials as a pandas DataFrame, exact values (`trials_frame`).
- `stability.py`: each seed's best, the spread of the seeds' best parameters, the
  consensus parameter set and the verdict, with its threshold constants.
- `backtests.py`: the report's own backtests on the ensemble's candles: the consensus
  (recorded once, as an evaluation of the ensemble) and the equity curves.
- `holdout.py`: each seed's best and the consensus on the job's holdout (recorded by the
  run after the search, or by the first report), beside their in-sample results.
- `robustness.py`: the deflated Sharpe ratio, PBO, Monte Carlo and sensitivity figures
  (cluster.robustness), computed once from the records and the candles and recorded.
- `report.py`: `ensemble_report`, which puts them together; `output.py` and
  `robustness_output.py` render it as text or JSON, `plots.py` and
  `robustness_plots.py` as PNG pictures; `command.py` is the command.

Nothing here imports Ray. The verdict is in-sample: it says whether the optimizer's
answer is stable; the holdout and the robustness figures ask whether it holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cluster.report.frame import trials_frame
    from cluster.report.report import ensemble_report

__all__ = ["ensemble_report", "trials_frame"]


def __getattr__(name: str) -> Any:
    # pandas and the records layer load only when a report or a frame is asked for.
    if name == "trials_frame":
        from cluster.report.frame import trials_frame

        return trials_frame
    if name == "ensemble_report":
        from cluster.report.report import ensemble_report

        return ensemble_report
    raise AttributeError(f"module 'cluster.report' has no attribute {name!r}")
