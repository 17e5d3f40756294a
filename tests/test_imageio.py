"""Reading image files: every supported format, the data-root fence, and bad input."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.conftest import shared_data
from core.data.imageio import (
    ImageReadError,
    Source,
    iter_array_frames,
    read_frames,
    resolve_sources,
)


def read_all(path, dataset=None):
    return list(read_frames(Source(Path(path), dataset)))


# -- formats ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_png_grayscale_pixels_round_trip(tmp_path, rng, dtype):
    """8- and 16-bit grayscale PNGs read back with their exact pixel values."""
    pixels = rng.integers(0, np.iinfo(dtype).max, size=(12, 17), dtype=dtype)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    [(frame, meta)] = read_all(tmp_path / "a.png")
    assert frame.shape == (12, 17) and np.array_equal(frame, pixels)
    assert meta == {"frame_in_file": 0}


def test_png_colour_keeps_channels_last(tmp_path, rng):
    """An RGB PNG reads as (H, W, 3) with the written values."""
    pixels = rng.integers(0, 255, size=(9, 11, 3), dtype="uint8")
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    [(frame, _)] = read_all(tmp_path / "rgb.png")
    assert np.array_equal(frame, pixels)


def test_jpeg_reads_close_to_written_values(tmp_path):
    """A flat-grey JPEG survives lossy compression within a grey level or two."""
    Image.fromarray(np.full((16, 16), 120, "uint8")).save(tmp_path / "g.jpg", quality=95)
    [(frame, _)] = read_all(tmp_path / "g.jpg")
    assert frame.shape == (16, 16) and np.abs(frame.astype(int) - 120).max() <= 2


def test_multipage_tiff_gives_one_frame_per_page(tmp_path, rng):
    """Each page of a TIFF stack is a frame, in order, numbered by frame_in_file."""
    stack = rng.integers(0, 60000, size=(3, 8, 10), dtype="uint16")
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")  # not planar RGB
    frames = read_all(tmp_path / "s.tif")
    assert [meta["frame_in_file"] for _, meta in frames] == [0, 1, 2]
    assert np.array_equal(np.stack([f for f, _ in frames]), stack)


@pytest.mark.parametrize(
    "shape, n_frames, frame_shape",
    [
        ((6, 7), 1, (6, 7)),
        ((4, 6, 7), 4, (6, 7)),
        ((2, 6, 7, 3), 2, (6, 7, 3)),
        ((6, 7, 3), 1, (6, 7, 3)),
    ],
)
def test_npy_shapes_split_into_frames(tmp_path, rng, shape, n_frames, frame_shape):
    """2-D, (N, H, W), (N, H, W, C) and (H, W, C) arrays split into the expected frames."""
    array = rng.normal(size=shape).astype("float32")
    np.save(tmp_path / "a.npy", array)
    frames = read_all(tmp_path / "a.npy")
    assert len(frames) == n_frames and frames[0][0].shape == frame_shape
    assert np.array_equal(np.stack([f for f, _ in frames]).reshape(array.shape), array)


def test_npz_prefers_frames_key_else_reads_every_array(tmp_path, rng):
    """NPZ: only `frames` when present; otherwise each array, labelled in metadata."""
    stack = rng.random((3, 5, 5))
    np.savez(tmp_path / "f.npz", frames=stack, dark=np.zeros((5, 5)))
    assert len(read_all(tmp_path / "f.npz")) == 3
    np.savez(tmp_path / "g.npz", a=stack, b=np.ones((5, 5)))
    frames = read_all(tmp_path / "g.npz")
    assert [m["array"] for _, m in frames] == ["a", "a", "a", "b"]
    assert [m["frame_in_file"] for _, m in frames] == [0, 1, 2, 3]
    assert np.array_equal(frames[3][0], np.ones((5, 5)))


def test_hdf5_dataset_path_and_default_choice(tmp_path, rng):
    """`::/path` picks a dataset; without it (and no NeXus signal or conventional name) the
    first 3-D stack wins over a 2-D mask."""
    stack = rng.integers(0, 1000, size=(4, 6, 8), dtype="int32")
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f["a_mask"] = np.ones((6, 8), "uint8")  # visited first, but only 2-D
        f["entry/scan/frames"] = stack
        f["entry/title"] = "not an image"
    frames = read_all(tmp_path / "scan.h5")
    assert len(frames) == 4 and np.array_equal(frames[2][0], stack[2])
    assert frames[0][1] == {"frame_in_file": 0, "dataset": "/entry/scan/frames",
                            "dataset_choice": "first image-like"}
    [(mask, meta)] = read_all(tmp_path / "scan.h5", "/a_mask")
    assert mask.shape == (6, 8) and meta["dataset"] == "/a_mask"


def test_hdf5_missing_dataset_lists_the_image_datasets(tmp_path):
    """A wrong dataset path names the datasets that would work."""
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f["entry/data/data"] = np.zeros((2, 4, 4))
    with pytest.raises(ImageReadError, match=r"no dataset '/nope'.*/entry/data/data"):
        read_all(tmp_path / "scan.h5", "/nope")


def test_edf_pixels_and_header_fields(tmp_path):
    """EDF via fabio: exact pixels plus the measurement's header fields, layout keys dropped."""
    import fabio.edfimage

    pixels = np.arange(12, dtype="float32").reshape(3, 4)
    fabio.edfimage.EdfImage(data=pixels, header={"ExposureTime": "0.5", "Title": "run7"}).write(
        str(tmp_path / "f.edf")
    )
    [(frame, meta)] = read_all(tmp_path / "f.edf")
    assert np.array_equal(frame, pixels)
    assert meta["ExposureTime"] == 0.5 and meta["Title"] == "run7" and "Dim_1" not in meta


