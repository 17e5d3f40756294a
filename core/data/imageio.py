"""Find image files and read them frame by frame, whatever the instrument wrote.

Two steps, kept apart so a web form can check a path before any pixel is read:

* :func:`resolve_sources` turns what a user typed (folder, glob, file, ``file.h5::/dataset``, or a
  list of these) into :class:`Source` objects, refusing anything outside the allowed data roots.
* :func:`read_frames` yields one 2-D frame at a time with a little metadata, so a big HDF5 or
  TIFF stack is never loaded whole.

Formats: PNG/JPEG (Pillow), TIFF (tifffile, one frame per page), NPY/NPZ (numpy, no pickles),
HDF5/NeXus (h5py: the NeXus signal unless a dataset is named; external storage, virtual sources
and external links only when they point inside the data roots), CBF/EDF (fabio). Pixel values are returned unchanged, including the negative
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
    """One file to read; ``dataset`` is the HDF5 dataset path (None: the NeXus signal, else the
    first image-like). ``refused`` says why a file a folder or glob led to may not be read (a
    symlink out of the data roots): reading it raises, so it is skipped like any bad file."""

    path: Path
    dataset: str | None = None
    refused: str = ""

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
        symlinks, must lie inside one of them. A file named outright that does not is refused;
        one a folder or glob led to comes back with ``refused`` set, so it is skipped and
        reported like any other unreadable file.

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
            if files == [candidate]:  # named outright: outside the roots stops everything
                _check_inside(candidate, roots)
            return [Source(file.resolve(), dataset, refused=_outside(file, roots)) for file in files]
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


def _check_inside(path: Path, roots: Sequence[Path]) -> None:
    reason = _outside(path, roots)
    if reason:
        raise PermissionError(reason)


def _outside(path: Path, roots: Sequence[Path]) -> str:
    """'' when ``path`` (symlinks resolved) lies inside a root, else the message saying why not."""
    real = path.resolve()
    if any(real.is_relative_to(root) for root in roots):
        return ""
    return (
        f"{str(path)!r} (resolved to {str(real)!r}) is outside the allowed data roots "
        f"{[str(r) for r in roots]}. Move the data under a root, or add its folder to "
        "MORPHOSPACE_DATA_ROOTS."
    )


# -- reading frames --------------------------------------------------------------------------
def read_frames(
    source: Source, *, roots: Sequence[Path] = ()
) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Yield ``(frame, metadata)`` for every frame of a file, one at a time.

    A frame is (H, W) or (H, W, C) with C <= 4, in the file's own dtype. Metadata always has
    ``frame_in_file``; HDF5 adds ``dataset`` and ``dataset_choice`` (why that dataset: named,
    the NeXus signal, a conventional name, or the first image-like one), NPZ ``array``, CBF/EDF
    a few header fields.

    ``roots`` fences what an HDF5 file may make the reader open besides itself (external raw
    storage, virtual dataset sources, external links): such files must lie inside a root, and
    with no roots given none may be opened.

    Raises
    ------
    ImageReadError
        The file is missing, refused, of an unknown format, corrupt, or holds no image-shaped
        data.
    """
    path = Path(source.path)
    if source.refused:
        raise ImageReadError(source.refused)
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ImageReadError(
            f"{str(path)!r} has extension {suffix!r}; supported: {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    if source.dataset and suffix not in HDF5_EXTENSIONS:
        raise ImageReadError(f"{str(source)!r}: a '::dataset' path only applies to HDF5 files.")
    fence = tuple(Path(root).expanduser().resolve() for root in roots)
    frames = _read_hdf5(source, fence) if suffix in HDF5_EXTENSIONS else reader(source)
    try:
        for i, (frame, meta) in enumerate(frames):
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


def _require_magic(path: Path, magic: tuple[bytes, ...], what: str) -> None:
    """numpy falls back to unpickling a file without its header ("contains pickled data"):
    say what the file really is not instead."""
    with open(path, "rb") as handle:
        head = handle.read(max(len(m) for m in magic))
    if not head:
        raise ImageReadError(f"{str(path)!r} is empty (0 bytes): nothing to read")
    if not head.startswith(magic):
        raise ImageReadError(
            f"{str(path)!r} is not {what} (it does not start with that format's header); "
            "write it with numpy, or give the file the extension of its real format"
        )


def _read_npy(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    _require_magic(source.path, (b"\x93NUMPY",), "a NumPy .npy file")
    array = np.load(source.path, mmap_mode="r", allow_pickle=False)  # a big stack stays on disk
    for frame in iter_array_frames(array):
        yield frame, {}


def _read_npz(source: Source) -> Iterator[tuple[np.ndarray, dict]]:
    _require_magic(source.path, (b"PK\x03\x04", b"PK\x05\x06"), "a NumPy .npz archive")
    with np.load(source.path, allow_pickle=False) as archive:
        keys = ["frames"] if "frames" in archive.files else list(archive.files)
        for key in keys:
            for frame in iter_array_frames(archive[key]):
                yield frame, {"array": key}


def _read_hdf5(source: Source, roots: tuple[Path, ...]) -> Iterator[tuple[np.ndarray, dict]]:
    import h5py

    with h5py.File(source.path, "r") as file:
        if source.dataset:
            name, choice = source.dataset, "named"
        else:
            name, choice = _default_dataset(file, source, roots)
        node = _get_inside(file, name, roots)
        if not isinstance(node, h5py.Dataset):
            found = ", ".join(_image_datasets(file)[:5]) or "none"
            raise ImageReadError(
                f"{str(source.path)!r} has no dataset {name!r}; image-like datasets: {found}"
            )
        _check_storage(node, roots)
        shown = name if name.startswith("/") else f"/{name}"
        for frame in iter_array_frames(node):  # reads node[i] per frame, never the whole stack
            yield frame, {"dataset": shown, "dataset_choice": choice}


# -- HDF5: every other file a dataset makes the library open must lie inside the roots ------
_MAX_VDS_DEPTH = 3  # a virtual dataset of virtual datasets: deeper than any beamline writes


def _check_other_file(target: str, place: Path | None, roots: tuple[Path, ...], what: str) -> None:
    """Refuse ``what`` unless ``place``, where the library will open ``target``, is inside."""
    if place is not None and any(place.resolve().is_relative_to(r) for r in roots):
        return
    where = f"resolved to {str(place.resolve())!r}" if place is not None else "a file that does not exist"
    fence = f"the data roots {[str(r) for r in roots]}" if roots else "any data root (none given)"
    raise ImageReadError(
        f"{what} reads {target!r} ({where}), outside {fence}: refused. "
        "Put that file under a data root, or store the pixels in this file."
    )


def _found_as_library_does(target: str, folder: Path) -> Path | None:
    """Where HDF5 opens a linked or virtual-source file: an absolute name as is, else (or when
    that is missing) the bare name beside the linking file, then in the working directory."""
    path = Path(target)
    names = [path, folder / path.name, Path.cwd() / path.name] if path.is_absolute() else [
        folder / path, Path.cwd() / path]
    return next((p for p in names if p.is_file()), None)


def _get_inside(file: Any, name: str, roots: tuple[Path, ...]) -> Any:
    """``file.get(name)``, but an external link on the way must point inside the roots (checked
    before the library opens it), and so must the file the object finally lives in."""
    import h5py

    folder = Path(file.filename).resolve().parent
    parts = [part for part in name.split("/") if part]
    for i in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:i])
        link = file.get(prefix, getlink=True)
        if link is None:
            break  # missing: the caller lists what exists
        if isinstance(link, h5py.ExternalLink):
            _check_other_file(link.filename, _found_as_library_does(link.filename, folder), roots,
                              f"external link {prefix!r}")
    node = file.get(name)
    if node is not None and Path(node.file.filename).resolve() != Path(file.filename).resolve():
        _check_other_file(node.file.filename, Path(node.file.filename), roots, f"link {name!r}")
    return node


