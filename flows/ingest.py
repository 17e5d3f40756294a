"""Flow: files (or a Tiled array node) → a dataset in Tiled."""

from __future__ import annotations

from prefect import flow, get_run_logger

from core.data.imageio import split_api_key
from core.data.ingest import ingest
from core.settings import Settings, get_settings
from flows.params import IngestParams
from flows.progress import FlowProgress
from flows.store import get_store, provenance


@flow(name="ingest", log_prints=False)
def ingest_flow(params: IngestParams) -> str:
    """Read, preprocess and store an image stack; unreadable files are listed, not fatal."""
    log = get_run_logger()
    progress = FlowProgress("ingest")
    store = get_store()
    result = ingest(
        params.source,
        store,
        params.preprocess,
        roots=get_settings().data_roots,
        name=params.name,
        on_progress=lambda done, total: progress(done / max(total, 1), f"{done}/{total} files"),
        tiled_servers=tiled_servers(get_settings()),
        scale=params.scale,
    )
    store.update_metadata("datasets", result.dataset_id, **provenance())
    for failure in result.failures:
        log.warning("skipped %s: %s", failure["source"], failure["reason"])
    log.info("dataset %s: %d frames%s", result.dataset_id, result.n_frames,
             f"; {result.skipped}" if result.failures else "")
    progress(1.0, f"{result.n_frames} frames", force=True)
    return result.dataset_id


def tiled_servers(settings: Settings) -> dict[str, str | None]:
    """The Tiled servers an ingest may read, each with its key: the store's, then the allow-list."""
    servers = dict(split_api_key(uri) for uri in settings.tiled_allowed_uris)
    if settings.tiled_uri:
        servers[split_api_key(settings.tiled_uri)[0]] = settings.resolved_tiled_api_key()
    return servers
