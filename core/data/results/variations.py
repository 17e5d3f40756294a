"""Owner of ``variations/<id>``: Monte Carlo material variations around reference states (DESIGN §4).

Layout, written as a run goes (:class:`VariationsSink`, then :func:`write_clusters`):
  images            (K, C, H, W)  kept samples, reference by reference, each ordered by ‖ε‖
  references        (M, d)        the reference latents z_i
  reference_images  (M, C, H, W)  G(z_i)
  traces            (M, C, H, W)  pixel mean of each variation's kept samples ("trace")
  samples           table         one row per drawn sample: reference, sample, magnitude, kept,
                                  image (row in ``images`` or −1), metrics and features
  descriptors       table         one row per reference: descriptors, reference, n_kept, image_start,
                                  n_particles, trace_dropped_px (trace foreground tied to no particle)
  particle_traces   table         one row per particle trace (core.variations.traces): reference,
                                  particle, area, anisotropy, tortuosity, centroid_y, centroid_x,
                                  n_pixels, mode (diffusion mode, −1 when not clustered)
  trace_linkage     (T − 1, 4)    average-linkage tree of the traces (T ≥ 2)
  linkage, hac_labels, hdbscan_labels, embedding   clusters of the variations (M ≥ 3)
  measured_traces   table         per-particle traces of real motion in the model's dataset over W
                                  frames (core.variations.measured.dataset_traces), when it is a
                                  time series; metadata ``measured_window`` (W)
Metadata: params, the sampler's summary (kept/rejected counts, distance per dimension),
``status`` ("completed" or "stopped"), ``descriptor_columns`` and ``embedding_method`` once
clustered; ``trace_units`` (column -> unit, e.g. {"area": "nm²"}), ``pixel_size`` (None = pixels)
and ``unit`` of the traces; ``complete`` only once everything above is written.
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
PARTICLE_TRACES, TRACE_LINKAGE = "particle_traces", "trace_linkage"
LINKAGE, HAC_LABELS, HDBSCAN_LABELS, EMBEDDING = "linkage", "hac_labels", "hdbscan_labels", "embedding"
# Columns: the samples table's link to images, and the descriptor table's bookkeeping.
REFERENCE, IMAGE, MAGNITUDE, KEPT = "reference", "image", "magnitude", "kept"
N_KEPT, IMAGE_START = "n_kept", "image_start"
N_PARTICLES, TRACE_DROPPED = "n_particles", "trace_dropped_px"
# descriptor-table columns that are not descriptors
BOOKKEEPING = (REFERENCE, N_KEPT, IMAGE_START, N_PARTICLES, TRACE_DROPPED)
MODE = "mode"  # the particle-trace table's diffusion mode


APPEND_BYTES = 8 * 2**20  # kept images gathered before one append to Tiled


class VariationsSink:
    """core.variations.sampling's sink: appends kept images to the node, keeps the small rest
    until :meth:`write`.

    Kept images are gathered up to ``append_bytes`` (and at the end of every reference) before
    one append: one HTTP request per batch of 16 cost as much as decoding it (bench/variations.py)."""

    def __init__(self, writer: NodeWriter, append_bytes: int = APPEND_BYTES):
        self.writer = writer
        self.append_bytes = append_bytes
        self.pending: list[np.ndarray] = []
        self.z, self.images, self.traces, self.rows = {}, {}, {}, []
        self.values: dict[int, dict] = {}
        self.n_images, self.starts, self.counts = 0, {}, {}
        self.traces_rows: dict[int, pd.DataFrame] = {}
        self.dropped: dict[int, int] = {}

    def reference(self, i: int, z_ref: np.ndarray, image: np.ndarray) -> None:
        self.z[i], self.images[i] = z_ref, image
        self.starts[i], self.counts[i] = self.n_images, 0

    def samples(self, i: int, eps: np.ndarray, kept: np.ndarray, table: pd.DataFrame,
                kept_images: np.ndarray) -> None:
        rows = np.full(len(table), -1, dtype=np.int64)
        rows[np.asarray(kept, bool)] = np.arange(self.n_images, self.n_images + int(np.sum(kept)))
        self.rows.append(table.assign(**{REFERENCE: i, IMAGE: rows}))
        if len(kept_images):
            self.pending.append(np.asarray(kept_images, dtype=np.float32))
            self.n_images += len(kept_images)
            self.counts[i] += len(kept_images)
            if sum(a.nbytes for a in self.pending) >= self.append_bytes:
                self.flush()

    def flush(self) -> None:
        """Append the gathered kept images to the node."""
        if self.pending:
            self.writer.append(IMAGES, np.concatenate(self.pending))
            self.pending = []

    def descriptors(self, i: int, values: dict[str, float], trace: np.ndarray) -> None:
        self.values[i], self.traces[i] = values, trace
        self.flush()

    def add_traces(self, i: int, table: pd.DataFrame, dropped: int) -> None:
        """The particle traces of reference i (``core.variations.traces.trace_table``) and the
        trace foreground pixels tied to none of its particles."""
        self.traces_rows[i] = table.assign(**{REFERENCE: i})
        self.dropped[i] = int(dropped)

    def trace_table(self) -> pd.DataFrame:
        """Every particle trace so far, reference by reference: reference first."""
        if not self.traces_rows:
            return pd.DataFrame(columns=[REFERENCE])
        table = pd.concat([self.traces_rows[i] for i in sorted(self.traces_rows)], ignore_index=True)
        return table[[REFERENCE, *[c for c in table.columns if c != REFERENCE]]]

    def descriptor_table(self) -> pd.DataFrame:
        done = sorted(self.values)
        table = pd.DataFrame([self.values[i] for i in done], index=done)
        table = table.assign(**{REFERENCE: done, N_KEPT: [self.counts[i] for i in done],
                                IMAGE_START: [self.starts[i] for i in done]})
        if self.traces_rows:
            table = table.assign(**{
                N_PARTICLES: [len(self.traces_rows.get(i, ())) for i in done],
                TRACE_DROPPED: [self.dropped.get(i, 0) for i in done]})
        return table

    def write(self) -> pd.DataFrame:
        """The small pieces (called once sampling ends, stopped or not); the descriptor table."""
        self.flush()
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


def write_traces(writer: NodeWriter, table: pd.DataFrame, modes: Any | None, *,
                 units: dict[str, str], pixel_size: float | None, unit: str) -> None:
    """The particle traces (one row each) with their diffusion mode, the modes' linkage
    (``modes``: a core.variations.traces.TraceModes, None when not clustered) and the units."""
    labels = np.full(len(table), -1, np.int64) if modes is None else np.asarray(modes.labels, np.int64)
    if len(table):
        writer.write_table(PARTICLE_TRACES, table.assign(**{MODE: labels}).reset_index(drop=True))
    if modes is not None:
        writer.write_array(TRACE_LINKAGE, np.asarray(modes.linkage, np.float64))
    writer.update_metadata(trace_units=dict(units), pixel_size=pixel_size, unit=unit)


@dataclass(frozen=True)
class ParticleTraces:
    """The particle traces of a variations node: one row per trace (reference, particle,
    area, anisotropy, tortuosity, centroid_y, centroid_x, n_pixels, mode)."""

    table: pd.DataFrame
    linkage: np.ndarray | None  # (T − 1, 4), None when the traces were not clustered
    units: dict[str, str]  # column -> unit
    pixel_size: float | None  # per pixel, in ``unit``; None: areas in px²
    unit: str


def read_traces(store: Store, variations_id: str) -> ParticleTraces:
    """The particle traces of a node (empty table when it found no particle)."""
    meta = store.metadata(KIND, variations_id)
    if "trace_units" not in meta:
        raise ValueError(f"variations {variations_id} have no particle traces "
                         "(made before traces were measured, or stopped): sample them again")
    names = set(store.array_names(KIND, variations_id))
    table = (store.table(KIND, variations_id, PARTICLE_TRACES) if PARTICLE_TRACES in names
             else pd.DataFrame(columns=[REFERENCE, *meta["trace_units"], MODE]))
    linkage = store.array(KIND, variations_id, TRACE_LINKAGE) if TRACE_LINKAGE in names else None
    return ParticleTraces(table=table, linkage=linkage, units=dict(meta["trace_units"]),
                          pixel_size=meta.get("pixel_size"), unit=meta.get("unit", "px"))


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
