"""The backtest: the key-level reversal strategy of STRATEGY.md, pure code on arrays.

Everything here imports numpy (and numba) and nothing of ray, psycopg or ccxt, except
`trainable.tune_adapter`, the thin Tune function trainable around the kernel.
"""