def test_real_pilatus_cbf_has_negative_gaps_and_header():
    """The real PILATUS 2M frame: (1679, 1475) with -1 gaps / -2 dead pixels, exposure read."""
    path = shared_data("gisaxs_insitu", "jg_gisaxs_4nm_old_3ml_insitu_ds03_00001_00005.cbf")
    [(frame, meta)] = read_all(path)
    assert frame.shape == (1679, 1475)
    assert (frame == -1).sum() > 100_000 and (frame == -2).sum() > 0 and frame.min() == -2
    assert meta["exposure_time"] == pytest.approx(0.995) and meta["count_cutoff"] == 1382835


def test_real_saxs_png_reads_as_grayscale():
    """A shipped SAXS PNG is a 512x512 grayscale frame."""
    [(frame, _)] = read_all(shared_data("saxs_examples", "24002.png"))
    assert frame.shape == (512, 512) and frame.dtype == np.uint8


# -- bad input -------------------------------------------------------------------------------
def test_corrupt_png_raises_with_path_and_reason(tmp_path, rng):
    """Random bytes named .png raise ImageReadError naming the file and the library's reason."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(rng.bytes(500))
    message = r"could not read .*bad\.png.* as PNG: UnidentifiedImageError"
    with pytest.raises(ImageReadError, match=message):
        read_all(bad)


def test_unknown_extension_lists_supported_ones(tmp_path):
    """A file of an unknown type says which extensions are supported."""
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match=r"'\.txt'.*\.cbf"):
        read_all(tmp_path / "notes.txt")


def test_array_of_too_many_dimensions_is_refused():
    """A 5-D array is not an image stack, and the message shows the accepted shapes."""
    with pytest.raises(ImageReadError, match=r"\(2, 2, 2, 2, 2\).*\(N, H, W\)"):
        list(iter_array_frames(np.zeros((2, 2, 2, 2, 2))))


# -- resolving specs -------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for name in ["b.png", "a.npy", "c.tif", "notes.txt", ".hidden.png", "sub/d.png"]:
        (data / name).write_bytes(b"x")
    return data


def test_folder_gives_supported_files_sorted_not_recursive(folder):
    """A folder yields its supported files by name; text, hidden files, subfolders are skipped."""
    names = [s.path.name for s in resolve_sources(folder, roots=[folder])]
    assert names == ["a.npy", "b.png", "c.tif"]


def test_globs_lists_relative_paths_and_dataset_suffix(folder):
    """Globs (** recursive), relative items under a root, dedupe, and `::dataset` on every match."""
    sources = resolve_sources(["**/*.png", "b.png", "sub/*.png::/entry/data"], roots=[folder])
    assert [(s.path.name, s.dataset) for s in sources] == [
        ("b.png", None), ("d.png", None), ("d.png", "/entry/data")
    ]
    assert str(sources[2]).endswith("d.png::/entry/data")


def test_empty_folder_says_where_it_looked(tmp_path):
    """Nothing found -> FileNotFoundError naming the folder and the supported extensions."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty.*Supported extensions: .*\.png.*\.cbf"):
        resolve_sources(tmp_path / "empty", roots=[tmp_path])


