"""Preprocessing by hand-checkable numbers, and ingest into a real Tiled store."""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEMO_DATA, shared_data
from tests.http_recorder import recorder  # noqa: F401  a fixture
from core.data.ingest import IngestError, ingest, ingest_array, read_tiled_array
from core.data.preprocess import PreprocessParams, patch_origins, preprocess_frame
from core.data.store import StoreError
from core.data.results.datasets import read_frames, read_images

RAW = dict(size=None, clip_percentiles=None, normalize=False)  # every step off


# -- preprocessing ---------------------------------------------------------------------------
def test_ramp_normalises_to_exactly_zero_to_one():
    """A 4x4 ramp 0..15 becomes k/15: min exactly 0, max exactly 1."""
    params = PreprocessParams(size=None, clip_percentiles=None)
    out = preprocess_frame(np.arange(16).reshape(4, 4), params)
    assert out.shape == (1, 4, 4) and out.dtype == np.float32
    assert np.array_equal(out[0], (np.arange(16) / 15).reshape(4, 4).astype("float32"))
    assert out.min() == 0.0 and out.max() == 1.0


def test_log1p_of_known_values():
    """log=True maps e^k - 1 to k."""
    frame = np.expm1(np.array([[0.0, 1.0], [2.0, 3.0]]))
    out = preprocess_frame(frame, PreprocessParams(log=True, **RAW))
    assert np.allclose(out[0], [[0, 1], [2, 3]], atol=1e-6)


def test_percentile_clip_uses_numpy_percentiles():
    """Clipping 0..99 at (10, 90) percentiles bounds values to 9.9 and 89.1."""
    frame = np.arange(100.0).reshape(10, 10)
    params = PreprocessParams(size=None, clip_percentiles=(10, 90), normalize=False)
    out = preprocess_frame(frame, params)
    assert out.min() == pytest.approx(9.9) and out.max() == pytest.approx(89.1)
    assert out[0, 5, 0] == 50.0  # inside the range: unchanged


def test_hot_pixel_does_not_squash_the_image():
    """One zinger at 1e6 is clipped away by the default percentiles; the ramp keeps its range."""
    frame = np.tile(np.arange(100.0), (100, 1))
    frame[3, 3] = 1e6
    out = preprocess_frame(frame, PreprocessParams(size=None))[0]
    assert out[50, 50] == pytest.approx(0.5, abs=0.02)


def test_patches_500_by_100_gives_25_in_row_order():
    """500x500 with patch_size=100 -> 25 patches, row by row, each the raw window."""
    frame = np.random.default_rng(1).random((500, 500))
    origins = patch_origins(frame.shape, 100)
    assert len(origins) == 25 and origins[-1] == (400, 400)
    assert origins[:6] == [(0, 0), (0, 100), (0, 200), (0, 300), (0, 400), (100, 0)]
    out = preprocess_frame(frame, PreprocessParams(patch_size=100, **RAW))
    assert out.shape == (25, 100, 100)
    assert np.array_equal(out[7], frame[100:200, 200:300].astype("float32"))
    assert len(patch_origins((500, 500), 100, 50)) == 81  # overlapping windows: 9 x 9


def test_patch_larger_than_frame_is_refused():
    """A patch larger than the frame says which to lower."""
    with pytest.raises(ValueError, match=r"\(50, 60\) is smaller than patch_size=100"):
        preprocess_frame(np.zeros((50, 60)), PreprocessParams(patch_size=100))


def test_box_resize_averages_blocks_exactly():
    """Shrinking 16x16 made of 2x2 blocks to 8x8 gives the block values (area averaging)."""
    values = np.arange(64.0).reshape(8, 8)
    params = PreprocessParams(size=8, clip_percentiles=None, normalize=False)
    out = preprocess_frame(np.kron(values, np.ones((2, 2))), params)
    assert np.allclose(out[0], values)


def test_mask_nonpositive_fills_gaps_with_min_valid():
    """Detector gaps (-1, -2, 0) become the smallest valid value instead of the darkest pixels."""
    frame = np.array([[10.0, 20.0, -1.0], [30.0, -2.0, 40.0], [0.0, 50.0, 60.0]])
    out = preprocess_frame(frame, PreprocessParams(mask_nonpositive=True, **RAW))[0]
    assert out[0, 2] == out[1, 1] == out[2, 0] == 10.0
    unmasked = preprocess_frame(frame, PreprocessParams(**RAW))[0]
    assert unmasked[1, 1] == -2.0


