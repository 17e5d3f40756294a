"""Owner of ``datasets/<id>``: an image stack and one row of metadata per frame.

Layout: array ``images`` (N, [C,] H, W) float32, appended batch by batch in chunks of ~8 MiB;
table ``frames`` (index, source, and whatever the reader knew: patch, time, ...); metadata
``n_frames``, ``frame_shape``, ``preprocess`` (the PreprocessParams applied, so live frames
are treated the same way) and what the writer adds (name, sources, provenance).

Physical scale (optional, given at ingest; absent when unknown, and readers fall back to px and
frames): ``pixel_size`` and ``pixel_unit`` describe a pixel *of the stored images*: when ingest
resized the frames (or patches) the effective size is the source pixel size × source side /
stored side, so an area counted in stored pixels converts with ``pixel_size**2``. The size the
user gave is kept as ``source_pixel_size``; when a resize changes the aspect ratio,
``pixel_size_yx`` holds both axes and ``pixel_size`` their geometric mean (exact for areas).
``frame_interval`` is the time between consecutive frames in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.preprocess import PreprocessParams
from core.limits import FRAME_INTERVAL_MAX, PIXEL_SIZE_MAX, PIXEL_UNITS, BadParameter
from core.data.store import NodeWriter, Store, check_key, new_id

KIND = "datasets"
IMAGES, FRAMES = "images", "frames"
PREPROCESS = "preprocess"  # metadata: asdict(PreprocessParams)
SCALE_KEYS = ("pixel_size", "pixel_unit", "frame_interval")


@dataclass(frozen=True)
class PhysicalScale:
    """A dataset's pixel size (in ``pixel_unit``) and frame interval (s); None where unknown.

    :meth:`length_unit` and :meth:`time_unit` say what numbers converted with it are in, so a
    consumer shows 'px' and 'frames' when the scale is unknown rather than guessing.
    """

    pixel_size: float | None = None
    pixel_unit: str | None = None
    frame_interval: float | None = None

    def validate(self) -> PhysicalScale:
        """Raise BadParameter naming the first bad field; return self when all is well."""
        for name, hi in (("pixel_size", PIXEL_SIZE_MAX), ("frame_interval", FRAME_INTERVAL_MAX)):
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if value is not None and not (number and 0 < value <= hi):
                raise BadParameter(name, value, f"must be None or a number more than 0 and at most {hi:g}")
        if self.pixel_size is not None and self.pixel_unit not in PIXEL_UNITS:
            raise BadParameter("pixel_unit", self.pixel_unit, "must be one of " + ", ".join(PIXEL_UNITS))
        return self

    @property
    def length_unit(self) -> str:
        return self.pixel_unit if self.pixel_size is not None and self.pixel_unit else "px"

    @property
    def time_unit(self) -> str:
        return "s" if self.frame_interval is not None else "frames"

    @property
    def length_per_px(self) -> float:
        """Length of one stored pixel in :attr:`length_unit` (1 when unknown)."""
        return self.pixel_size if self.length_unit != "px" else 1.0

    @property
    def time_per_frame(self) -> float:
        """Seconds per frame, or 1 (frames) when unknown."""
        return self.frame_interval if self.frame_interval is not None else 1.0


def effective_scale(scale: PhysicalScale, source_shape: tuple[int, int],
                    stored_shape: tuple[int, int]) -> dict[str, Any]:
    """The scale metadata of stored images cut/resized from ``source_shape`` (the frame or patch
    as read, H × W) to ``stored_shape``: pixel size × source side / stored side, per axis."""
    meta: dict[str, Any] = {}
    if scale.frame_interval is not None:
        meta["frame_interval"] = float(scale.frame_interval)
    if scale.pixel_size is None:
        return meta
    y, x = (scale.pixel_size * src / out for src, out in zip(source_shape, stored_shape))
    meta.update(pixel_size=float(np.sqrt(y * x)), pixel_unit=scale.pixel_unit,
                source_pixel_size=float(scale.pixel_size))
    if not np.isclose(y, x, rtol=1e-9):
        meta["pixel_size_yx"] = [float(y), float(x)]
    return meta


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


def read_scale(store: Store, dataset_id: str) -> PhysicalScale:
    """The stored images' physical scale; fields the ingest was not given are None."""
    meta = store.metadata(KIND, dataset_id)
    return PhysicalScale(**{key: meta.get(key) for key in SCALE_KEYS})
