"""Find image files and read them frame by frame, whatever the instrument wrote.

Two steps, kept apart so a web form can check a path before any pixel is read:

* :func:`resolve_sources` turns what a user typed (folder, glob, file, ``file.h5::/dataset``, or a
  list of these) into :class:`Source` objects, refusing anything outside the allowed data roots.
* :func:`read_frames` yields one 2-D frame at a time with a little metadata, so a big HDF5 or
  TIFF stack is never loaded whole.

Formats: PNG/JPEG (Pillow), TIFF (tifffile, one frame per page), NPY/NPZ (numpy, no pickles),
HDF5/NeXus (h5py), CBF/EDF (fabio). Pixel values are returned unchanged, including the negative
values Pilatus detectors write into module gaps (-1) and dead pixels (-2): masking is a
preprocessing choice, not a reading one.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HDF5_EXTENSIONS = (".h5", ".hdf5", ".hdf", ".nxs")
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".npz", *HDF5_EXTENSIONS, ".cbf", ".edf",
)
DATASET_SEPARATOR = "::"
_GLOB_CHARS = re.compile(r"[*?\[]")
# EDF header keys that describe the binary layout, not the measurement.
_EDF_STRUCTURAL = re.compile(r"^(EDF_.*|ByteOrder|DataType|Dim_\d+|Size|Image|HeaderID)$")
_MAX_HEADER_FIELDS = 16  # header fields kept per frame: enough to sort and filter, not a dump


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the file and the reason."""


@dataclass(frozen=True)
class Source:
    """One file to read; ``dataset`` is the HDF5 dataset path (None: pick the first image-like)."""

    path: Path
    dataset: str | None = None

    def __str__(self) -> str:
        return f"{self.path}{DATASET_SEPARATOR}{self.dataset}" if self.dataset else str(self.path)


# -- finding files ---------------------------------------------------------------------------
def resolve_sources(
    spec: str | Path | Sequence[str | Path], roots: Sequence[Path]
) -> list[Source]:
    """Expand a user's file specification into sources inside the allowed roots.

    Parameters
    ----------
    spec : str, Path or a list of them
        Each item is a folder (its supported files, sorted by name, not recursive), a glob
        pattern (``**`` recurses), or a single file. Append ``::/path/in/file`` to an HDF5 file
        or pattern to pick a dataset. A relative item is looked up under each root in turn.
    roots : list of Path
        Folders that may be read (``MORPHOSPACE_DATA_ROOTS``). Every file, after resolving
        symlinks, must lie inside one of them.

    Returns
    -------
    list of Source, in the order given, without duplicates.

    Raises
    ------
    PermissionError
        An item or a file it leads to lies outside every root.
    FileNotFoundError
        An item matches nothing readable (the message says where it looked).

    Examples
    --------
    >>> resolve_sources(["scans/*.cbf", "run7.h5::/entry/data/data"], roots=[Path("/data")])
    """
    if not roots:
        raise PermissionError(
            "No data roots are configured, so no file may be read. "
            "Set MORPHOSPACE_DATA_ROOTS to the folders that hold your data."
        )
    items = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not items:
        raise FileNotFoundError("No files given: pass a folder, a glob pattern or a file.")
    resolved_roots = [Path(root).expanduser().resolve() for root in roots]
    sources: dict[Source, None] = {}  # an ordered set
    for item in items:
        for source in _resolve_item(str(item), resolved_roots):
            sources.setdefault(source, None)
    return list(sources)


def _resolve_item(item: str, roots: list[Path]) -> list[Source]:
    path_text, _, dataset = item.partition(DATASET_SEPARATOR)
    dataset = dataset or None
    looked: list[Path] = []
    for candidate in _candidates(Path(path_text).expanduser(), roots):
        _check_inside(_glob_base(candidate), roots)
        looked.append(candidate)
        files = _expand(candidate)
        if files:
            sources = []
            for file in files:
                _check_inside(file, roots)
                sources.append(Source(file.resolve(), dataset))
            return sources
    where = ", ".join(str(p) for p in looked)
    raise FileNotFoundError(
        f"No readable files for {item!r} (looked in {where}). "
        f"Supported extensions: {', '.join(SUPPORTED_EXTENSIONS)}."
    )


def _candidates(path: Path, roots: list[Path]) -> list[Path]:
    return [path] if path.is_absolute() else [root / path for root in roots]


def _glob_base(path: Path) -> Path:
    """The folder a pattern searches in (the path itself when it has no wildcard)."""
    parts = path.parts
    for i, part in enumerate(parts):
        if _GLOB_CHARS.search(part):
            return Path(*parts[:i])
    return path


