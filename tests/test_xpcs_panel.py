"""The XPCS panel's views (plain functions on hand-made inputs) and the XPCS job forms."""

from __future__ import annotations

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
