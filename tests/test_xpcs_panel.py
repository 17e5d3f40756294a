"""The XPCS panel's views (plain functions on hand-made inputs) and the XPCS job forms."""

from __future__ import annotations

import numpy as np
import pytest


def test_xpcs_job_forms_build_their_models():
    """Both XPCS runs are Jobs panel forms: the measured-map ids are split into the model's list,
    a bad id is refused naming the field, and the runs table says what each run does."""
    from pydantic import ValidationError

    from components.job_forms import JOBS, build_params, explain, summarize

    assert (JOBS["simulate-xpcs"].flow, JOBS["train-xpcs"].flow) == ("simulate-xpcs", "train-xpcs-regressor")
    sim = build_params("simulate-xpcs", {"n_maps": 50, "grid_per_axis": None, "n_frames": 32, "q": 1.0,
                                         "dt": 1.0, "beta": 0.2, "seed": 3, "name": ""})
    assert (sim.n_maps, sim.n_frames, sim.seed, sim.name) == (50, 32, 3, None)
    assert summarize("simulate-xpcs", sim) == "GB-model two-time maps: 50 random draws, 32 frames, q = 1 nm⁻¹"
    values = {"simulations_id": "xsim-1", "experimental_ids": "xmap-1, xmap-2", "n_members": 2, "epochs": 5,
              "adapt_epochs": 1, "side": 16, "name": ""}
    train = build_params("train-xpcs", values)
    assert (train.experimental_ids, train.n_members) == (["xmap-1", "xmap-2"], 2)
    assert summarize("train-xpcs", train) == "XPCS regressor ×2 on xsim-1, adapted to 2 measured records"
    assert build_params("train-xpcs", {**values, "experimental_ids": ""}).experimental_ids == []
    with pytest.raises(ValidationError) as err:
        build_params("train-xpcs", {**values, "experimental_ids": "xmap-1 ../etc"})
    assert "Measured maps" in str(explain("train-xpcs", err.value)[0])


def _map(n: int, tau) -> np.ndarray:
    """Noise-free two-time map 1 + β g1², g1 = exp(-|t2 - t1| / τ), τ a number or τ(age) in frames."""
    t = np.arange(n, dtype=float)
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    scale = tau((t1 + t2) / 2) if callable(tau) else tau
    return 1.0 + 0.2 * np.exp(-2 * np.abs(t2 - t1) / scale)


def _model(**extra) -> dict:
    return {"family": "xpcs", "id": "m-1", "name": "reg", "experimental_ids": ["xmap-1"],
            "config": {"param_names": ["D", "kappa", "c", "T"]},
            "units": {"D": "nm²/s", "kappa": "J/m²", "c": "", "T": "K"},
            "experimental_maps": [["xmap-1", 0], ["xmap-1", 1]],
            "experimental_predictions": {"mean": [[0.05, 0.1, 0.2, 350.0], [0.1234, 0.3, 0.4, 420.0]],
                                         "sd": [[0.01, 0.02, 0.03, 10.0], [0.0456, 0.05, 0.06, 12.0]]},
            **extra}


def test_options_list_every_measured_map_and_only_xpcs_models():
    from components.xpcs_panel import map_options, model_options, parse_key

    records = [{"id": "xmap-1", "complete": True, "n_maps": 2, "sources": ["bnl.npy", "yolk.npy"], "sides": [350, 50]},
               {"id": "xmap-2", "complete": False, "n_maps": 1, "sources": ["half.npy"], "sides": [10]}]
    options = map_options(records)
    assert [o["value"] for o in options] == ["xmap-1#0", "xmap-1#1"]
    assert options[1]["label"] == "yolk.npy, 50 × 50 frames · xmap-1"
    assert parse_key(options[1]["value"]) == ("xmap-1", 1)
    models = [_model(), {"family": "vae", "id": "m-2", "complete": True},
              {"family": "xpcs", "id": "m-3", "experimental_ids": []}]
    assert [(o["value"], o["label"]) for o in model_options(models)] == [
        ("m-1", "reg (adapted to xmap-1) · m-1"), ("m-3", "XPCS regressor (not adapted) · m-3")]


