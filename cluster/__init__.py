"""The driver side of reprotune: job specs, candle data, the Ray driver, records, CLI.

Importing this package is cheap: heavy libraries (ray, psycopg, ccxt) are imported by
the modules that need them, so `python -m cluster --help` answers at once.
"""