def _check_storage(node: Any, roots: tuple[Path, ...], depth: int = 0) -> None:
    """Refuse a dataset whose pixels live in files outside the roots: external raw storage
    (relative names are taken from the working directory, as HDF5 does) or virtual sources."""
    import h5py

    for target, _offset, _size in node.external or ():
        _check_other_file(target, Path.cwd() / target,  # an absolute target replaces the cwd
                          roots, f"dataset {node.name!r} keeps its pixels in an external file that")
    if not node.is_virtual:
        return
    what = f"virtual dataset {node.name!r}"
    if depth >= _MAX_VDS_DEPTH:
        raise ImageReadError(f"{what} is nested more than {_MAX_VDS_DEPTH} deep: refused")
    folder = Path(node.file.filename).resolve().parent
    for vds in node.virtual_sources():
        if vds.file_name == ".":
            _check_storage(_get_inside(node.file, vds.dset_name, roots), roots, depth + 1)
            continue
        if "%" in vds.file_name:
            raise ImageReadError(f"{what} names its sources by a pattern ({vds.file_name!r}): refused")
        place = _found_as_library_does(vds.file_name, folder)
        _check_other_file(vds.file_name, place, roots, what)
        with h5py.File(place, "r") as other:
            inner = _get_inside(other, vds.dset_name, roots)
            if isinstance(inner, h5py.Dataset):
                _check_storage(inner, roots, depth + 1)


# -- HDF5: which dataset is the data ----------------------------------------------------------
# Names detectors and NeXus/NXcanSAS writers give the measured intensity.
CONVENTIONAL_NAMES = ("data", "I", "intensity", "image", "images")


def _image_datasets(file: Any) -> list[str]:
    """Numeric 2-D/3-D datasets reachable by hard links (visititems follows no other link)."""
    import h5py

    names: list[str] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset) and _image_like(node):
            names.append("/" + name)

    file.visititems(visit)
    return names