def test_nan_and_inf_pixels_are_masked():
    """Partial NaN/inf pixels are filled like gaps; the output is finite."""
    frame = np.array([[1.0, np.nan], [np.inf, 3.0]])
    out = preprocess_frame(frame, PreprocessParams(size=None, clip_percentiles=None))[0]
    assert np.array_equal(out, [[0.0, 0.0], [0.0, 1.0]])


@pytest.mark.parametrize("frame, params", [
    (np.full((4, 4), np.nan), PreprocessParams()),
    (np.full((4, 4), -1.0), PreprocessParams(mask_nonpositive=True)),
])
def test_frame_without_valid_pixels_is_refused(frame, params):
    """All NaN, or all masked, raises 'frame is all NaN ...'."""
    with pytest.raises(ValueError, match="frame is all NaN"):
        preprocess_frame(frame, params)


def test_constant_frame_becomes_zeros_not_nan():
    """A flat frame normalises to zeros."""
    out = preprocess_frame(np.full((20, 20), 7.0), PreprocessParams(size=16))
    assert out.shape == (1, 16, 16) and not out.any()


def test_colour_to_luminance_or_channels_first():
    """RGB -> 0.299 R + 0.587 G + 0.114 B, or (C, H, W) with grayscale=False."""
    frame = np.zeros((4, 4, 3))
    frame[..., 0] = 100.0
    grey = preprocess_frame(frame, PreprocessParams(**RAW))
    assert grey.shape == (1, 4, 4) and np.allclose(grey, 29.9)
    colour = preprocess_frame(frame, PreprocessParams(grayscale=False, size=8))
    assert colour.shape == (1, 3, 8, 8)


@pytest.mark.parametrize("changes, message", [
    ({"size": 4}, "size=4 must be None or an integer between 8 and 1024"),
    ({"size": 2048}, "size=2048 must be"),
    ({"clip_percentiles": (50, 10)},
     r"clip_percentiles=\(50, 10\) must be None or \(lo, hi\) with 0 <= lo < hi <= 100"),
    ({"clip_percentiles": (-1, 50)}, r"clip_percentiles=\(-1, 50\)"),
    ({"patch_stride": 50}, "patch_stride=50 needs patch_size"),
    ({"patch_size": 3}, "patch_size=3 must be"),
    ({"log": "yes"}, "log='yes' must be True or False"),
])
def test_out_of_range_params_quote_the_value(changes, message):
    """validate() names the field, quotes the bad value and gives the allowed range."""
    with pytest.raises(ValueError, match=message):
        PreprocessParams(**changes).validate()


def test_params_round_trip_through_json_lists():
    """Params rebuilt from stored metadata (lists for tuples) are equal to the original."""
    params = PreprocessParams(log=True, patch_size=100)
    stored = {**asdict(params), "clip_percentiles": [0.5, 99.5]}
    assert PreprocessParams(**stored) == params


# -- ingest into Tiled -----------------------------------------------------------------------
def save_png(path: Path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels.astype("uint8")).save(path)


def test_bad_files_are_listed_while_good_ones_ingest(store, tmp_path, rng):
    """A corrupt PNG and an all-NaN .npy are failures with reasons; the two good PNGs ingest."""
    for i in range(2):
        save_png(tmp_path / f"good{i}.png", np.arange(100).reshape(10, 10) + i)
    (tmp_path / "corrupt.png").write_bytes(rng.bytes(300))
    np.save(tmp_path / "nan.npy", np.full((10, 10), np.nan))
    progress = []
    result = ingest(tmp_path, store, PreprocessParams(size=8, clip_percentiles=None),
                    roots=[tmp_path], name="mixed",
                    on_progress=lambda done, total: progress.append((done, total)))

    assert result.n_frames == 2 and progress == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    reasons = {Path(f["source"]).name: f["reason"] for f in result.failures}
    assert set(reasons) == {"corrupt.png", "nan.npy"}
    assert "UnidentifiedImageError" in reasons["corrupt.png"] and "all NaN" in reasons["nan.npy"]

    images = read_images(store, result.dataset_id)
    assert images.shape == (2, 8, 8) and images.min() == 0.0 and images.max() == 1.0
    frames = read_frames(store, result.dataset_id)
    assert [Path(s).name for s in frames["source"]] == ["good0.png", "good1.png"]
    assert frames[["index", "frame_in_file", "patch", "patch_y", "patch_x"]].values.tolist() == [
        [0, 0, -1, 0, 0], [1, 0, -1, 0, 0]]
    meta = store.metadata("datasets", result.dataset_id)
    assert meta["name"] == "mixed" and meta["kind"] == "images" and meta["n_failures"] == 2
    assert meta["sources"]["count"] == 4 and len(meta["sources"]["examples"]) == 3
    assert meta["preprocess"]["size"] == 8 and len(meta["failures"]) == 2