def _expand(path: Path) -> list[Path]:
    if _GLOB_CHARS.search(str(path)):
        matches = (Path(p) for p in glob.glob(str(path), recursive=True))
        return sorted(p for p in matches if p.is_file() and _supported(p))
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and _supported(p))
    if path.is_file():
        return [path]  # named explicitly: read_frames says if the format is unknown
    return []


def _supported(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() in SUPPORTED_EXTENSIONS


def _check_inside(path: Path, roots: list[Path]) -> None:
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in roots):
        raise PermissionError(
            f"{str(path)!r} (resolved to {str(real)!r}) is outside the allowed data roots "
            f"{[str(r) for r in roots]}. Move the data under a root, or add its folder to "
            "MORPHOSPACE_DATA_ROOTS."
        )


# -- reading frames --------------------------------------------------------------------------
def read_frames(source: Source) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield ``(frame, metadata)`` for every frame of a file, one at a time.

    A frame is (H, W) or (H, W, C) with C <= 4, in the file's own dtype. Metadata always has
    ``frame_in_file``; HDF5 adds ``dataset``, NPZ ``array``, CBF/EDF a few header fields.
    HDF5 without a dataset path reads the first 3-D numeric dataset (a frame stack), else the
    first 2-D one, in h5py's visiting order (alphabetical within each group).

    Raises
    ------
    ImageReadError
        The file is missing, of an unknown format, corrupt, or holds no image-shaped data.
    """
    path = Path(source.path)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ImageReadError(
            f"{str(path)!r} has extension {suffix!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    if source.dataset and suffix not in HDF5_EXTENSIONS:
        raise ImageReadError(f"{str(source)!r}: a '::dataset' path only applies to HDF5 files.")
    try:
        for i, (frame, meta) in enumerate(reader(source)):
            yield _checked(frame, source, i), {"frame_in_file": i, **meta}
    except ImageReadError as exc:
        if str(path) in str(exc):
            raise
        raise ImageReadError(f"{str(source)!r}: {exc}") from exc
    except Exception as exc:  # every library raises its own kind for a corrupt file
        raise ImageReadError(
            f"could not read {str(source)!r} as {suffix[1:].upper()}: {type(exc).__name__}: {exc}"
        ) from exc


def iter_array_frames(array: Any) -> Iterator[np.ndarray]:
    """Split an array (or an array-like that slices lazily: memmap, h5py, Tiled) into frames.

    2-D is one frame; 3-D is a stack (N, H, W), unless its last axis has at most 4 entries and
    both others are larger, which reads as one colour frame (H, W, C); 4-D is (N, H, W, C).
    """
    shape = tuple(array.shape)
    if is_single_frame(shape):
        yield np.asarray(array[...])
    elif len(shape) in (3, 4):
        for i in range(shape[0]):
            yield np.asarray(array[i])
    else:
        raise ImageReadError(
            f"array of shape {shape} is not an image: expected (H, W), (N, H, W), (H, W, C) "
            "or (N, H, W, C) with C <= 4"
        )


def is_single_frame(shape: tuple[int, ...]) -> bool:
    """True for (H, W) and for (H, W, C) by the rule of :func:`iter_array_frames`."""
    return len(shape) == 2 or (len(shape) == 3 and shape[2] <= 4 and min(shape[:2]) > shape[2])


def _checked(frame: np.ndarray, source: Source, i: int) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype.kind not in "biuf":
        raise ImageReadError(f"{str(source)!r} frame {i} has non-numeric dtype {frame.dtype}")
    ok = frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] <= 4)
    if not ok or frame.size == 0:
        raise ImageReadError(
            f"{str(source)!r} frame {i} has shape {frame.shape}; expected (H, W) or (H, W, C<=4)"
        )
    return frame


def _read_pillow(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    from PIL import Image

    with Image.open(source.path) as image:
        image.load()  # decode now, so a truncated file fails here with Pillow's reason
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode == "1":
            image = image.convert("L")
        yield np.asarray(image), {}


def _read_tiff(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    import tifffile

    with tifffile.TiffFile(source.path) as tif:
        for page in tif.pages:
            data = page.asarray()
            if data.ndim == 3 and data.shape[0] <= 4 < data.shape[2]:
                data = np.moveaxis(data, 0, -1)  # planar (C, H, W) -> (H, W, C)
            yield data, {}


def _read_npy(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    array = np.load(source.path, mmap_mode="r", allow_pickle=False)  # a big stack stays on disk
    for frame in iter_array_frames(array):
        yield frame, {}


def _read_npz(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    with np.load(source.path, allow_pickle=False) as archive:
        keys = ["frames"] if "frames" in archive.files else list(archive.files)
        for key in keys:
            for frame in iter_array_frames(archive[key]):
                yield frame, {"array": key}


def _read_hdf5(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    import h5py

    with h5py.File(source.path, "r") as file:
        name = source.dataset or _first_image_dataset(file, source)
        node = file.get(name)
        if not isinstance(node, h5py.Dataset):
            found = ", ".join(_image_datasets(file)[:5]) or "none"
            raise ImageReadError(
                f"{str(source.path)!r} has no dataset {name!r}; image-like datasets: {found}"
            )
        for frame in iter_array_frames(node):  # reads node[i] per frame, never the whole stack
            yield frame, {"dataset": node.name}


def _image_datasets(file: Any) -> list[str]:
    import h5py

    names: list[str] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset) and node.ndim in (2, 3) and node.dtype.kind in "biuf":
            if min(node.shape[-2:]) > 1:
                names.append("/" + name)

    file.visititems(visit)
    return names


def _first_image_dataset(file: Any, source: Source) -> str:
    names = _image_datasets(file)
    stacks = [n for n in names if file[n].ndim == 3]
    if not names:
        raise ImageReadError(
            f"{str(source.path)!r} holds no 2-D or 3-D numeric dataset; "
            f"name one with '{source.path.name}::/path/to/dataset'."
        )
    return (stacks or names)[0]


def _read_fabio(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    import fabio

    image = fabio.open(str(source.path))
    try:
        for i in range(image.nframes):
            frame = image if i == 0 else image.getframe(i)
            yield frame.data, _header_fields(frame.header)
    finally:
        image.close()


def _header_fields(header: dict) -> dict[str, Any]:
    """A few short, JSON-able header fields: Pilatus comment lines for CBF, key=value for EDF."""
    pilatus = header.get("_array_data.header_contents")
    if pilatus is not None:
        return _pilatus_fields(str(pilatus))
    fields: dict[str, Any] = {}
    for key, value in header.items():
        text = str(value).strip()
        if _EDF_STRUCTURAL.match(key) or not text or len(text) > 80:
            continue
        fields[key] = _number_or_text(text)
        if len(fields) == _MAX_HEADER_FIELDS:
            break
    return fields


_PILATUS_PATTERNS = {
    "detector": r"^#\s*Detector:\s*(.+)$",
    "timestamp": r"^#\s*(\d{4}-\d\d-\d\dT[\d:.]+)\s*$",
    "exposure_time": r"^#\s*Exposure_time\s+([-\d.eE+]+)",
    "exposure_period": r"^#\s*Exposure_period\s+([-\d.eE+]+)",
    "count_cutoff": r"^#\s*Count_cutoff\s+(\d+)",
}


def _pilatus_fields(text: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, pattern in _PILATUS_PATTERNS.items():
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            fields[key] = _number_or_text(match.group(1).strip())
    return fields


def _number_or_text(text: str) -> int | float | str:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


_READERS = {
    ".png": _read_pillow, ".jpg": _read_pillow, ".jpeg": _read_pillow,
    ".tif": _read_tiff, ".tiff": _read_tiff,
    ".npy": _read_npy, ".npz": _read_npz,
    **{ext: _read_hdf5 for ext in HDF5_EXTENSIONS},
    ".cbf": _read_fabio, ".edf": _read_fabio,
}


# -- Tiled array nodes -----------------------------------------------------------------------
def open_tiled_array(uri: str, api_key: str | None = None) -> Any:
    """Open a Tiled array node (N, H, W) or (N, H, W, C) by URI; slicing it reads lazily.

    ``uri`` is the node's address, e.g. ``http://host:8000/api/v1/metadata/proj/datasets/x/images``;
    a ``tiled+`` prefix is stripped.
    """
    from tiled.client import from_uri

    uri = uri.removeprefix("tiled+")
    try:
        node = from_uri(uri, api_key=api_key)
    except Exception as exc:
        raise ImageReadError(
            f"could not open Tiled node {strip_query(uri)!r}: {type(exc).__name__}: {exc}. "
            "Check the address and the API key."
        ) from exc
    shape = getattr(node, "shape", None)
    if shape is None or len(shape) not in (2, 3, 4):
        raise ImageReadError(
            f"Tiled node {strip_query(uri)!r} is not an image array (shape {shape}); "
            "point at an array node of shape (N, H, W)."
        )
    return node


def read_tiled_array(uri: str, api_key: str | None = None, index: Any = slice(None)) -> np.ndarray:
    """Read (a slice of) a Tiled array node into memory; ingest slices in blocks instead."""
    return np.asarray(open_tiled_array(uri, api_key)[index])


def strip_query(uri: str) -> str:
    """The URI without its query string, so an ``?api_key=`` never reaches metadata or logs."""
    return uri.split("?", 1)[0]
