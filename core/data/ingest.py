"""Ingest: files, in-memory stacks or Tiled arrays -> one preprocessed dataset in the store.

Frames are read, preprocessed and written a batch at a time, so memory stays bounded however
many files there are. A file or frame that fails is listed with its reason and the rest goes
on; only when nothing at all could be ingested does :class:`IngestError` stop the run.

The dataset holds ``images`` (N, S, S) float32 in [0, 1] and a ``frames`` table with one row
per image: ``index, source, frame_in_file, patch, patch_y, patch_x`` and whatever per-frame
metadata the reader found (HDF5 dataset, NPZ array, CBF/EDF header fields). Its metadata says
what was skipped (``n_failures``, ``failures``, and ``skipped``: one line for people) and which
HDF5 datasets were read and why (``hdf5_datasets``). A run that stops on an exception leaves its
dataset incomplete and marked failed: hidden from listings and refused as any flow's input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.data.imageio import (
    ImageReadError,
    is_single_frame,
    iter_array_frames,
    open_tiled_array,
    read_frames,
    read_tiled_array,  # noqa: F401  re-exported: ingest is where callers look for it
    resolve_sources,
    split_api_key,
    strip_query,
    tiled_server_for,
)
from core.data.preprocess import PreprocessParams, patch_origins, preprocess_frame
from core.data.results.datasets import PREPROCESS, PhysicalScale, dataset_writer, effective_scale
from core.data.store import frames_per_chunk

TILED_PREFIXES = ("tiled+http://", "tiled+https://")
FIXED_COLUMNS = ("index", "source", "frame_in_file", "patch", "patch_y", "patch_x")
MAX_FAILURES_IN_METADATA = 100  # the full list is in IngestResult; metadata must stay small
N_EXAMPLE_SOURCES = 3
BATCH_RANGE = (1, 65536)

Progress = Callable[[int, int], None]


class IngestError(ValueError):
    """Nothing could be ingested; the message lists the first failures and what to try."""


@dataclass
class IngestResult:
    dataset_id: str | None
    n_frames: int
    failures: list[dict] = field(default_factory=list)  # {"source": str, "reason": str}

    @property
    def skipped(self) -> str:
        """One line: how many failures, in how many sources, the first reasons ('' if none)."""
        return skipped_summary(self.failures)


# -- public entry points ---------------------------------------------------------------------
def ingest(
    spec: str | Path | Sequence[str | Path],
    store: Any,
    params: PreprocessParams,
    *,
    roots: Sequence[Path],
    name: str | None = None,
    batch_size: int = 256,
    on_progress: Progress | None = None,
    tiled_servers: Mapping[str, str | None] | None = None,
    scale: PhysicalScale | None = None,
) -> IngestResult:
    """Read, preprocess and store images as a new dataset.

    Parameters
    ----------
    spec : folder, glob, file, ``file.h5::/dataset``, a list of these, or
        ``tiled+http(s)://.../array`` for a Tiled array node (N, H, W)
    store : core.data.store.Store
    params : PreprocessParams
    roots : folders files may be read from (``MORPHOSPACE_DATA_ROOTS``); unused for Tiled
    name : shown in the app; defaults to the folder or file name
    batch_size : images written per request to Tiled (memory bound)
    on_progress : called as ``on_progress(done, total)``: files for a file spec, frames for a
        Tiled array
    tiled_servers : for a Tiled spec: the servers that may be read, each with its API key (or
        None); any other host is refused before a request is made. An ``?api_key=`` in the
        spec is used as the key, and stored nowhere.
    scale : the source pixel size (with its unit) and frame interval (s), when known; stored
        as the *effective* scale of the stored images (see core.data.results.datasets)

    Returns
    -------
    IngestResult with the new dataset id, the number of images and the failures.

    Raises
    ------
    ValueError for bad params; PermissionError / FileNotFoundError from
    :func:`core.data.imageio.resolve_sources`; IngestError when no frame could be ingested.

    Examples
    --------
    >>> ingest("/data/run7/*.cbf", store, PreprocessParams(log=True, mask_nonpositive=True),
    ...        roots=[Path("/data")])
    """
    params.validate()
    scale = (scale or PhysicalScale()).validate()
    _check_batch_size(batch_size)
    tiled = _tiled_uri(spec)
    if tiled is not None:
        return _ingest_tiled(tiled, store, params, servers=tiled_servers or {}, name=name,
                             batch_size=batch_size, on_progress=on_progress, scale=scale)
    return _ingest_files(spec, store, params, roots=roots, name=name,
                         batch_size=batch_size, on_progress=on_progress, scale=scale)


def ingest_array(
    images: np.ndarray,
    store: Any,
    params: PreprocessParams,
    *,
    name: str,
    source_label: str,
    batch_size: int = 256,
    on_progress: Progress | None = None,
    scale: PhysicalScale | None = None,
    frame_metadata: pd.DataFrame | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> IngestResult:
    """Ingest an in-memory stack (N, H, W) or (N, H, W, C), e.g. data shipped in a package.

    ``source_label`` fills the ``source`` column (say ``"sklearn.datasets.load_digits"``);
    ``scale`` as in :func:`ingest`. ``frame_metadata`` (one row per frame, e.g. a simulation's
    parameters and time) becomes columns of the frames table, so the map can be coloured by
    them; ``metadata`` is stored with the dataset (how it was made).
    """
    params.validate()
    scale = (scale or PhysicalScale()).validate()
    _check_batch_size(batch_size)
    array = np.asarray(images)
    total = 1 if is_single_frame(array.shape) else len(array)
    rows = [{}] * total if frame_metadata is None else frame_metadata.to_dict("records")
    if len(rows) != total:
        raise ValueError(f"frame_metadata has {len(rows)} rows for {total} frames: give one row per frame")
    builder = _Builder(store, params, batch_size, scale, metadata={**_metadata(
        name, params, count=1, examples=[source_label], spec=source_label), **(metadata or {})})
    with builder:
        for i, frame in enumerate(iter_array_frames(array)):
            builder.add(frame, source_label, {**rows[i], "frame_in_file": i})
            _report(on_progress, i + 1, total, every=batch_size)
        return builder.finish()


# -- the three sources -----------------------------------------------------------------------
def _ingest_files(spec, store, params, *, roots, name, batch_size, on_progress, scale) -> IngestResult:
    sources = resolve_sources(spec, roots)
    builder = _Builder(store, params, batch_size, scale, metadata=_metadata(
        name or _default_name(spec), params, count=len(sources),
        examples=[str(s) for s in sources[:N_EXAMPLE_SOURCES]], spec=_spec_text(spec)))
    _report(on_progress, 0, len(sources))
    with builder:
        for done, source in enumerate(sources, start=1):
            try:
                for frame, meta in read_frames(source, roots=roots):
                    builder.add(frame, str(source), meta)
            except ImageReadError as exc:
                builder.fail(str(source), str(exc))  # frames read before the error are kept
            except MemoryError:
                builder.fail(str(source), (
                    "ran out of memory reading or preprocessing it; cut large frames with "
                    "patch_size, or downsample the file before ingest"))
            _report(on_progress, done, len(sources))
        return builder.finish()


def _tiled_uri(spec: Any) -> str | None:
    """The Tiled URI when spec is one (alone, or as the only item of a list), else None."""
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    tiled = [item for item in items if isinstance(item, str) and item.startswith(TILED_PREFIXES)]
    if tiled and len(items) > 1:
        raise ValueError(
            f"spec mixes {len(tiled)} Tiled URI(s) with {len(items) - len(tiled)} other item(s); "
            "ingest one Tiled array node on its own, or files only"
        )
    return tiled[0] if tiled else None


def _ingest_tiled(spec, store, params, *, servers, name, batch_size, on_progress, scale) -> IngestResult:
    uri, key_in_spec = split_api_key(spec.removeprefix("tiled+"))
    server = tiled_server_for(uri, list(servers))
    node = open_tiled_array(uri, key_in_spec or servers[server])
    label = strip_query(uri)
    builder = _Builder(store, params, batch_size, scale, metadata=_metadata(
        name or "/".join(label.rstrip("/").split("/")[-2:]), params,
        count=1, examples=[label], spec=label))
    total = 1 if is_single_frame(tuple(node.shape)) else int(node.shape[0])
    with builder:
        for i, frame in enumerate(_iter_tiled_frames(node)):
            builder.add(frame, label, {"frame_in_file": i})
            _report(on_progress, i + 1, total, every=batch_size)
        return builder.finish()


def _iter_tiled_frames(node: Any) -> Iterator[np.ndarray]:
    """Frames of a Tiled array, fetched a block of ~8 MiB at a time rather than one by one."""
    shape = tuple(node.shape)
    if is_single_frame(shape):
        yield np.asarray(node[...])
        return
    block = frames_per_chunk(shape[1:], np.dtype(node.dtype).itemsize)
    for start in range(0, shape[0], block):
        yield from np.asarray(node[start : start + block])


# -- writing ---------------------------------------------------------------------------------
class _Builder:
    """Preprocesses frames, buffers them into batches, keeps the frames table and the failures.

    Used as a context manager: a run that stops on an exception (out of memory, cancelled,
    Tiled gone) marks its half-written dataset failed, so it is hidden and refused as input.
    """

    def __init__(self, store: Any, params: PreprocessParams, batch_size: int, scale: PhysicalScale,
                 metadata: dict):
        self.params, self.batch_size, self.scale = params, batch_size, scale
        self.source_shapes: set[tuple[int, int]] = set()  # frame or patch sides as read, H × W
        self.writer = dataset_writer(store, metadata=metadata)
        self.pending: list[np.ndarray] = []
        self.n_pending = 0
        self.rows: list[dict] = []
        self.failures: list[dict] = []
        self.image_shape: tuple[int, ...] | None = None
        self.datasets: dict[str, str] = {}  # HDF5 dataset read -> why it was chosen

    def __enter__(self) -> _Builder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.writer.abandon(f"{kind.__name__}: {exc}" if str(exc) else kind.__name__)

    def fail(self, source: str, reason: str) -> None:
        self.failures.append({"source": source, "reason": reason})

    def add(self, frame: np.ndarray, source: str, meta: dict) -> None:
        i = meta.get("frame_in_file", 0)
        try:
            images = preprocess_frame(frame, self.params)  # (n_patches, [C,] S, S)
        except ValueError as exc:
            self.fail(source, f"frame {i}: {exc}")
            return
        if self.image_shape is None:
            self.image_shape = images.shape[1:]
        elif images.shape[1:] != self.image_shape:
            self.fail(source, (
                f"frame {i}: preprocessed to shape {images.shape[1:]} but the dataset's images "
                f"are {self.image_shape}; set size (every image resized alike) and grayscale=True"))
            return
        if "dataset_choice" in meta and len(self.datasets) < N_EXAMPLE_SOURCES:
            self.datasets.setdefault(meta["dataset"], meta["dataset_choice"])
        extra = {(f"meta_{k}" if k in FIXED_COLUMNS else k): v for k, v in meta.items()
                 if k not in ("frame_in_file", "dataset_choice")}
        patched = self.params.patch_size is not None
        self.source_shapes.add((self.params.patch_size,) * 2 if patched else tuple(frame.shape[:2]))
        origins = patch_origins(frame.shape, self.params.patch_size, self.params.patch_stride)
        for p, (y, x) in enumerate(origins):
            self.rows.append({"index": len(self.rows), "source": source, "frame_in_file": i,
                              "patch": p if patched else -1, "patch_y": y, "patch_x": x, **extra})
        self.pending.append(images)
        self.n_pending += len(images)
        if self.n_pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.append(np.concatenate(self.pending))
            self.pending, self.n_pending = [], 0

    def finish(self) -> IngestResult:
        self.flush()
        if self.writer.n == 0:
            raise IngestError(_nothing_ingested(self.failures))
        dataset_id = self.writer.finish(
            _frames_table(self.rows),
            failures=self.failures[:MAX_FAILURES_IN_METADATA],
            n_failures=len(self.failures),
            skipped=skipped_summary(self.failures),
            **({"hdf5_datasets": self.datasets} if self.datasets else {}),
            **self.scale_metadata(),
        )
        return IngestResult(dataset_id, self.writer.n, self.failures)


    def scale_metadata(self) -> dict[str, Any]:
        """The effective scale of the stored images; the pixel size is left out (with a note)
        when frames of different sizes were resized to one size: their pixels differ."""
        stored = self.image_shape[-2:]
        if len(self.source_shapes) == 1:
            return effective_scale(self.scale, next(iter(self.source_shapes)), stored)
        meta = effective_scale(PhysicalScale(frame_interval=self.scale.frame_interval), stored, stored)
        if self.scale.pixel_size is not None:
            meta["scale_note"] = (f"pixel_size not stored: {len(self.source_shapes)} frame sizes were "
                                  f"resized to {stored[0]} x {stored[1]}, so stored pixels differ in size")
        return meta


def _frames_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table = table[list(FIXED_COLUMNS) + [c for c in table.columns if c not in FIXED_COLUMNS]]
    for column in table.columns[len(FIXED_COLUMNS):]:
        if table[column].dtype == object:  # mixed types (a header field that is sometimes text)
            table[column] = [None if _missing(v) else str(v) for v in table[column]]
    return table


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _nothing_ingested(failures: list[dict]) -> str:
    first = "; ".join(f"{f['source']}: {f['reason']}" for f in failures[:3])
    more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
    return (
        f"No frame could be ingested. {len(failures)} failure(s): {first}{more}. "
        "Check that the files are images of a supported format."
    )


def skipped_summary(failures: list[dict], limit: int = 2) -> str:
    """One line for people: how many sources or frames were skipped and the first reasons
    ('' when none was). Stored as the dataset's ``skipped``, printed by the CLI."""
    if not failures:
        return ""
    sources = {f["source"] for f in failures}
    first = "; ".join(f"{Path(f['source'].split('::')[0]).name}: {f['reason']}" for f in failures[:limit])
    more = f"; and {len(failures) - limit} more" if len(failures) > limit else ""
    return f"skipped {len(failures)} failure(s) in {len(sources)} source(s): {first}{more}"


