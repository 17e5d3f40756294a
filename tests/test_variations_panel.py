"""The variations panel's views without a browser, on variations nodes written to a real Tiled server."""

from __future__ import annotations

import base64
import io
import uuid

import numpy as np
import pandas as pd
import pytest
import tifffile

from components.services import Services
from components import variations_panel as panel
from components import variations_views as views
from core.settings import Settings
from core.data.store import Store
from core.data.results import variations as stored
from core.data.results.calibrations import write_calibration
from core.variations.calibration import Calibration
from core.variations.clusters import cluster_variations, cut, cut_height, hac
from tests.test_inspect_panel import texts

MODEL = "m-test"
COLUMNS = ["trace_area", "anisotropy", "kept_fraction"]
EMBEDDING_ID = {"component": "VariationsAIO", "subcomponent": "embedding", "aio_id": "test"}


def write_variations(store: Store, kept: list[int], *, n: int = 5, model_id: str = MODEL) -> str:
    """A complete node written as flows/variations.py writes it (the owner's sink, then its
    clusters): reference i keeps its first kept[i] of n samples, kept image j of it is the
    constant (10 i + j) / 100; clustered from 3 references."""
    m = len(kept)
    writer = store.writer(stored.KIND, metadata={
        "name": f"{m} refs", "model_id": model_id,
        "params": {"references": {"latents_id": "lat-x", "indices": [7 * i for i in range(m)]}, "n_clusters": 2},
        "core_params": {"filters": {"entropy_max": 0.2, "iou_min": 0.5, "intensity_max": None}},
    })
    sink = stored.VariationsSink(writer)
    descriptors = {"trace_area": [0.1, 0.12, 0.5, 0.52, 0.9], "anisotropy": [1.0, 1.1, 3.0, 3.2, 6.0]}
    for i, k in enumerate(kept):
        sink.reference(i, np.zeros(2, np.float32), np.full((1, 4, 4), 0.5, np.float32))
        keep = np.arange(n) < k
        table = pd.DataFrame({"sample": np.arange(n), "magnitude": np.linspace(0.5, 2.5, n), "kept": keep})
        images = np.full((k, 1, 4, 4), 1.0) * ((10 * i + np.arange(k)) / 100)[:, None, None, None]
        sink.samples(i, np.zeros((n, 2), np.float32), keep, table, images.astype(np.float32))
        sink.descriptors(i, {"trace_area": descriptors["trace_area"][i], "anisotropy": descriptors["anisotropy"][i],
                             "kept_fraction": k / n}, np.full((1, 4, 4), 0.25, np.float32))
    table = sink.write()
    writer.update_metadata(status="completed", summary={
        "n_drawn": m * n, "n_kept": int(sum(kept)), "rejected": {"entropy_max": 3, "iou_min": 1},
        "gamma": 1.0, "latent_dim": 2, "distance_per_dim": 0.41, "expected_distance_per_dim": 0.408})
    if m >= 3:
        stored.write_clusters(writer, cluster_variations(table, columns=COLUMNS, n_clusters=2))
    return writer.finish(n_kept=int(sum(kept)))


@pytest.fixture(scope="module")
def shared(tiled_server):
    """One project for the module: a clustered node, a 2-reference one, a stopped one, another model's."""
    store = Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key,
                           project=f"t{uuid.uuid4().hex[:8]}")
    write_variations(store, [1, 1], model_id="m-other")
    ids = {"few": write_variations(store, [2, 0]), "clustered": write_variations(store, [3, 0, 5, 2, 1])}
    stopped = store.writer("variations", metadata={"model_id": MODEL, "status": "stopped"})
    stopped.update_metadata(references_done=1)  # written, never finished
    return store, ids


def flat(component) -> str:
    """The component's text with runs of spaces collapsed."""
    return " ".join(texts(component).split())


CURRENT = {"model_id": MODEL, "latents_id": "lat-x", "dataset_id": "ds-x", "projection_id": "proj-x"}


