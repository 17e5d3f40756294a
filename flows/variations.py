"""Flow: Monte Carlo material variations around reference states, written to Tiled as they are made
(layout: core.data.results.variations)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from prefect import flow, get_run_logger, task

from core.models.checkpoint import load_model
from core.variations.descriptors import DESCRIPTORS
from core.models.device import pick_device
from core.models.generator import latent_dim_of, prior_latents
from core.settings import get_settings
from core.data.results import latents, variations
from core.variations.clusters import cluster_variations
from core.variations.filters import FilterParams
from core.variations.measured import dataset_traces
from core.variations.sampling import VariationParams, sample_variations
from core.variations.traces import TRACE_UNITS, trace_modes, trace_table
from flows.params import ReferenceStates, SampleVariationsParams
from flows.progress import CancelCheck, FlowProgress
from flows.store import TILED_RETRIES, get_store, provenance, read_metadata


@task(**TILED_RETRIES)
def reference_latents(refs: ReferenceStates, model_id: str, latent_dim: int, seed: int) -> np.ndarray:
    """(M, d) reference latents: the lassoed frames' latent means, or prior draws.

    Lassoed latents must come from ``model_id`` itself: another model's z means nothing to it.
    """
    if refs.n_prior:
        return prior_latents(refs.n_prior, latent_dim, seed=seed)
    made_by = read_metadata("latents", refs.latents_id).get("model_id")
    if made_by != model_id:
        raise ValueError(f"latents {refs.latents_id} were made by model {made_by}, not {model_id}: "
                         "lasso the references on a map of this model")
    store = get_store()
    n = latents.count(store, refs.latents_id)
    bad = [i for i in refs.indices if i >= n]
    if bad:
        raise ValueError(f"frames {bad[:5]} are not in latents {refs.latents_id} ({n} frames)")
    return latents.read_means(store, refs.latents_id)[np.asarray(refs.indices)]  # Tiled slices, not lists


@task(**TILED_RETRIES)
def measured_traces(dataset_id: str, window: int):
    """Per-particle traces of the dataset's real motion over ``window`` frames (None when it is
    not a time series)."""
    return dataset_traces(get_store(), dataset_id, window)


class TracingSink(variations.VariationsSink):
    """The owner's sink that also extracts and describes each reference's particle traces as
    soon as its trace image is complete (core.variations.traces)."""

    def __init__(self, writer, *, pixel_size: float | None, unit: str, k: float):
        super().__init__(writer)
        self.pixel_size, self.unit, self.k = pixel_size, unit, k

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        super().descriptors(i, values, trace)
        table, dropped = trace_table(self.images[i], trace, pixel_size=self.pixel_size, unit=self.unit, k=self.k)
        self.add_traces(i, table, dropped)


def pixel_size_of(dataset_id: str | None) -> tuple[float | None, str]:
    """(pixel size, unit) of the dataset's images from its metadata (set at ingest), or
    (None, "px") when it records none: areas are then in px²."""
    meta = read_metadata("datasets", dataset_id) if dataset_id else {}
    size, unit = meta.get("pixel_size"), meta.get("pixel_unit")
    if isinstance(size, (int, float)) and not isinstance(size, bool) and size > 0 and unit:
        return float(size), str(unit)
    return None, "px"


@flow(name="sample-variations")
def sample_variations_flow(params: SampleVariationsParams) -> str:
    """Sample, filter, describe and cluster the variations of every reference state; extract
    and describe each reference's particle traces and group them into diffusion modes."""
    log = get_run_logger()
    progress = FlowProgress("variations")
    store = get_store()
    model_meta = read_metadata("models", params.model_id)
    device = pick_device(get_settings().device)
    model = load_model(store, params.model_id, device=device)
    d = latent_dim_of(model)
    refs = reference_latents(params.references, params.model_id, d, params.seed)
    core_params = VariationParams(
        gamma=params.gamma, n_per_reference=params.n_per_reference, seed=params.seed,
        batch_size=params.batch_size, filters=FilterParams.from_preset(**params.filters.model_dump()),
        descriptors=tuple(params.descriptors or DESCRIPTORS),
    ).validate()
    writer = store.writer(variations.KIND, metadata={
        "name": params.name or f"γ={params.gamma:g}, {len(refs)}×{params.n_per_reference} on {params.model_id}",
        "model_id": params.model_id, "model_family": model_meta.get("family", "vae"),
        "latents_id": params.references.latents_id, "dataset_id": model_meta.get("dataset_id"),
        "params": params.model_dump(mode="json"), "core_params": asdict(core_params),
        "filter_preset": core_params.filters.preset, **provenance(),
    })
    pixel_size, unit = pixel_size_of(model_meta.get("dataset_id"))
    sink = TracingSink(writer, pixel_size=pixel_size, unit=unit, k=core_params.foreground_k)

    def on_progress(done: int, total: int) -> None:
        progress(0.9 * done / total, f"{done:,}/{total:,} samples, {sink.n_images:,} kept")

    summary = sample_variations(model, refs, core_params, sink, on_progress=on_progress,
                                should_stop=CancelCheck(), device=device)
    table = sink.write()
    writer.update_metadata(summary=summary, status=summary["status"])
    traces = sink.trace_table()
    modes = None
    if summary["status"] == "completed" and len(traces) >= 2:
        progress(0.91, f"diffusion modes of {len(traces)} particle traces", force=True)
        modes = trace_modes(traces, params.n_modes)
    variations.write_traces(writer, traces, modes, units=TRACE_UNITS(unit), pixel_size=pixel_size, unit=unit)
    if summary["status"] != "completed":
        log.warning("stopped after %d of %d references; the partial result stays incomplete",
                    summary["references_done"], len(refs))
        return writer.id
    clusters_note = None
    if len(table) >= 3:
        progress(0.92, "clustering the variations", force=True)
        clusters = cluster_variations(table, columns=variations.descriptor_columns(table),
                                      n_clusters=min(params.n_clusters, len(table) - 1),
                                      min_cluster_size=params.min_cluster_size, seed=params.seed)
        variations.write_clusters(writer, clusters)
    else:
        clusters_note = f"{len(table)} variation(s): clustering needs at least 3 reference states"
    dataset_id = model_meta.get("dataset_id")
    if params.measured_window and dataset_id:
        progress(0.95, "measuring real traces", force=True)
        measured = measured_traces(dataset_id, params.measured_window)
        if measured is None:
            log.info("dataset %s has no frame interval (not a time series): no measured traces", dataset_id)
        elif measured.empty:
            log.warning("no particle found in the dataset's frames: no measured traces")
        else:
            variations.write_measured_traces(writer, measured, params.measured_window)
    log.info("kept %d of %d samples; rejected per filter %s", summary["n_kept"], summary["n_drawn"],
             summary["rejected"])
    progress(1.0, f"{summary['n_kept']:,} of {summary['n_drawn']:,} samples kept", force=True)
    return writer.finish(n_references=len(refs), n_kept=summary["n_kept"], n_traces=len(traces),
                         clusters_note=clusters_note)