# -- small helpers ---------------------------------------------------------------------------
def _metadata(name: str, params: PreprocessParams, *, count: int, examples: list[str],
              spec: str) -> dict:
    return {
        "name": name,
        "kind": "images",
        PREPROCESS: asdict(params),
        "sources": {"count": count, "examples": examples, "spec": spec},
    }


def _default_name(spec: Any) -> str:
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    first = Path(str(items[0]).split("::")[0])
    name = first.name if first.name and not any(c in first.name for c in "*?[") else (
        f"{first.parent.name}/{first.name}")
    return name if len(items) == 1 else f"{name} (+{len(items) - 1} more)"


def _spec_text(spec: Any, limit: int = 5) -> str:
    """The spec as the user gave it, shortened: a list of thousands of paths is not metadata."""
    if isinstance(spec, (str, Path)):
        return str(spec)
    items = [str(s) for s in spec]
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _check_batch_size(batch_size: int) -> None:
    lo, hi = BATCH_RANGE
    is_int = isinstance(batch_size, int) and not isinstance(batch_size, bool)
    if not is_int or not lo <= batch_size <= hi:
        raise ValueError(f"batch_size={batch_size!r} must be an integer between {lo} and {hi}")


def _report(on_progress: Progress | None, done: int, total: int, every: int = 1) -> None:
    if on_progress is not None and (done % every == 0 or done == total):
        on_progress(done, total)
