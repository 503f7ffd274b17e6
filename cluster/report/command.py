"""`python -m cluster report [ENSEMBLE]`: do the seeds of an ensemble agree?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cluster.records.command_options import add_database_argument, records_command

HELP = (
    "compare an ensemble's seeds (best trials, parameter spread, consensus, a verdict) and "
    "test its optimum (holdout, deflated Sharpe, PBO, Monte Carlo, sensitivity)"
)

EPILOG = """\
For each seed: its best trial and how many trials it took to come within 1% of it. For
each parameter: the seeds' best values and their spread, the share of the search range
they span (0: every seed ended at the same value, 1: they span the whole range). The
consensus is each parameter's median over the seeds' bests (ints rounded), backtested
once on the ensemble's candles and recorded with it, so the report is reproducible.
The verdict is `stable` when every searched parameter's spread is at most 0.2, with at
least 2 seeds, else `unstable`. It is an in-sample statement about the optimizer, not a
test on data the search never saw: for that, a job's holdout (each seed's best and the
consensus on candles the search never saw, beside their in-sample results) and the
robustness figures (deflated Sharpe ratio, probability of backtest overfitting, Monte
Carlo, sensitivity), computed on the first report and recorded, each with a sentence
saying what it means for trading the parameters. docs/report.md explains every number.

Exit codes: 0 reported; 2 the ensemble is not complete, not recorded, or its candles
changed (both fingerprints are named); 1 anything else."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "ensemble",
        metavar="ENSEMBLE",
        nargs="?",
        help="ensemble id or its first characters (default: the latest ensemble)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        type=Path,
        help="also draw the report's pictures as PNG files into DIR (files of the same "
        "names are replaced)",
    )
    parser.add_argument(
        "--exchange-url",
        metavar="URL",
        help="base URL replacing a ccxt exchange's REST API, should the candles need a "
        "download (a mirror or a local replay)",
    )
    add_database_argument(parser)


@records_command
def run(args: argparse.Namespace) -> int:
    from cluster.candles.exchange import DownloadSettings
    from cluster.report.output import render_text, report_json
    from cluster.report.report import ensemble_report

    report = ensemble_report(
        args.ensemble,
        database_url=args.database_url,
        plot_dir=args.plot,
        download=DownloadSettings(api_url=args.exchange_url),
    )
    if args.json:
        print(json.dumps(report_json(report), indent=2, allow_nan=False))
    else:
        print(render_text(report), end="")
    return 0
