"""Selection statistics, neighbours, exports and thumbnails (core/maps/selection.py) against a real Tiled."""

import base64
import io
import uuid

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.maps.selection import (
    export_csv,
    export_latents_npy,
    mean_std_images,
    nearest_neighbours,
    read_images,
    read_windows,
    selection_summary,
    to_png_data_uri,
)
from core.data.results.datasets import dataset_writer


@pytest.fixture(scope="module")
def tiled(tiled_server):
    """One store for the module: datasets are written once and only read by the tests."""
    from core.data.store import Store

    return Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key,
                          project=f"sel{uuid.uuid4().hex[:8]}")


def write(store, images) -> str:
    writer = dataset_writer(store, metadata={"name": "selection test"})
    writer.append(images)
    return writer.finish(pd.DataFrame({"index": range(len(images))}))


@pytest.fixture(scope="module")
def ramp(tiled):
    """20 frames of 4x4, frame i constant i: every statistic is checkable by hand."""
    images = np.repeat(np.arange(20, dtype="float32"), 16).reshape(20, 4, 4)
    return write(tiled, images)


@pytest.fixture(scope="module")
def noisy(tiled):
    """30 random frames of shape (2, 6, 5): two channels, checked against numpy."""
    images = np.random.default_rng(1).random((30, 2, 6, 5), dtype="float32")
    return write(tiled, images), images


def test_constant_frames_zero_and_two_give_mean_one_std_one(tiled):
    """Frames of 0 and of 2: mean 1 and population std 1 in every pixel."""
    id = write(tiled, np.stack([np.zeros((3, 3)), np.full((3, 3), 2.0)]).astype("float32"))
    mean, std, info = mean_std_images(tiled, id, [0, 1])
    assert mean.shape == std.shape == (3, 3)
    assert np.all(mean == 1.0) and np.all(std == 1.0)
    assert info == {"n_used": 2, "n_selected": 2, "sampled": False, "n_requests": 1}


def test_chunk_boundaries_match_numpy_and_count_requests(tiled, ramp):
    """Frames 0-3 and 7-9 in chunks of 3 are 3 reads; mean 30/7, std as np.std."""
    selected = [9, 0, 1, 2, 3, 7, 8, 8]  # unsorted, a duplicate: counted once
    values = np.array([0, 1, 2, 3, 7, 8, 9], dtype=float)
    mean, std, info = mean_std_images(tiled, ramp, selected, chunk=3)
    assert info == {"n_used": 7, "n_selected": 7, "sampled": False, "n_requests": 3}  # 0-2, 3, 7-9
    np.testing.assert_allclose(mean, np.full((4, 4), 30 / 7), rtol=1e-6)
    np.testing.assert_allclose(std, np.full((4, 4), values.std()), rtol=1e-6)


@pytest.mark.parametrize("chunk", [1, 4, 512])
def test_channels_and_any_chunk_size_agree_with_numpy(noisy, tiled, chunk):
    """(C, H, W) frames: the streamed mean and std equal numpy's over the same frames."""
    id, images = noisy
    selected = [0, 2, 3, 4, 11, 12, 29]
    mean, std, _ = mean_std_images(tiled, id, selected, chunk=chunk)
    assert mean.shape == (2, 6, 5)
    np.testing.assert_allclose(mean, images[selected].astype(float).mean(0), atol=1e-6)
    np.testing.assert_allclose(std, images[selected].astype(float).std(0), atol=1e-6)


def test_cap_uses_a_seeded_subset_and_says_so(tiled, ramp):
    """20 frames over a cap of 5: the 5 frames default_rng(seed) picks, reproducibly."""
    mean, std, info = mean_std_images(tiled, ramp, range(20), cap=5, seed=3)
    assert info["sampled"] is True and info["n_used"] == 5 and info["n_selected"] == 20
    picked = np.random.default_rng(3).choice(np.arange(20), size=5, replace=False).astype(float)
    np.testing.assert_allclose(mean, np.full((4, 4), picked.mean()), rtol=1e-6)
    np.testing.assert_allclose(std, np.full((4, 4), picked.std()), rtol=1e-6)
    again, _, _ = mean_std_images(tiled, ramp, range(20), cap=5, seed=3)
    assert np.array_equal(mean, again)
    _, _, whole = mean_std_images(tiled, ramp, range(20), cap=20)
    assert whole["sampled"] is False


def test_empty_and_out_of_range_selections_are_refused(tiled, ramp):
    """An empty selection and an index past the dataset get messages that say what to do."""
    with pytest.raises(ValueError, match="selection is empty.*Lasso"):
        mean_std_images(tiled, ramp, [])
    with pytest.raises(ValueError, match=r"outside \[0, 19\].*another map"):
        mean_std_images(tiled, ramp, [3, 20])
    with pytest.raises(ValueError, match="cap=0 must be at least 1"):
        mean_std_images(tiled, ramp, [1], cap=0)