def test_small_batches_keep_frame_order_and_metadata_columns(store, tmp_path, rng):
    """batch_size=2 over an HDF5 stack of 5: all frames in order, `dataset` column filled."""
    import h5py

    stack = rng.random((5, 12, 12))
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f["entry/data/data"] = stack
    params = PreprocessParams(size=None, clip_percentiles=None)
    spec = f"{tmp_path}/scan.h5::/entry/data/data"
    result = ingest(spec, store, params, roots=[tmp_path], batch_size=2)
    expected = np.concatenate([preprocess_frame(frame, params) for frame in stack])
    assert np.allclose(read_images(store, result.dataset_id), expected)
    frames = read_frames(store, result.dataset_id)
    assert frames["frame_in_file"].tolist() == [0, 1, 2, 3, 4]
    assert set(frames["dataset"]) == {"/entry/data/data"}
    assert store.metadata("datasets", result.dataset_id)["hdf5_datasets"] == {"/entry/data/data": "named"}


def test_frames_of_another_shape_fail_when_size_is_none(store, tmp_path):
    """Without resizing, a frame of a different shape is a failure that says to set size."""
    save_png(tmp_path / "a.png", np.arange(100).reshape(10, 10))
    save_png(tmp_path / "b.png", np.arange(144).reshape(12, 12))
    result = ingest(tmp_path, store, PreprocessParams(size=None), roots=[tmp_path])
    assert result.n_frames == 1 and read_images(store, result.dataset_id).shape == (1, 10, 10)
    [failure] = result.failures
    assert failure["source"].endswith("b.png") and "(12, 12)" in failure["reason"]
    assert "set size" in failure["reason"]


def test_nothing_readable_raises_ingest_error_with_reasons(store, tmp_path, rng):
    """When every file fails, IngestError lists them and nothing is stored."""
    (tmp_path / "a.png").write_bytes(rng.bytes(100))
    with pytest.raises(IngestError, match=r"No frame could be ingested\. 1 failure\(s\): .*a\.png"):
        ingest(tmp_path, store, PreprocessParams(), roots=[tmp_path])
    assert store.list("datasets") == []


def test_empty_folder_and_outside_root_are_refused_before_writing(store, tmp_path):
    """An empty folder -> FileNotFoundError; a path outside the roots -> PermissionError."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No readable files"):
        ingest(tmp_path / "empty", store, PreprocessParams(), roots=[tmp_path])
    with pytest.raises(PermissionError, match="MORPHOSPACE_DATA_ROOTS"):
        ingest(DEMO_DATA, store, PreprocessParams(), roots=[tmp_path])
    with pytest.raises(ValueError, match="size=2 must be"):
        ingest(tmp_path, store, PreprocessParams(size=2), roots=[tmp_path])


def test_demo_colloids_cut_into_1250_patches(store):
    """The shipped demo: 50 frames x 25 patches of 100 px, resized to 64, in [0, 1]."""
    params = PreprocessParams(patch_size=100, size=64)
    result = ingest(DEMO_DATA / "colloids_brightfield.npz", store, params, roots=[DEMO_DATA])
    assert result.n_frames == 1250 and result.failures == []
    images = read_images(store, result.dataset_id)
    assert images.shape == (1250, 64, 64) and images.min() >= 0 and images.max() <= 1
    frames = read_frames(store, result.dataset_id)
    assert len(frames) == 1250 and frames["index"].tolist() == list(range(1250))
    row = frames.loc[32, ["frame_in_file", "patch", "patch_y", "patch_x"]]
    assert row.tolist() == [1, 7, 100, 200]  # frame 1, patch 7 = second row, third column
    assert set(frames["array"]) == {"frames"}


def test_real_cbf_frames_ingest_with_header_columns(store):
    """Three real PILATUS frames, log-scaled with gaps masked, keep their exposure times."""
    folder = shared_data("gisaxs_insitu")
    result = ingest(folder / "*.cbf", store, PreprocessParams(log=True, mask_nonpositive=True),
                    roots=[folder])
    assert result.n_frames == 3
    images = read_images(store, result.dataset_id)
    assert images.shape == (3, 64, 64) and np.isfinite(images).all()
    frames = read_frames(store, result.dataset_id)
    assert frames["exposure_time"].tolist() == pytest.approx([0.995] * 3)
    assert frames["timestamp"].str.startswith("2024-10-26T").all()


def test_in_memory_stack_from_a_package(store):
    """sklearn's 8x8 digits ingest as an array, labelled by where they came from."""
    from sklearn.datasets import load_digits

    digits = load_digits().images[:200]
    result = ingest_array(digits, store, PreprocessParams(size=8, clip_percentiles=None),
                          name="digits", source_label="sklearn.datasets.load_digits")
    images = read_images(store, result.dataset_id)
    assert images.shape == (200, 8, 8)
    assert np.allclose(images[0], digits[0] / digits[0].max())
    assert set(read_frames(store, result.dataset_id)["source"]) == {"sklearn.datasets.load_digits"}