def test_path_outside_roots_is_refused(folder, tmp_path):
    """Reading outside the data roots raises PermissionError naming the setting to change."""
    message = r"outside the allowed data roots.*MORPHOSPACE_DATA_ROOTS"
    with pytest.raises(PermissionError, match=message):
        resolve_sources("/etc/hostname", roots=[folder])
    with pytest.raises(PermissionError):
        resolve_sources(str(folder / ".." / "*.png"), roots=[folder])


def test_symlink_escaping_a_root_is_refused(folder, tmp_path):
    """A link inside a root that points outside it is judged by its target: named outright it
    stops the spec; found in a folder it is skipped like any unreadable file, never read."""
    outside = tmp_path / "secret.npy"
    np.save(outside, np.zeros((2, 2)))
    (folder / "link.npy").symlink_to(outside)
    with pytest.raises(PermissionError, match="secret.npy"):
        resolve_sources(folder / "link.npy", roots=[folder])
    sources = {s.path.name: s for s in resolve_sources(folder, roots=[folder])}
    assert set(sources) == {"a.npy", "b.png", "c.tif", "secret.npy"} and not sources["b.png"].refused
    with pytest.raises(ImageReadError, match=r"secret\.npy.*outside the allowed data roots"):
        list(read_frames(sources["secret.npy"], roots=[folder]))


# -- HDF5 files that point elsewhere -----------------------------------------------------------
@pytest.fixture
def fenced(tmp_path):
    """A data root and a folder outside it holding a raw file and an HDF5 stack."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    np.arange(64, dtype="uint8").tofile(outside / "raw.bin")
    with h5py.File(outside / "src.h5", "w") as f:
        f["data"] = np.full((2, 8, 8), 7.0)
    return root, outside


def write_h5(path, build):
    with h5py.File(path, "w") as f:
        build(f)
    return path


def vds_of(source_file, shape=(2, 8, 8)):
    layout = h5py.VirtualLayout(shape=shape, dtype="f8")
    layout[:] = h5py.VirtualSource(str(source_file), "data", shape=shape)
    return layout


@pytest.mark.parametrize("kind", ["external raw to /etc/passwd", "external raw relative", "virtual", "external link",
                                  "soft link to an external link"])
def test_hdf5_that_reads_files_outside_the_roots_is_refused(fenced, kind):
    """External raw storage, a virtual dataset and external links to files outside the roots are
    refused with the file they point at; before, /etc/passwd's bytes were stored as an image."""
    root, outside = fenced

    def build(f):
        if kind == "external raw to /etc/passwd":
            f.create_dataset("data", shape=(8, 8), dtype="uint8", external=[("/etc/passwd", 0, 64)])
        elif kind == "external raw relative":
            f.create_dataset("data", shape=(8, 8), dtype="uint8", external=[(os.path.relpath(outside / "raw.bin"), 0, 64)])
        elif kind == "virtual":
            f.create_virtual_dataset("data", vds_of(outside / "src.h5"))
        else:
            f["entry/data"] = h5py.ExternalLink(str(outside / "src.h5"), "/data")
            if kind.startswith("soft"):
                f["data"] = h5py.SoftLink("/entry/data")

    path = write_h5(root / "crafted.h5", build)
    target = "passwd" if "passwd" in kind else "outside"
    for dataset in ("/entry/data" if kind == "external link" else "/data", None):  # named, or by default
        if dataset is None and kind.endswith("link"):
            continue  # links are never followed when choosing a default
        with pytest.raises(ImageReadError, match=rf"reads .*{target}.*outside the data roots.*refused"):
            list(read_frames(Source(path, dataset), roots=[root]))