def _image_like(node: Any) -> bool:
    return node.ndim in (2, 3) and node.dtype.kind in "biuf" and min(node.shape[-2:]) > 1


def _default_dataset(file: Any, source: Source, roots: tuple[Path, ...]) -> tuple[str, str]:
    """The dataset to read when none is named, and why: the NeXus signal (``@default`` chain
    from the root, then any group with ``@signal``), else a conventional name, else the first
    image-like dataset (a 3-D stack before a 2-D frame)."""
    import h5py

    signal = _nexus_signal(file, roots)
    if signal is not None:
        node = _get_inside(file, signal, roots)
        if not isinstance(node, h5py.Dataset) or not _image_like(node):
            shape = getattr(node, "shape", None)
            raise ImageReadError(
                f"{str(source.path)!r}: the NeXus signal {signal!r} (shape {shape}) is not an "
                f"image (2-D, or a 3-D stack); name a dataset with '{source.path.name}::/path'."
            )
        return signal, "NeXus signal"
    names = _image_datasets(file)
    if not names:
        raise ImageReadError(
            f"{str(source.path)!r} holds no 2-D or 3-D numeric dataset; "
            f"name one with '{source.path.name}::/path/to/dataset'."
        )
    conventional = [n for n in names if n.rsplit("/", 1)[-1] in CONVENTIONAL_NAMES]
    candidates, choice = (conventional, "conventional name") if conventional else (names, "first image-like")
    stacks = [n for n in candidates if file[n].ndim == 3]
    return (stacks or candidates)[0], choice


def _nexus_signal(file: Any, roots: tuple[Path, ...]) -> str | None:
    """The path of the NeXus plottable signal, or None in a file that does not say."""
    import h5py

    group, path = file, ""
    for _ in range(4):  # NXroot -> NXentry -> NXdata (-> a subentry)
        target = _text_attr(group, "default")
        child = _get_inside(file, f"{path}/{target}", roots) if target else None
        if not isinstance(child, h5py.Group):
            break
        group, path = child, f"{path}/{target}"
    signal = _text_attr(group, "signal")
    if signal:
        return f"{path}/{signal}"
    found: list[str] = []

    def visit(name: str, node: Any) -> None:
        if not found and isinstance(node, h5py.Group) and _text_attr(node, "signal"):
            found.append(f"/{name}/{_text_attr(node, 'signal')}")

    file.visititems(visit)
    return found[0] if found else None


def _text_attr(node: Any, name: str) -> str:
    value = node.attrs.get(name)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value.strip() if isinstance(value, str) else ""


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
    a ``tiled+`` prefix is stripped. An ``?api_key=`` in it is sent as the key (a header), never
    as part of the address, so it stays out of the server's access log. Errors are one line and
    never repeat what the server answered.
    """
    from tiled.client import from_uri

    from core.data.store import describe_tiled_failure

    uri, key_in_uri = split_api_key(uri.removeprefix("tiled+"))
    try:
        node = from_uri(uri, api_key=api_key or key_in_uri)
    except Exception as exc:
        raise ImageReadError(
            f"could not open Tiled node {strip_query(uri)!r}: {describe_tiled_failure(exc)}. "
            "Check the address and the API key."
        ) from None  # the chained error may quote the server's reply
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


def split_api_key(uri: str) -> tuple[str, str | None]:
    """``(uri without its api_key parameter, the key or None)``; other parameters are kept."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    keys = [value for name, value in query if name == "api_key"]
    kept = urlencode([(name, value) for name, value in query if name != "api_key"])
    return urlunsplit(parts._replace(query=kept)), (keys[-1] if keys else None)


def tiled_server_for(uri: str, servers: Sequence[str]) -> str:
    """The configured server ``uri`` lies under (same scheme, host and port, and a path below
    the server's), else PermissionError naming the allowed ones: the worker reads no other host.
    """
    from posixpath import normpath
    from urllib.parse import urlsplit

    def place(text: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(strip_query(text.removeprefix("tiled+")))
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        return parts.scheme, (parts.hostname or ""), port, normpath("/" + parts.path).rstrip("/")

    try:
        scheme, host, port, path = place(uri)
        for server in servers:
            s_scheme, s_host, s_port, s_path = place(server)
            if (scheme, host, port) == (s_scheme, s_host, s_port) and (
                path == s_path or path.startswith(s_path + "/")
            ):
                return server
    except ValueError:  # a port that is not a number, brackets that do not close ...
        pass
    allowed = [strip_query(server) for server in servers] or "none"
    raise PermissionError(
        f"Tiled node {strip_query(uri)!r} is not on a Tiled server this worker may read "
        f"(allowed: {allowed}). Add the server to MORPHOSPACE_TILED_ALLOWED_URIS on the workers."
    )