def test_prediction_rows_are_the_stored_mean_and_sd_of_that_map_with_units():
    from components.xpcs_panel import prediction_rows

    rows = prediction_rows(_model(), "xmap-1", 1)
    assert [(r.label.split()[0], r.value, r.unit) for r in rows] == [
        ("D", "0.123 ± 0.046", "nm²/s"), ("κ", "0.3 ± 0.05", "J/m²"),
        ("c", "0.4 ± 0.06", "dimensionless"), ("T", "420 ± 12", "K")]
    assert prediction_rows(_model(), "xmap-9", 0) is None  # not adapted to: nothing stored
    assert prediction_rows(_model(experimental_predictions={}), "xmap-1", 0) is None


def test_floor_rows_read_the_decay_and_the_verdict():
    """Noise-free maps: equilibrium (τ = 8 frames) scores 0, within its floor, and the fitted
    decay is the τc of g1; ageing (τ = 4 + age/2 frames) is significantly above its floor."""
    from components.xpcs_panel import floor_rows, verdict_line
    from core.xpcs.noise import noise_floor

    still = noise_floor(_map(40, 8.0), n_surrogates=20)
    rows = {r.label: (r.value, r.unit) for r in floor_rows(still)}
    assert rows["Non-equilibrium measure"] == ("0.000", "dimensionless, 0–1")
    assert rows["Decay τc"] == ("8", "frames")
    assert rows["Contrast β"][0] == "0.2"
    assert verdict_line(still) == "not distinguishable from equilibrium"
    ageing = noise_floor(_map(40, lambda age: 4 + age / 2), n_surrogates=20)
    assert ageing.measure > 0.05 and verdict_line(ageing) == "significantly non-equilibrium"


def test_embedding_figure_splits_domains_before_and_after():
    from components.xpcs_panel import DOMAIN_COLOURS, embedding_figure

    embedding = {"method": "pca", "n_simulated": 3, "n_measured": 2,
                 "before": [[0, 0], [1, 0], [0, 1], [5, 5], [6, 5]],
                 "after": [[0, 0], [1, 0], [0, 1], [0.5, 0.5], [0.6, 0.4]]}
    fig = embedding_figure(embedding)
    traces = [(t.name, len(t.x), t.marker.color, t.xaxis) for t in fig.data]
    assert traces == [("simulated", 3, DOMAIN_COLOURS["simulated"], "x"), ("measured", 2, DOMAIN_COLOURS["measured"], "x"),
                      ("simulated", 3, DOMAIN_COLOURS["simulated"], "x2"), ("measured", 2, DOMAIN_COLOURS["measured"], "x2")]
    assert list(fig.data[3].x) == [0.5, 0.6]
    assert fig.layout.xaxis.title.text == "PC 1 (no unit)"
    assert embedding_figure({}) is None


def test_show_reads_a_stored_map_and_the_models_prediction(store):
    """Through a real Tiled store: the map's heatmap, its verdict, and the model's row for it."""
    from components.xpcs_panel import show_map, show_model
    from core.data.results.xpcs_maps import write_maps

    maps_id = write_maps(store, [_map(20, 5.0), _map(30, 6.0)], ["a.npy", "b.npy"])
    model_id = store.put("models", arrays={"weights": np.zeros(1, np.float32)},
                         metadata={k: v for k, v in _model(experimental_maps=[[maps_id, 0], [maps_id, 1]]).items()
                                   if k != "id"})
    figure, measure = show_map(store, f"{maps_id}#1")
    assert np.asarray(figure.data[0].z).shape == (30, 30) and "b.npy" in figure.layout.title.text
    assert "not distinguishable from equilibrium" in str(measure)
    params, embedding = show_model(store, f"{maps_id}#1", model_id)
    assert "0.123 ± 0.046" in str(params) and "nm²/s" in str(params)
    assert embedding is None  # this model stored none
    assert "Train an XPCS regressor" in str(show_model(store, f"{maps_id}#0", None)[0])
    assert "not adapted to xmap-9" in str(show_model(store, "xmap-9#0", model_id)[0])