def test_tiled_array_node_ingests_in_blocks(store, tiled_server, rng, caplog):
    """A `tiled+http://` spec reads an array node from Tiled; the API key in it stays out of
    metadata and out of the server's access log (it is sent as a header)."""
    stack = rng.random((6, 16, 16)).astype("float32")
    id = store.put("datasets", arrays={"raw": stack})
    uri = store.node("datasets", id)["raw"].uri
    part = read_tiled_array(uri, tiled_server.api_key, index=slice(2, 4))
    assert np.array_equal(part, stack[2:4])

    server = tiled_server.uri.split("?")[0]
    spec = [f"tiled+{uri}?api_key={tiled_server.api_key}"]  # a list of one, as the CLI sends
    caplog.set_level("INFO", logger="uvicorn.access")
    result = ingest(spec, store, PreprocessParams(size=8), roots=[], tiled_servers={server: None})
    assert result.n_frames == 6
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/raw" in line for line in access) and not any("api_key" in line for line in access)
    assert read_frames(store, result.dataset_id)["source"].iloc[0] == uri
    assert tiled_server.api_key not in str(store.metadata("datasets", result.dataset_id))
    again = ingest(f"tiled+{uri}", store, PreprocessParams(size=8), roots=[],  # the server's own key
                   tiled_servers={server: tiled_server.api_key})
    assert again.n_frames == 6


def test_tiled_host_off_the_list_is_never_requested(store, tiled_server, recorder):
    """`tiled+http://ANY-HOST/...` is refused before any request, naming the allowed servers;
    a look-alike path or port on the store's host is refused too."""
    own = tiled_server.uri.split("?")[0]
    servers = {own: tiled_server.api_key}
    for spec in (f"tiled+{recorder.uri}/metadata/x", f"tiled+{own}/../../other/metadata/x",
                 f"tiled+{own.replace('/api/v1', '/api/v1x')}/metadata/x"):
        with pytest.raises(PermissionError, match=r"not on a Tiled server this worker may read \(allowed: \['http"):
            ingest(spec, store, PreprocessParams(), roots=[], tiled_servers=servers)
    with pytest.raises(PermissionError, match="allowed: none"):
        ingest(f"tiled+{own}/metadata/x", store, PreprocessParams(), roots=[])
    assert recorder.requests == []


def test_allowed_server_gets_the_key_as_a_header_and_its_reply_is_not_echoed(store, recorder):
    """An allowed server that does not answer as Tiled gives one line without its body; the
    key from the spec is never part of a requested address."""
    from core.data.ingest import ImageReadError

    with pytest.raises(ImageReadError) as info:
        ingest(f"tiled+{recorder.uri}/metadata/x?api_key=k-5150", store, PreprocessParams(), roots=[],
               tiled_servers={recorder.uri: None})
    message = str(info.value)
    assert "BODY-7d1e" not in message and "\n" not in message and "k-5150" not in message
    assert message.startswith(f"could not open Tiled node '{recorder.uri}/metadata/x': ")
    assert recorder.requests and all("k-5150" not in path for path, _ in recorder.requests)
    assert store.list("datasets", incomplete=True) == []