def test_read_windows_merge_small_gaps_and_respect_chunk():
    """Gaps cheaper than a request are read through; a window never spans more than chunk."""
    idx = np.array([0, 1, 2, 3, 7, 8, 9, 2000])
    windows = read_windows(idx, frame_bytes=4096, chunk=512)  # 2 MiB gap = 512 frames
    assert [(a, b) for a, b, _ in windows] == [(0, 10), (2000, 2001)]
    assert windows[0][2].tolist() == [0, 1, 2, 3, 7, 8, 9]
    no_gaps = read_windows(idx, frame_bytes=4096, chunk=512, gap_bytes=0)
    assert [(a, b) for a, b, _ in no_gaps] == [(0, 4), (7, 10), (2000, 2001)]
    small = read_windows(idx, frame_bytes=4096, chunk=3)
    assert [(a, b) for a, b, _ in small] == [(0, 3), (3, 4), (7, 10), (2000, 2001)]


def test_read_images_keeps_the_order_given(tiled, ramp):
    """Gallery frames come back in the requested order, duplicates repeated."""
    frames = read_images(tiled, ramp, [5, 1, 5, 19])
    assert frames.shape == (4, 4, 4) and frames[:, 0, 0].tolist() == [5, 1, 5, 19]


def test_summary_counts_clusters_and_noise():
    """5 of 7 frames selected: 3 noise, 2 of cluster 0, fraction 5/7."""
    labels = np.array([0, 0, 1, -1, -1, -1, 2])
    summary = selection_summary([0, 1, 3, 4, 5], labels)
    assert summary == {"count": 5, "n_total": 7, "fraction": 5 / 7, "clusters": {"noise": 3, 0: 2}}
    assert list(summary["clusters"]) == ["noise", 0]
    assert selection_summary([], labels)["count"] == 0
    assert selection_summary([2, 2], None) == {"count": 1, "n_total": None, "fraction": None, "clusters": {}}


def test_nearest_neighbours_exclude_the_frame_and_check_bounds():
    """On a line 0, 1, 3, 3.5, 10 the neighbours of 3 are 3.5 then 1; a duplicate counts at 0."""
    z = np.array([[0.0], [1.0], [3.0], [3.5], [10.0], [3.0]])
    idx, dist = nearest_neighbours(z, 2, 3)
    assert idx.tolist() == [5, 3, 1] and dist.tolist() == [0.0, 0.5, 2.0]
    idx, _ = nearest_neighbours(z, 4, 5)  # every other frame
    assert idx.tolist() == [3, 2, 5, 1, 0]
    for index, k, match in [(6, 1, "index=6 must be an integer between 0 and 5"),
                            (-1, 1, "index=-1"), (0, 0, "k=0 must be an integer between 1 and 5"),
                            (0, 6, "k=6")]:
        with pytest.raises(ValueError, match=match):
            nearest_neighbours(z, index, k)


def test_export_csv_columns_and_values():
    """index, cluster, x, y, then the frames table's columns, rows in the selection's order."""
    frames = pd.DataFrame({"index": range(4), "source": list("abcd"), "time": [0.5, 1.5, 2.5, 3.5]})
    labels = np.array([1, -1, 0, 1])
    xy = np.arange(8, dtype="float32").reshape(4, 2)
    table = pd.read_csv(io.StringIO(export_csv(frames, [3, 1], labels, xy)))
    assert table.columns.tolist() == ["index", "cluster", "x", "y", "source", "time"]
    assert table.values.tolist() == [[3, 1, 6.0, 7.0, "d", 3.5], [1, -1, 2.0, 3.0, "b", 1.5]]
    xyz = np.zeros((4, 3))
    clash = frames.assign(cluster=["p", "q", "r", "s"])
    columns = pd.read_csv(io.StringIO(export_csv(clash, [0], labels, xyz))).columns.tolist()
    assert columns == ["index", "cluster", "x", "y", "z", "source", "time", "frames_cluster"]
    with pytest.raises(ValueError, match="different lengths"):
        export_csv(frames, [0], labels[:3], xy)


def test_export_latents_npy_round_trip():
    """The NPY bytes load back as mu[indices], same dtype, same order."""
    mu = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    back = np.load(io.BytesIO(export_latents_npy(mu, [7, 2, 9])))
    assert back.dtype == np.float32 and np.array_equal(back, mu[[7, 2, 9]])
    with pytest.raises(ValueError, match="selection is empty"):
        export_latents_npy(mu, [])


def decode(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))


def test_png_data_uri_grey_colour_contrast_and_shrink():
    """0 → 0, 0.5 → 128, 1 → 255; RGB from (3, H, W); None stretches; max_size shrinks."""
    grey = decode(to_png_data_uri(np.array([[0.0, 0.5], [1.0, 2.0]])))
    assert grey.mode == "L" and np.asarray(grey).tolist() == [[0, 128], [255, 255]]
    rgb = decode(to_png_data_uri(np.stack([np.ones((2, 3)), np.zeros((2, 3)), np.zeros((2, 3))])))
    assert rgb.mode == "RGB" and rgb.size == (3, 2) and rgb.getpixel((0, 0)) == (255, 0, 0)
    stretched = decode(to_png_data_uri(np.array([[0.1, 0.2]]), vmin=None, vmax=None))
    assert np.asarray(stretched).tolist() == [[0, 255]]
    assert decode(to_png_data_uri(np.zeros((1, 100, 50)), max_size=20)).size == (10, 20)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(C, H, W\)"):
        to_png_data_uri(np.zeros(5))