def test_cut_and_cut_height_recut_a_stored_linkage():
    """Two far groups: a cut into 2 separates them, the cut line lies between the merge heights."""
    X = np.array([[0.0], [0.1], [0.2], [10.0], [10.1]])
    labels, Z = hac(X, n_clusters=2)
    np.testing.assert_array_equal(cut(Z, 2), labels)
    assert len(set(cut(Z, 2)[:3])) == 1 and cut(Z, 2)[0] != cut(Z, 2)[3]
    assert len(set(cut(Z, 5))) == 5 and len(set(cut(Z, 1))) == 1
    heights = np.sort(Z[:, 2])
    assert heights[-2] < cut_height(Z, 2) < heights[-1]
    assert cut_height(Z, 1) > heights[-1] and 0 < cut_height(Z, 5) < heights[0]
    with pytest.raises(ValueError, match="between 1 and 5"):
        cut(Z, 6)


def test_form_caps_the_lasso_explains_problems_and_submits():
    """250 frames → 200 evenly spaced; γ = 0 is refused naming γ and its range; a good form submits."""
    values = {f.name: f.default for f in panel.FIELDS}
    lasso = {"indices": list(range(250, 0, -1))}
    params = panel.build_params({**values, "iou_min": ""}, lasso, CURRENT)
    indices = params.references.indices
    assert len(indices) == 200 and indices[0] == 1 and indices[-1] == 250 and indices == sorted(set(indices))
    assert params.filters.preset == "particles" and params.filters.iou_min is None
    assert params.filters.entropy_max == 0.2 and params.gamma == 1.0
    edited = panel.build_params({**values, "intensity_max": 0.3}, lasso, CURRENT).filters
    assert edited.preset == "custom" and (edited.entropy_max, edited.intensity_max) == (0.2, 0.3)
    assert "cap 200" in texts(panel.references_note(lasso, CURRENT))
    assert "prior" in texts(panel.references_note(None, CURRENT))
    calls = []
    refused = panel.submit_variations({**values, "gamma": 0, "n_per_reference": None}, lasso, CURRENT,
                                      lambda *a: calls.append(a))
    messages = [str(p) for p in refused.problems]
    assert messages == ["γ [gamma] must be more than 0 and at most 10 (you entered 0)",
                        "N per reference is empty: enter a whole number between 1 and 100000"]
    assert not calls and "Not submitted" in texts(panel.submitted_message(refused))
    no_prior = panel.submit_variations({**values, "n_prior": 0}, None, CURRENT, lambda *a: calls.append(a))
    assert "n_prior > 0" in str(no_prior.problems[0]) and not calls
    assert panel.submit_variations(values, lasso, None, lambda *a: calls.append(a)).error == views.NO_MAP
    done = panel.submit_variations(values, {"indices": [3, 1, 2]}, CURRENT, lambda flow, p: calls.append((flow, p)) or "run-1")
    assert done.record["id"] == "run-1" and done.record["kind"] == "variations" and "3 lassoed frames" in done.record["label"]
    assert calls[0][0] == "sample-variations" and calls[0][1].references.indices == [1, 2, 3]


def test_a_preset_fills_the_filters_and_an_edit_makes_it_custom():
    """Choosing clumps fills its thresholds; editing one shows custom; editing back shows the preset."""
    particles = {"entropy_max": 0.2, "iou_min": None, "intensity_max": None}
    assert panel.preset_form("preset", "clumps", particles) == (
        "clumps", {"entropy_max": None, "iou_min": 0.5, "intensity_max": 0.2})
    assert panel.preset_form("preset", "custom", particles) == ("custom", particles)
    assert panel.preset_form("iou_min", "particles", {**particles, "iou_min": 0.5})[0] == "custom"
    assert panel.preset_form("iou_min", "custom", {"entropy_max": "", "iou_min": 0.5, "intensity_max": "0.2"})[0] == "clumps"
    assert panel.preset_form("entropy_max", "particles", {**particles, "entropy_max": "abc"})[0] == "custom"
    assert panel.FIELDS[3].name == "preset" and panel.FIELDS[3].options == ("particles", "clumps", "custom")


