"""Is the optimum real? The statistics behind the report's robustness sections.

Pure functions of numbers (no records, no Ray, no database), each citing its source:
- `returns.py`: per-bar returns of an equity curve and their moments, with sums in a
  fixed order so that every figure has the same bits on every machine;
- `deflated.py`: the Probabilistic and the Deflated Sharpe Ratio (Bailey and Lopez de
  Prado, 2012 and 2014);
- `pbo.py`: the Probability of Backtest Overfitting by combinatorially symmetric
  cross-validation (Bailey, Borwein, Lopez de Prado and Zhu, 2017);
- `montecarlo.py`: resampled trade sequences and a block bootstrap of the candles;
- `sensitivity.py`: the neighbourhood of an optimum, and whether it is a plateau.

`cluster.report.robustness` feeds them the records and the ensemble's candles and
records what they find.

Determinism: every result here is a function of its inputs and of the seeds it is
given. Reductions are left-to-right (`numpy.add.accumulate` is sequential by
definition) or exact (sorting, max), and random draws come from generators seeded by
`search.core.seeded_generator`; nothing depends on the CPU's SIMD width or on BLAS.
"""
