"""A job's candles: "the last N" resolved to a fixed range, then loaded and cleaned once.

`resolve_data` turns `last_candles = N` into the fixed `[start, end)` it means now (by
the exchange's clock), and an open-ended Parquet range into the file's range, so the
resolved spec, and so `spec_id`, say exactly which candles a job saw. `load_job_data`
loads them through `cluster.candles` (the same sanity checks and gap policy as every
other entry point) and returns the spec with its range fixed and the dataset.
"""

from __future__ import annotations

from dataclasses import replace

from cluster.candles.dataset import Dataset, load_candles, resolve_last_candles
from cluster.candles.exchange import DownloadSettings, ExchangeClient
from cluster.candles.incremental import ClientFactory
from cluster.candles.sources import ParquetSource
from cluster.job.spec import DataSpec, JobSpec, LastCandles


def resolve_data(
    spec: JobSpec,
    *,
    settings: DownloadSettings | None = None,
    client_factory: ClientFactory = ExchangeClient,
) -> JobSpec:
    """`spec` with "the last N candles" replaced by the fixed range they are now."""
    source = spec.data.source
    if not isinstance(source, LastCandles):
        return spec
    fixed = resolve_last_candles(
        source.exchange,
        source.pair,
        source.timeframe,
        source.count,
        settings=settings,
        client_factory=client_factory,
    )
    return replace(spec, data=replace(spec.data, source=fixed))


def load_job_data(
    spec: JobSpec,
    *,
    settings: DownloadSettings | None = None,
    client_factory: ClientFactory = ExchangeClient,
) -> tuple[JobSpec, Dataset]:
    """The resolved spec (every range fixed) and its cleaned dataset.

    Bad data raises `InvalidInput` naming the row or gap, before anything is recorded.
    """
    spec = resolve_data(spec, settings=settings, client_factory=client_factory)
    dataset = load_candles(
        spec.data_source(),
        gap_policy=spec.data.gap_policy,  # type: ignore[arg-type]  # checked by parse
        max_fill_share=spec.data.max_fill_share,
        settings=settings,
        client_factory=client_factory,
    )
    source = spec.data.source
    if isinstance(source, ParquetSource) and (source.start is None or source.end is None):
        fixed = replace(source, start=dataset.manifest.start, end=dataset.manifest.end)
        spec = replace(spec, data=DataSpec(fixed, spec.data.gap_policy, spec.data.max_fill_share))
    return spec, dataset