def test_results_list_summary_reference_and_clusters(shared):
    """Only complete nodes of the map's model are listed; the views show counts, ordered samples, clusters."""
    store, ids = shared
    options = views.variations_options(store, CURRENT)
    assert [o["value"] for o in options] == [ids["clustered"], ids["few"]]  # newest first, no stopped, no other model
    assert views.chosen_variations(options, options[1:], ids["few"]) == ids["clustered"]  # a new result is shown
    assert views.chosen_variations(options, options, ids["few"]) == ids["few"]
    summary, references, cut_value = views.summary_view(store, ids["clustered"])
    text = flat(summary)
    assert "11 of 25 samples kept (44%) around 5 reference states" in text
    assert "|ΔH| > 0.2 bits: 3; IoU < 0.5: 1" in text and "0.41" in text and "0.408" in text
    assert "Filters: custom, keep |ΔH| ≤ 0.2 bits, IoU ≥ 0.5." in text  # named by its thresholds
    assert views.filters_line({"filter_preset": "particles", "core_params": {"filters": {
        "entropy_max": 0.2, "iou_min": None, "intensity_max": None, "area_max": None}}}) == (
        "Filters: the particles preset, keep |ΔH| ≤ 0.2 bits.")
    assert references[2]["label"] == "#2 · frame 14 · 5 kept" and cut_value == 2
    images, gallery, frames = views.reference_view(store, ids["clustered"], 2)
    captions = [figure.children[1].children for figure in gallery[1].children]
    assert captions == ["‖ε‖ 0.50", "‖ε‖ 1.00", "‖ε‖ 1.50", "‖ε‖ 2.00", "‖ε‖ 2.50"]  # by magnitude
    assert len(frames["src"]) == 6 and all(src.startswith("data:image/png;base64,") for src in frames["src"])
    assert frames["caption"][0].startswith("reference") and "frame 14" in texts(images)
    assert "passed the filters" in texts(views.reference_view(store, ids["clustered"], 1)[1])
    view = views.clusters_view(store, ids["clustered"], 2, EMBEDDING_ID)
    embedding, dendrogram, boxes = [col.children.figure for col in view.children]
    assert len(embedding.data) == 2 and sorted(np.concatenate([t.customdata for t in embedding.data])) == [0, 1, 2, 3, 4]
    linkage = store.array("variations", ids["clustered"], "linkage")
    assert dendrogram.data[-1].y == pytest.approx([cut_height(linkage, 2)] * 2)  # the cut line
    assert {a.text for a in boxes.layout.annotations} >= set(COLUMNS) and len(boxes.data) == 2 * len(COLUMNS)
    clicked = embedding.data[1].customdata[0]
    assert panel._pick_reference({"points": [{"x": 0, "customdata": clicked}]}) == clicked  # a click shows it


def test_few_references_are_not_clustered_and_exports(shared):
    """Two references: a note instead of clusters; CSV, NPZ and TIFF hold what they say."""
    store, ids = shared
    assert "clustering needs at least 3" in texts(views.clusters_view(store, ids["few"], 2, EMBEDDING_ID))
    csv = pd.read_csv(io.StringIO(views.export_file(store, ids["clustered"], "csv", 2, 3)["content"]))
    assert csv["frame"].tolist() == [0, 7, 14, 21, 28] and csv["hac_cluster"].nunique() == 3
    assert {"anisotropy", "embedding_x", "n_kept"} <= set(csv.columns)
    npz = np.load(io.BytesIO(base64.b64decode(views.export_file(store, ids["clustered"], "npz", 2, 2)["content"])))
    assert npz["kept"].shape == (5, 1, 4, 4) and npz["magnitudes"].tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]
    np.testing.assert_allclose(npz["kept"][:, 0, 0, 0], [0.2, 0.21, 0.22, 0.23, 0.24])
    tiff = tifffile.imread(io.BytesIO(base64.b64decode(views.export_file(store, ids["clustered"], "tiff", 2, 2)["content"])))
    assert tiff.shape == (7, 4, 4) and tiff[0, 0, 0] == 0.5 and tiff[1, 0, 0] == 0.25
    with pytest.raises(ValueError, match="No reference state chosen"):
        views.export_file(store, ids["few"], "npz", None, None)


