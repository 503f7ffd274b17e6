"""The ensemble report: do the seeds agree? (`python -m cluster report`)

- `frame.py`: an ensemble's trials as a pandas DataFrame, exact values (`trials_frame`).
- `stability.py`: each seed's best, the spread of the seeds' best parameters, the
  consensus parameter set and the verdict, with its threshold constants.
- `backtests.py`: the report's own backtests on the ensemble's candles: the consensus
  (recorded once, as an evaluation of the ensemble) and the equity curves.
- `report.py`: `ensemble_report`, which puts them together; `output.py` renders it as
  text or JSON, `plots.py` as PNG pictures; `command.py` is the command.

Nothing here imports Ray. The verdict is in-sample: it says whether the optimizer's
answer is stable, not whether it holds on other data.
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