def test_hdf5_pointing_inside_the_roots_still_reads(fenced):
    """The same constructs pointing at files inside the roots read normally; without roots
    (a caller that gave none) they are refused."""
    root, outside = fenced
    for name in ("raw.bin", "src.h5"):
        (root / name).write_bytes((outside / name).read_bytes())

    def build(f):
        f.create_dataset("raw", shape=(8, 8), dtype="uint8", external=[(str(root / "raw.bin"), 0, 64)])
        f.create_virtual_dataset("vds", vds_of(root / "src.h5"))
        f["link"] = h5py.ExternalLink("src.h5", "/data")  # relative: beside the file

    path = write_h5(root / "ok.h5", build)
    [(raw, _)] = read_frames(Source(path, "/raw"), roots=[root])
    assert np.array_equal(raw, np.arange(64).reshape(8, 8))
    for name in ("/vds", "/link"):
        frames = [f for f, _ in read_frames(Source(path, name), roots=[root])]
        assert len(frames) == 2 and (frames[1] == 7.0).all()
    with pytest.raises(ImageReadError, match="none given"):
        list(read_frames(Source(path, "/raw")))


# -- HDF5: which dataset is the data ----------------------------------------------------------
def nexus(f, signal_group, signal, default=True):
    f.attrs["default"] = "entry"
    entry = f["entry"]
    entry.attrs["NX_class"] = "NXentry"
    if default:
        entry.attrs["default"] = signal_group
    entry[signal_group].attrs["NX_class"] = "NXdata"
    entry[signal_group].attrs["signal"] = signal


@pytest.mark.parametrize("default", [True, False])
def test_nexus_signal_is_taken_not_the_first_dataset(tmp_path, rng, default):
    """NXcanSAS: I is read, not the Q components (a 3-D stack that sorts first); with or without
    the @default chain, the NXdata @signal names it, and the metadata says so."""
    intensity = rng.random((16, 16))

    def build(f):
        f["entry/sasdata/Q"] = rng.random((2, 16, 16))
        f["entry/sasdata/I"] = intensity
        nexus(f, "sasdata", "I", default)

    [(frame, meta)] = read_frames(Source(write_h5(tmp_path / "sas.nxs", build)))
    assert np.array_equal(frame, intensity)
    assert meta["dataset"] == "/entry/sasdata/I" and meta["dataset_choice"] == "NeXus signal"


def test_conventional_name_beats_alphabetical_order(tmp_path, rng):
    """Without NeXus attributes, `data` is taken over an `azimuth` array that sorts first."""
    data = rng.random((3, 10, 10))

    def build(f):
        f["entry/azimuth"] = rng.random((10, 10))
        f["entry/data"] = data

    frames = list(read_frames(Source(write_h5(tmp_path / "scan.h5", build))))
    assert len(frames) == 3 and np.array_equal(frames[0][0], data[0])
    assert frames[0][1]["dataset"] == "/entry/data" and frames[0][1]["dataset_choice"] == "conventional name"


def test_nexus_signal_that_is_not_an_image_is_refused(tmp_path, rng):
    """A 1-D I(Q) signal is refused with its shape, not swapped for another dataset."""

    def build(f):
        f["entry/sasdata/I"] = rng.random(100)
        f["entry/sasdata/Qmap"] = rng.random((8, 8))
        nexus(f, "sasdata", "I")

    with pytest.raises(ImageReadError, match=r"signal '/entry/sasdata/I' \(shape \(100,\)\) is not an image"):
        list(read_frames(Source(write_h5(tmp_path / "sas.h5", build))))


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"hello, I am a text file\n", "is not a NumPy .npy file"),
])
def test_npy_that_is_not_npy_says_so_not_pickled(tmp_path, content, message):
    """A text file or an empty file named .npy is reported as such, never as 'pickled data'."""
    (tmp_path / "a.npy").write_bytes(content)
    (tmp_path / "a.npz").write_bytes(content)
    for name in ("a.npy", "a.npz"):
        with pytest.raises(ImageReadError) as info:
            read_all(tmp_path / name)
        assert "pickled" not in str(info.value)
        assert ("is empty" if not content else "is not a NumPy") in str(info.value)
