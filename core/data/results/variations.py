"""Owner of ``variations/<id>``: Monte Carlo material variations around reference states (DESIGN §4).

Layout, written as a run goes (:class:`VariationsSink`, then :func:`write_clusters`):
  images            (K, C, H, W)  kept samples, reference by reference, each ordered by ‖ε‖
  references        (M, d)        the reference latents z_i
  reference_images  (M, C, H, W)  G(z_i)
  traces            (M, C, H, W)  pixel mean of each variation's kept samples ("trace")
  samples           table         one row per drawn sample: reference, sample, magnitude, kept,
                                  image (row in ``images`` or −1), metrics and features
  descriptors       table         one row per reference: descriptors, reference, n_kept, image_start
  linkage, hac_labels, hdbscan_labels, embedding   clusters of the variations (M ≥ 3)
  measured_traces   table         per-particle traces of real motion in the model's dataset over W
                                  frames (core.variations.measured.dataset_traces), when it is a
                                  time series; metadata ``measured_window`` (W)
Metadata: params, the sampler's summary (kept/rejected counts, distance per dimension),
``status`` ("completed" or "stopped"), ``descriptor_columns`` and ``embedding_method`` once
clustered; ``complete`` only once everything above is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.store import NodeWriter, Store

KIND = "variations"
IMAGES, REFERENCES, REFERENCE_IMAGES, TRACES = "images", "references", "reference_images", "traces"
SAMPLES, DESCRIPTORS = "samples", "descriptors"
LINKAGE, HAC_LABELS, HDBSCAN_LABELS, EMBEDDING = "linkage", "hac_labels", "hdbscan_labels", "embedding"
# Columns: the samples table's link to images, and the descriptor table's bookkeeping.
REFERENCE, IMAGE, MAGNITUDE, KEPT = "reference", "image", "magnitude", "kept"
N_KEPT, IMAGE_START = "n_kept", "image_start"
BOOKKEEPING = (REFERENCE, N_KEPT, IMAGE_START)  # descriptor-table columns that are not descriptors


class VariationsSink:
    """core.variations.sampling's sink: appends kept images to the node, keeps the small rest
    until :meth:`write`."""

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
        self.rows.append(table.assign(**{REFERENCE: i, IMAGE: rows}))
        if len(kept_images):
            self.writer.append(IMAGES, np.asarray(kept_images, dtype=np.float32))
            self.n_images += len(kept_images)
            self.counts[i] += len(kept_images)

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        self.values[i], self.traces[i] = values, trace

    def descriptor_table(self) -> pd.DataFrame:
        done = sorted(self.values)
        table = pd.DataFrame([self.values[i] for i in done], index=done)
        return table.assign(**{REFERENCE: done, N_KEPT: [self.counts[i] for i in done],
                               IMAGE_START: [self.starts[i] for i in done]})

    def write(self) -> pd.DataFrame:
        """The small pieces (called once sampling ends, stopped or not); the descriptor table."""
        done = sorted(self.values)
        refs = sorted(self.z)
        w = self.writer
        if refs:
            w.write_array(REFERENCES, np.stack([self.z[i] for i in refs]).astype(np.float32))
            w.write_array(REFERENCE_IMAGES, np.stack([self.images[i] for i in refs]).astype(np.float32))
        if done:
            w.write_array(TRACES, np.stack([self.traces[i] for i in done]).astype(np.float32))
        if self.rows:
            w.write_table(SAMPLES, pd.concat(self.rows, ignore_index=True))
        table = self.descriptor_table()
        if len(table):
            w.write_table(DESCRIPTORS, table)
        return table


def descriptor_columns(table: pd.DataFrame) -> list[str]:
    """The descriptor table's descriptors (every column but the bookkeeping)."""
    return [c for c in table.columns if c not in BOOKKEEPING]


