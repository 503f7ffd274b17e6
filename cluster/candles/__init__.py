"""Candle data: sources, the ccxt download into a checked Parquet cache, cleaning by
explicit rules, the content fingerprint and the manifest.

The driver's entry points are `cluster.candles.dataset.load_candles` and
`resolve_last_candles`; sources live in `cluster.candles.sources`. This package module
imports nothing heavy, so that `python -m cluster --help` stays fast.
"""
