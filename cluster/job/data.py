"""A job's candles: "the last N" resolved to a fixed range, then loaded and cleaned once.

`resolve_data` turns `last_candles = N` into the fixed `[start, end)` it means now (by
the exchange's clock), and an open-ended Parquet range into the file's range, so the
resolved spec, and so `spec_id`, say exactly which candles a job saw. `load_job_data`
loads them through `cluster.candles` (the same sanity checks and gap policy as every
other entry point) and returns the spec with its range fixed and the dataset.
`load_holdout_data` does the same for the job's holdout range, if it has one, and
refuses a holdout that overlaps the search range as loaded.
"""

from __future__ import annotations

from dataclasses import replace

from cluster.candles.dataset import Dataset, load_candles, resolve_last_candles
from cluster.candles.exchange import DownloadSettings, ExchangeClient
from cluster.candles.incremental import ClientFactory
from cluster.candles.sources import CcxtSource, ParquetSource
from cluster.errors import InvalidInput
from cluster.job.out_of_sample import Holdout, overlap_problems
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


def load_holdout_data(
    spec: JobSpec,
    search: Dataset,
    *,
    settings: DownloadSettings | None = None,
    client_factory: ClientFactory = ExchangeClient,
) -> tuple[JobSpec, Dataset | None]:
    """The spec with its holdout range fixed, and the holdout's cleaned dataset (None
    without a holdout). `spec` and `search` are `load_job_data`'s result: the holdout is
    the same source over its own range, cleaned by the same rules.

    Raises `InvalidInput` when the holdout overlaps the search range (both as loaded:
    an open end of a Parquet range reaches the file's first or last candle) or holds no
    valid candles.
    """
    if spec.holdout is None:
        return spec, None
    source = spec.data_source()
    start, end = spec.holdout.start, spec.holdout.end
    holdout_source: ParquetSource | CcxtSource
    if isinstance(source, ParquetSource):  # noqa: SIM114  (one branch per type, for mypy)
        holdout_source = replace(source, start=start, end=end)
    elif isinstance(source, CcxtSource) and start is not None and end is not None:
        holdout_source = replace(source, start=start, end=end)
    else:  # parse refuses the others
        raise InvalidInput(f"holdout: not available for a {source.kind} source")
    dataset = load_candles(
        holdout_source,
        gap_policy=spec.data.gap_policy,  # type: ignore[arg-type]  # checked by parse
        max_fill_share=spec.data.max_fill_share,
        settings=settings,
        client_factory=client_factory,
    )
    manifest = dataset.manifest
    problems = overlap_problems(
        (search.manifest.start, search.manifest.end), (manifest.start, manifest.end)
    )
    if problems:
        raise InvalidInput(problems)
    if manifest.rows == 0:
        raise InvalidInput(f"holdout: no candles in {spec.holdout.describe()}")
    return replace(spec, holdout=Holdout(manifest.start, manifest.end)), dataset
