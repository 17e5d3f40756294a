"""A path drawn on the map → evenly spaced query points; generated sequences → NPZ and TIFF files."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import tifffile

from core.synthesis.export import to_npz, to_tiff
from core.synthesis.paths import parse_svg_path, path_length, resample


def test_plotly_path_gives_its_vertices():
    """Plotly's drawn path "M x,y L x,y ..." reads back as its vertices; relative steps are added."""
    assert parse_svg_path("M1.5,2L3,4L5,4.5").tolist() == [[1.5, 2], [3, 4], [5, 4.5]]
    assert parse_svg_path("M0,0l1,1l1,0Z").tolist() == [[0, 0], [1, 1], [2, 1]]
    assert parse_svg_path("M-1e-1,2.5 L 3 , -4").tolist() == [[-0.1, 2.5], [3, -4]]


@pytest.mark.parametrize("bad", ["", "M0,0C1,1,2,2,3,3", "M0,0L1"])
def test_paths_it_cannot_read_are_refused(bad):
    """Empty paths, curves and a lone coordinate are refused with the reason."""
    with pytest.raises(ValueError):
        parse_svg_path(bad)


def test_resampling_spaces_points_evenly_along_the_path():
    """An L of two legs of length 2 in 5 steps: every 1 unit, the corner included (by hand)."""
    vertices = np.array([[0, 0], [2, 0], [2, 2]])
    assert resample(vertices, 5).tolist() == [[0, 0], [1, 0], [2, 0], [2, 1], [2, 2]]
    assert path_length(vertices) == 4.0
    # A hand that slowed down (many vertices bunched at the start) gives the same steps.
    bunched = np.array([[0, 0], [0.1, 0], [0.2, 0], [0.3, 0], [2, 0], [2, 2]])
    np.testing.assert_allclose(resample(bunched, 5), resample(vertices, 5))


@pytest.mark.parametrize("vertices, steps", [([[0, 0], [1, 1]], 1), ([[0, 0], [1, 1]], 201),
                                             ([[0, 0]], 5), ([[1, 1], [1, 1]], 5)])
def test_resampling_refuses_bad_steps_and_pointless_paths(vertices, steps):
    """Too few or too many steps, one point, or a path of no length."""
    with pytest.raises(ValueError):
        resample(np.array(vertices, float), steps)


def test_npz_and_tiff_carry_images_points_and_provenance():
    """Both files give back the images in order, the asked and landed points and what made them."""
    images = np.stack([np.full((1, 4, 4), v, np.float32) for v in (0.0, 0.5, 1.0)])  # (3, 1, 4, 4)
    asked, landed = np.array([[0, 0], [1, 0], [2, 0]]), np.array([[0, 1], [1, 1], [2, 1]])
    provenance = {"sampler": "umap-pca", "params": {"temperature": 0.1}, "seed": 7}
    npz = np.load(io.BytesIO(to_npz(images, asked, landed, provenance)))
    np.testing.assert_array_equal(npz["images"], images)
    np.testing.assert_array_equal(npz["landed"], landed)
    assert json.loads(str(npz["provenance"])) == provenance
    with tifffile.TiffFile(io.BytesIO(to_tiff(images, asked, landed, provenance))) as tif:
        pages, meta = tif.asarray(), tif.shaped_metadata[0]
    assert pages.shape == (3, 4, 4) and pages[:, 0, 0].tolist() == [0.0, 0.5, 1.0]
    assert meta["seed"] == 7 and meta["asked"] == asked.tolist() and meta["sampler"] == "umap-pca"


def test_export_refuses_points_that_do_not_match_the_images():
    """One asked and one landed point per image, or the file would mislabel them."""
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        to_npz(np.zeros((2, 1, 4, 4)), np.zeros((3, 2)), np.zeros((2, 2)), {})