def write_clusters(writer: NodeWriter, clusters: Any) -> None:
    """The clusters of the variations (a core.variations.clusters result) into the node."""
    writer.write_array(LINKAGE, clusters.linkage)
    writer.write_array(HAC_LABELS, clusters.hac_labels)
    writer.write_array(HDBSCAN_LABELS, clusters.hdbscan_labels)
    writer.write_array(EMBEDDING, clusters.embedding)
    writer.update_metadata(descriptor_columns=clusters.columns, embedding_method=clusters.embedding_method)


@dataclass(frozen=True)
class Variations:
    """A complete variations node without its images (read per reference)."""

    id: str
    meta: dict
    descriptors: pd.DataFrame  # one row per reference: descriptors, reference, n_kept, image_start
    kept: pd.DataFrame  # kept samples: reference, image (row of ``images``), magnitude; in image order
    linkage: np.ndarray | None  # (M − 1, 4), absent below 3 references
    embedding: np.ndarray | None  # (M, 2)

    @property
    def n(self) -> int:
        return len(self.descriptors)

    @property
    def columns(self) -> list[str]:
        return self.meta.get("descriptor_columns") or [
            c for c in descriptor_columns(self.descriptors)
            if pd.api.types.is_numeric_dtype(self.descriptors[c])]

    def frame(self, i: int) -> int | None:
        """The map frame reference i came from, or None for a prior draw."""
        indices = (self.meta.get("params") or {}).get("references", {}).get("indices") or []
        return indices[i] if i < len(indices) else None


def read_variations(store: Store, variations_id: str) -> Variations:
    """The node's metadata and tables; refuses a node that is not complete."""
    meta = store.metadata(KIND, variations_id)
    if not meta.get("complete"):
        raise ValueError(f"variations {variations_id} are not complete (stopped, or still being written)")
    names = set(store.array_names(KIND, variations_id))
    # Four of the samples table's columns: it has a row per drawn sample (M × N), most of them metrics.
    samples = store.finished(KIND, variations_id)[SAMPLES].read(columns=[REFERENCE, IMAGE, MAGNITUDE, KEPT])
    kept = samples.loc[samples[KEPT].astype(bool), [REFERENCE, IMAGE, MAGNITUDE]]
    clustered = LINKAGE in names
    return Variations(
        id=variations_id, meta=meta,
        descriptors=store.table(KIND, variations_id, DESCRIPTORS),
        kept=kept.sort_values(IMAGE).reset_index(drop=True),
        linkage=store.array(KIND, variations_id, LINKAGE) if clustered else None,
        embedding=store.array(KIND, variations_id, EMBEDDING) if clustered else None,
    )


def read_reference(store: Store, variations_id: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(G(z_i), trace) of reference i, each (C, H, W)."""
    return (store.array(KIND, variations_id, REFERENCE_IMAGES, i), store.array(KIND, variations_id, TRACES, i))


def read_images(store: Store, variations_id: str, index: Any = slice(None)) -> np.ndarray:
    """Kept samples (k, C, H, W): rows of ``images``."""
    return store.array(KIND, variations_id, IMAGES, index)


def read_samples(store: Store, variations_id: str) -> pd.DataFrame:
    """The whole samples table: one row per drawn sample."""
    return store.table(KIND, variations_id, SAMPLES)


def count_images(store: Store, variations_id: str) -> int:
    """How many kept images a node holds (0 when none was kept), without reading them."""
    node = store.node(KIND, variations_id)
    return int(node[IMAGES].shape[0]) if IMAGES in node else 0


# -- measured traces: real motion beside the sampled traces (issue 12) ---------------------------
MEASURED_TRACES = "measured_traces"


def write_measured_traces(writer: NodeWriter, table: pd.DataFrame, window: int) -> None:
    """The dataset's measured traces over ``window`` frames, to compare with the sampled ones."""
    writer.write_table(MEASURED_TRACES, table)
    writer.update_metadata(measured_window=int(window))


def read_measured_traces(store: Store, variations_id: str) -> pd.DataFrame | None:
    """The measured traces written with a variations node, or None when it has none."""
    if MEASURED_TRACES not in set(store.array_names(KIND, variations_id)):
        return None
    return store.table(KIND, variations_id, MEASURED_TRACES)