def test_ingest_params_keep_no_api_key():
    """A Tiled URI with ?api_key= is stored in the run parameters without it."""
    from flows.params import IngestParams

    params = IngestParams(source=["tiled+http://127.0.0.1:8000/api/v1/metadata/a?api_key=s3cret"])
    assert params.source == ["tiled+http://127.0.0.1:8000/api/v1/metadata/a"]
    assert "s3cret" not in params.model_dump_json()


# -- no half-stored data, no silent outcomes ---------------------------------------------------
def test_interrupted_ingest_leaves_a_dataset_marked_failed_and_refused(store, tmp_path):
    """An ingest stopped after some batches were written (here: cancelled from the progress
    callback) leaves no dataset to train on: hidden from list(), refused as input, reason kept."""
    for i in range(6):
        save_png(tmp_path / f"f{i}.png", np.arange(100).reshape(10, 10) + i)

    def cancel(done, total):
        if done == 4:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        ingest(tmp_path, store, PreprocessParams(size=8), roots=[tmp_path], batch_size=2, on_progress=cancel)
    assert store.list("datasets") == []
    [stopped] = store.list("datasets", incomplete=True)
    assert stopped["complete"] is False and stopped["status"] == "failed" and stopped["error"] == "RuntimeError: cancelled"
    with pytest.raises(StoreError, match="is incomplete"):
        read_images(store, stopped["id"])


def test_skipped_files_are_counted_and_explained(store, tmp_path, rng):
    """A folder with a corrupt file, a 1-pixel PNG and a symlink out of the roots ingests the
    good files and says, in one line of metadata, how many were skipped and why."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir(), outside.mkdir()
    for i in range(3):
        save_png(data / f"good{i}.png", np.arange(100).reshape(10, 10) * (i + 1))
    save_png(data / "dot.png", np.full((1, 1), 200))
    (data / "corrupt.png").write_bytes(rng.bytes(200))
    save_png(outside / "secret.png", np.arange(100).reshape(10, 10))
    (data / "link.png").symlink_to(outside / "secret.png")

    result = ingest(data, store, PreprocessParams(size=8), roots=[data])
    assert result.n_frames == 3 and len(result.failures) == 3
    reasons = {Path(f["source"]).name: f["reason"] for f in result.failures}
    assert "1 x 1 pixels: too small" in reasons["dot.png"]
    assert "outside the allowed data roots" in reasons["secret.png"]
    meta = store.metadata("datasets", result.dataset_id)
    assert meta["n_failures"] == 3 and meta["skipped"].startswith("skipped 3 failure(s) in 3 source(s): ")


def test_nothing_ingested_hint_fits_the_failure(store, tmp_path):
    """An empty file gets no advice about mask_nonpositive; an all-masked frame does."""
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(IngestError) as info:
        ingest(tmp_path / "empty.png", store, PreprocessParams(), roots=[tmp_path])
    assert "mask_nonpositive" not in str(info.value)
    np.save(tmp_path / "gaps.npy", np.full((8, 8), -1.0))
    with pytest.raises(IngestError, match="turn mask_nonpositive off"):
        ingest(tmp_path / "gaps.npy", store, PreprocessParams(mask_nonpositive=True), roots=[tmp_path])


LARGE_FRAME_SCRIPT = """
import resource, sys
import numpy as np
from pathlib import Path
from core.data.imageio import Source, read_frames
from core.data.preprocess import PreprocessParams, preprocess_frame

resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]) * 2**20,) * 2)
for patch in (None, 1000):
    try:
        [(frame, _)] = read_frames(Source(Path(sys.argv[1])))
        out = preprocess_frame(frame, PreprocessParams(size=32, patch_size=patch, patch_stride=patch and 5000))
        print("ok", out.shape, float(out[0].max()), float(out[1:].max()))
    except ValueError as exc:
        print("refused", exc)