def test_calibration_beside_gamma(shared):
    """No calibration: a hint to run the sweep; the newest one: bands, the real band and γ marked."""
    store, _ = shared
    view, suggested = views.calibration_view(store, CURRENT)
    assert "Calibrate γ" in texts(view) and suggested is None
    sweep = pd.DataFrame([{"gamma": g, "metric": metric, "mean": g * s, "median": g * s, "q10": g * s / 2, "q90": g * s * 2}
                          for metric, s in (("iou", -0.1), ("entropy_diff", 0.1)) for g in (0.5, 1.0, 1.5)])
    bands = pd.DataFrame({"metric": ["iou", "entropy_diff"], "mean": [0.8, 0.1], "median": [0.8, 0.1],
                          "q10": [0.7, 0.05], "q90": [0.9, 0.2], "n_pairs": [9, 9]})
    write_calibration(store, Calibration(sweep, pd.DataFrame(), bands, pd.DataFrame(), 1.0, "completed"), None,
                      {"model_id": MODEL})
    view, suggested = views.calibration_view(store, CURRENT)
    shapes = view[0].figure.layout.shapes
    assert suggested == 1.0 and "Suggested γ = 1" in texts(view)
    assert sum(s.type == "rect" for s in shapes) == 2 and any(s.type == "line" and s.x0 == 1.0 for s in shapes)
    reason = "γ = 1.5 by the method's rule: the smallest γ whose mean generated |ΔH| reaches the upper bound."
    store.put("calibrations", tables={"sweep": sweep, "bands": bands.assign(max=[0.95, 0.3])},
              metadata={"model_id": MODEL, "suggested_gamma": 1.5, "reason": reason})
    view, suggested = views.calibration_view(store, CURRENT)
    figure = view[0].figure
    assert suggested == 1.5 and f"Suggested (dotted): {reason}" in texts(view)
    assert [t.name for t in figure.data if t.name == "generated mean"] == ["generated mean"]
    assert any(s.type == "line" and s.y0 == 0.3 and s.line.color == "#dc3545" for s in figure.layout.shapes)


def test_callbacks_turn_failures_into_messages(shared):
    """A cut too large is a warning with the range; an unreachable Tiled points at the banner."""
    store, ids = shared
    services = Services.from_store(store)
    warning = panel._clusters(services, ids["clustered"], 9, EMBEDDING_ID)
    assert warning.color == "warning" and "between 1 and 5" in texts(warning)
    services = Services.from_settings(Settings(tiled_uri="http://127.0.0.1:9/api/v1"))
    view, suggested, disabled = panel._calibration(services, CURRENT, 1)
    assert "Tiled is not reachable" in texts(view) and suggested is None and disabled
    options, value, message = panel._results(services, CURRENT, 1, [], None)
    assert options == [] and value is None and "Tiled is not reachable" in texts(message)


def test_results_open_on_the_first_reference_that_kept_samples(store):
    """References 0 and 1 kept nothing: the result opens on reference 2; none kept: on the first."""
    found = write_variations(store, [0, 0, 3, 1])
    _, options, reference, _ = panel.opened_summary(store, found)
    assert reference == 2 and [o["value"] for o in options] == [0, 1, 2, 3]
    assert panel.opening_reference(store, write_variations(store, [0, 0])) == 0
