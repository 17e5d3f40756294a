"""Owner of ``datasets/<id>``: an image stack and one row of metadata per frame.

Layout: array ``images`` (N, [C,] H, W) float32, appended batch by batch in chunks of ~8 MiB;
table ``frames`` (index, source, and whatever the reader knew: patch, time, ...); metadata
``n_frames``, ``frame_shape``, ``preprocess`` (the PreprocessParams applied, so live frames
are treated the same way) and what the writer adds (name, sources, provenance).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.data.preprocess import PreprocessParams
from core.data.store import NodeWriter, Store, check_key, new_id

KIND = "datasets"
IMAGES, FRAMES = "images", "frames"
PREPROCESS = "preprocess"  # metadata: asdict(PreprocessParams)


class DatasetWriter(NodeWriter):
    """Append image batches to a new dataset, then :meth:`finish` with the frames table."""

    def __init__(self, store: Store, id: str, metadata: dict):
        super().__init__(store, KIND, id, metadata)

    @property
    def n(self) -> int:
        return self.lengths.get(IMAGES, 0)

    def append(self, batch: np.ndarray) -> None:  # type: ignore[override]
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim not in (3, 4):
            raise ValueError(f"expected a non-empty (B, [C,] H, W) batch, got shape {batch.shape}")
        super().append(IMAGES, batch)

    def finish(self, frames: pd.DataFrame, **metadata: Any) -> str:  # type: ignore[override]
        if not self.n:
            raise ValueError("no images were written: nothing to finish")
        if len(frames) != self.n:
            raise ValueError(f"frames table has {len(frames)} rows for {self.n} images")
        self.write_table(FRAMES, frames)
        frame_shape = list(self._arrays[IMAGES].shape[1:])
        return super().finish(**metadata, n_frames=self.n, frame_shape=frame_shape)


def dataset_writer(store: Store, *, metadata: Mapping[str, Any], id: str | None = None) -> DatasetWriter:
    return DatasetWriter(store, check_key(id) if id else new_id(KIND), dict(metadata))


def read_images(store: Store, dataset_id: str, index: Any = slice(None)) -> np.ndarray:
    """``images``, or the frames ``index`` of it."""
    return store.array(KIND, dataset_id, IMAGES, index)


def images_node(store: Store, dataset_id: str) -> Any:
    """The lazy ``images`` array (shape without reading; slice to read), of a finished dataset."""
    return store.child(KIND, dataset_id, IMAGES)


def iter_images(store: Store, dataset_id: str, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, batch)`` over a dataset without holding it all in memory."""
    node = images_node(store, dataset_id)
    for start in range(0, node.shape[0], batch_size):
        yield start, np.asarray(node[start : start + batch_size])


def read_frames(store: Store, dataset_id: str) -> pd.DataFrame:
    return store.table(KIND, dataset_id, FRAMES)


def read_preprocess(store: Store, dataset_id: str) -> PreprocessParams:
    """The preprocessing a dataset's frames went through, checked."""
    meta = store.metadata(KIND, dataset_id)
    if PREPROCESS not in meta:
        raise ValueError(f"dataset {dataset_id!r} records no preprocessing; "
                         "re-ingest it so live frames can be treated the same way")
    return PreprocessParams(**meta[PREPROCESS]).validate()
