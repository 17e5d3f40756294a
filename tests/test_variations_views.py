"""The variations views read as a scientist reads them: units on the descriptor box plots,
dendrogram leaves that name their reference, an intensity scale beside every image."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components import variations_views as views
from core.variations.descriptors import DESCRIPTORS, descriptor_unit, describe
from core.variations.clusters import cut
from tests.test_descriptors import _variation, disc
from tests.test_inspect_panel import scales
from tests.test_variations_panel import write_variations


def test_every_descriptor_column_has_a_unit():
    """Each column describe() writes (channel IQR once per channel) has a unit, one place for all."""
    images = np.stack([disc(32, 12 + 4 * k, 4).astype(np.float32)[None] for k in range(4)])
    columns = describe(_variation(images, 6), list(DESCRIPTORS))
    assert {c: descriptor_unit(c) for c in columns if descriptor_unit(c) is None} == {}
    assert descriptor_unit("entropy_diff_mean") == "bits" and descriptor_unit("channel_iqr_var_2") == "(normalised intensity)²"
    assert descriptor_unit("no_such_column") is None


def test_calibration_panels_state_each_metrics_unit():
    """The γ sweep's panels: one per metric, its y axis in that metric's unit."""
    sweep = pd.DataFrame([{"gamma": g, "metric": m, "median": g, "q10": g / 2, "q90": 2 * g}
                          for m in ("entropy_diff", "iou") for g in (0.5, 1.0)])
    fig = views.calibration_figure(sweep, None, None)
    assert [a.text for a in fig.layout.annotations] == ["entropy_diff", "iou"]
    assert [fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text] == ["bits", "overlap 0–1"]


def variations(n: int = 6, frames: bool = True) -> views.Variations:
    """n references (the first n - 2 from map frames 10, 20, …, the last 2 prior draws when
    ``frames``) clustered on three descriptors, as load_variations returns them."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"kept_fraction": rng.random(n), "iou_mean": rng.random(n),
                          "entropy_diff_mean": rng.random(n), "reference": range(n), "n_kept": 3,
                          "image_start": 3 * np.arange(n)})
    X = table[["kept_fraction", "iou_mean", "entropy_diff_mean"]].to_numpy()
    from core.variations.clusters import hac

    _, linkage = hac((X - X.mean(0)) / X.std(0), n_clusters=2)
    indices = [10 * (i + 1) for i in range(n - 2)] if frames else []
    meta = {"descriptor_columns": ["kept_fraction", "iou_mean", "entropy_diff_mean"],
            "params": {"references": {"indices": indices}}}
    return views.Variations("var-1", meta, table, pd.DataFrame(), linkage, X[:, :2])


def test_box_plots_state_each_descriptors_unit():
    """One panel per descriptor, titled by its name, its y axis by its unit."""
    v = variations()
    fig = views.boxes_figure(v, cut(v.linkage, 2))
    assert [a.text for a in fig.layout.annotations] == v.columns
    assert [fig.layout[f"yaxis{'' if k == 0 else k + 1}"].title.text for k in range(3)] == [
        "fraction of drawn", "overlap 0–1", "bits"]


def test_dendrogram_leaves_name_their_reference():
    """Each leaf, left to right, is labelled with its reference and the map frame it came from
    (or "prior"), in the order the tree draws them; the hover says the same."""
    v = variations()
    labels = cut(v.linkage, 2)
    fig = views.dendrogram_figure(v, labels, 2)
    leaves = fig.data[1]
    ticks = fig.layout.xaxis
    assert ticks.visible is not False and list(ticks.tickvals) == list(leaves.x)
    assert list(ticks.ticktext) == list(leaves.customdata)
    assert sorted(ticks.ticktext) == sorted(["#0 · f10", "#1 · f20", "#2 · f30", "#3 · f40", "#4 · prior",
                                              "#5 · prior"])
    assert "reference" in ticks.title.text and fig.layout.yaxis.title.text


def test_many_leaves_are_labelled_every_kth():
    """120 references: at most 40 leaf labels, evenly spaced."""
    v = variations(120, frames=False)
    fig = views.dendrogram_figure(v, cut(v.linkage, 3), 3)
    assert len(fig.layout.xaxis.ticktext) == 40 and len(fig.data[1].x) == 120


def test_reference_images_and_samples_state_their_intensity_scale(store):
    """Reference and trace images, and the kept samples' gallery, each say black = 0, white = 1."""
    node = write_variations(store, [3, 0, 5, 2, 1])
    images, gallery, _ = views.reference_view(store, node, 2)
    assert [(c.split()[-1], lo, hi) for c, lo, hi in scales(images)] == [
        ("ms-var-ref-scale", 0.0, 1.0), ("ms-var-trace-scale", 0.0, 1.0)]
    assert [(lo, hi) for _, lo, hi in scales(gallery)] == [(0.0, 1.0)]