"""


def test_large_frame_is_refused_or_patched_in_bounded_memory(tmp_path):
    """A 12,000 x 12,000 uint8 .npy (a sparse file: no disk) under a 1.5 GB address-space cap:
    whole, it is refused with what to do (it took > 13 GB before); cut into patches it is
    preprocessed, each patch read from the memory map on its own (9 far-apart patches: fast)."""
    import subprocess
    import sys

    frame = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype="uint8", shape=(12_000, 12_000))
    frame[:1000, :1000] = np.arange(1000) % 200  # the first patch is a ramp, the others blank
    frame.flush()
    del frame
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", LARGE_FRAME_SCRIPT, str(tmp_path / "big.npy"), "1536"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    refused, patched = run.stdout.strip().splitlines()
    assert refused.startswith("refused frame of 12000 x 12000 pixels is above the 67,108,864 pixels")
    assert "set patch_size" in refused
    assert patched == "ok (9, 32, 32) 1.0 0.0"


# -- physical scale ----------------------------------------------------------------------------
def test_scale_is_stored_as_the_stored_images_effective_pixel_size(store, rng):
    """A 0.2 µm pixel: 500 px frames cut in 100 px patches resized to 50 px store 0.4 µm pixels;
    100 × 50 frames squashed to 25 × 25 store 0.8 × 0.4 µm, pixel_size √(0.32) (areas exact);
    without a resize the pixel size is the one given; the interval is kept as given."""
    from core.data.results.datasets import PhysicalScale, read_scale

    scale = PhysicalScale(pixel_size=0.2, pixel_unit="µm", frame_interval=1 / 24)
    patched = ingest_array(rng.random((2, 500, 500)), store, PreprocessParams(size=50, patch_size=100),
                           name="patched", source_label="test", scale=scale)
    assert read_scale(store, patched.dataset_id) == PhysicalScale(0.4, "µm", 1 / 24)
    squashed = ingest_array(rng.random((2, 100, 50)), store, PreprocessParams(size=25),
                            name="squashed", source_label="test", scale=scale)
    meta = store.metadata("datasets", squashed.dataset_id)
    assert meta["pixel_size_yx"] == pytest.approx([0.8, 0.4]) and meta["source_pixel_size"] == 0.2
    assert meta["pixel_size"] == pytest.approx(0.32**0.5)
    kept = ingest_array(rng.random((2, 30, 30)), store, PreprocessParams(size=None),
                        name="kept", source_label="test", scale=scale)
    assert read_scale(store, kept.dataset_id).pixel_size == pytest.approx(0.2)


def test_without_a_scale_nothing_is_stored_and_readers_say_px(store, rng):
    """No scale given: no scale keys in the metadata, and the read-back scale says px and frames."""
    from core.data.results.datasets import SCALE_KEYS, read_scale

    result = ingest_array(rng.random((2, 16, 16)), store, PreprocessParams(size=8),
                          name="plain", source_label="test")
    assert not set(SCALE_KEYS) & set(store.metadata("datasets", result.dataset_id))
    scale = read_scale(store, result.dataset_id)
    assert (scale.length_unit, scale.time_unit, scale.length_per_px) == ("px", "frames", 1.0)


def test_frames_of_several_sizes_resized_alike_store_no_single_pixel_size(store, tmp_path, rng):
    """Frames of 32 and 48 px resized to 16 px have stored pixels of two sizes: no pixel_size,
    a note saying why; the frame interval is still stored."""
    from core.data.results.datasets import PhysicalScale

    for side in (32, 48):
        np.save(tmp_path / f"f{side}.npy", rng.random((side, side)))
    result = ingest(str(tmp_path), store, PreprocessParams(size=16), roots=[tmp_path],
                    scale=PhysicalScale(1.0, "nm", 0.5))
    meta = store.metadata("datasets", result.dataset_id)
    assert "pixel_size" not in meta and "2 frame sizes" in meta["scale_note"]
    assert meta["frame_interval"] == 0.5


def test_scale_options_on_the_command_line_and_their_bounds():
    """--pixel-size/--pixel-unit/--frame-interval reach IngestParams; 'um' reads as µm; a zero
    pixel size is refused by the model, naming the field."""
    from pydantic import ValidationError

    from app.cli import build_parser, step_params
    from flows.params import IngestParams

    args = build_parser().parse_args(["ingest", "/data/x", "--pixel-size", "0.35", "--pixel-unit", "µm",
                                      "--frame-interval", "0.0417"])
    _, params = step_params(args)
    assert (params.scale.pixel_size, params.scale.pixel_unit, params.scale.frame_interval) == (0.35, "µm", 0.0417)
    assert IngestParams(source="x", pixel_size=1, pixel_unit="um").pixel_unit == "µm"
    with pytest.raises(ValidationError, match="pixel_size"):
        IngestParams(source="x", pixel_size=0)
