"""Flow: Monte Carlo material variations around reference states, written to Tiled as they are made.

Layout of ``/<project>/variations/<id>`` (DESIGN §4):
  images            (K, C, H, W)  kept samples, reference by reference, each ordered by ‖ε‖
  references        (M, d)        the reference latents z_i
  reference_images  (M, C, H, W)  G(z_i)
  traces            (M, C, H, W)  pixel mean of each variation's kept samples ("trace")
  samples           table         one row per drawn sample: reference, sample, magnitude, kept,
                                  image (row in ``images`` or −1), metrics and features
  descriptors       table         one row per reference: descriptors, n_kept, image_start
  linkage, hac_labels, hdbscan_labels, embedding   clusters of the variations (M ≥ 3)
Metadata: params, the sampler's summary (kept/rejected counts, distance per dimension),
``status`` ("completed" or "stopped"); ``complete`` only once everything above is written.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task

from core.models.checkpoint import load_model
from core.variations.descriptors import DESCRIPTORS
from core.models.device import pick_device
from core.models.generator import latent_dim_of, prior_latents
from core.settings import get_settings
from core.data.store import NodeWriter
from core.variations.clusters import cluster_variations
from core.variations.sampling import FilterParams, VariationParams, sample_variations
from flows.params import ReferenceStates, SampleVariationsParams
from flows.progress import CancelCheck, FlowProgress
from flows.store import TILED_RETRIES, get_store, provenance, read_metadata


class TiledSink:
    """core.variations.sampling' sink that appends kept images to a Tiled node and keeps the small rest."""

    def __init__(self, writer: NodeWriter):
        self.writer = writer
        self.z, self.images, self.traces, self.rows = {}, {}, {}, []
        self.values: dict[int, dict] = {}
        self.n_images, self.starts, self.counts = 0, {}, {}

    def reference(self, i: int, z_ref: np.ndarray, image: np.ndarray) -> None:
        self.z[i], self.images[i] = z_ref, image
        self.starts[i], self.counts[i] = self.n_images, 0

    def samples(self, i: int, eps: np.ndarray, kept: np.ndarray, table: pd.DataFrame,
                kept_images: np.ndarray) -> None:
        rows = np.full(len(table), -1, dtype=np.int64)
        rows[np.asarray(kept, bool)] = np.arange(self.n_images, self.n_images + int(np.sum(kept)))
        self.rows.append(table.assign(reference=i, image=rows))
        if len(kept_images):
            self.writer.append("images", np.asarray(kept_images, dtype=np.float32))
            self.n_images += len(kept_images)
            self.counts[i] += len(kept_images)

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        self.values[i], self.traces[i] = values, trace

    def descriptor_table(self) -> pd.DataFrame:
        done = sorted(self.values)
        table = pd.DataFrame([self.values[i] for i in done], index=done)
        return table.assign(reference=done, n_kept=[self.counts[i] for i in done],
                            image_start=[self.starts[i] for i in done])

    def write(self) -> pd.DataFrame:
        """The small pieces (called once sampling ends, stopped or not); the descriptor table."""
        done = sorted(self.values)
        refs = sorted(self.z)
        w = self.writer
        if refs:
            w.write_array("references", np.stack([self.z[i] for i in refs]).astype(np.float32))
            w.write_array("reference_images", np.stack([self.images[i] for i in refs]).astype(np.float32))
        if done:
            w.write_array("traces", np.stack([self.traces[i] for i in done]).astype(np.float32))
        if self.rows:
            w.write_table("samples", pd.concat(self.rows, ignore_index=True))
        table = self.descriptor_table()
        if len(table):
            w.write_table("descriptors", table)
        return table


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
    n = store.node("latents", refs.latents_id)["mu"].shape[0]
    bad = [i for i in refs.indices if i >= n]
    if bad:
        raise ValueError(f"frames {bad[:5]} are not in latents {refs.latents_id} ({n} frames)")
    return store.array("latents", refs.latents_id, "mu")[np.asarray(refs.indices)]


@flow(name="sample-variations")
def sample_variations_flow(params: SampleVariationsParams) -> str:
    """Sample, filter, describe and cluster the variations of every reference state."""
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
        batch_size=params.batch_size, filters=FilterParams(**params.filters.model_dump()),
        descriptors=tuple(params.descriptors or DESCRIPTORS),
    ).validate()
    writer = store.writer("variations", metadata={
        "name": params.name or f"γ={params.gamma:g}, {len(refs)}×{params.n_per_reference} on {params.model_id}",
        "model_id": params.model_id, "model_family": model_meta.get("family", "vae"),
        "latents_id": params.references.latents_id, "dataset_id": model_meta.get("dataset_id"),
        "params": params.model_dump(mode="json"), "core_params": asdict(core_params), **provenance(),
    })
    sink = TiledSink(writer)

    def on_progress(done: int, total: int) -> None:
        progress(0.9 * done / total, f"{done:,}/{total:,} samples, {sink.n_images:,} kept")

    summary = sample_variations(model, refs, core_params, sink, on_progress=on_progress,
                                should_stop=CancelCheck(), device=device)
    table = sink.write()
    writer.update_metadata(summary=summary, status=summary["status"])
    if summary["status"] != "completed":
        log.warning("stopped after %d of %d references; the partial result stays incomplete",
                    summary["references_done"], len(refs))
        return writer.id
    clusters_note = None
    if len(table) >= 3:
        progress(0.92, "clustering the variations", force=True)
        columns = [c for c in table.columns if c not in ("reference", "n_kept", "image_start")]
        clusters = cluster_variations(table, columns=columns, n_clusters=min(params.n_clusters, len(table) - 1),
                                      min_cluster_size=params.min_cluster_size, seed=params.seed)
        writer.write_array("linkage", clusters.linkage)
        writer.write_array("hac_labels", clusters.hac_labels)
        writer.write_array("hdbscan_labels", clusters.hdbscan_labels)
        writer.write_array("embedding", clusters.embedding)
        writer.update_metadata(descriptor_columns=clusters.columns, embedding_method=clusters.embedding_method)
    else:
        clusters_note = f"{len(table)} variation(s): clustering needs at least 3 reference states"
    log.info("kept %d of %d samples; rejected per filter %s", summary["n_kept"], summary["n_drawn"],
             summary["rejected"])
    progress(1.0, f"{summary['n_kept']:,} of {summary['n_drawn']:,} samples kept", force=True)
    return writer.finish(n_references=len(refs), n_kept=summary["n_kept"], clusters_note=clusters_note)
