"""Flow: files (or a Tiled array node) → a dataset in Tiled."""

from __future__ import annotations

from prefect import flow, get_run_logger

from core.ingest import ingest
from core.settings import get_settings
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
    )
    store.update_metadata("datasets", result.dataset_id, **provenance())
    for failure in result.failures:
        log.warning("skipped %s: %s", failure["source"], failure["reason"])
    log.info("dataset %s: %d frames, %d files skipped", result.dataset_id, result.n_frames, len(result.failures))
    progress(1.0, f"{result.n_frames} frames", force=True)
    return result.dataset_id
