"""The GAN flows' pure pieces: which real frames are consecutive, and the calibrate form."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_consecutive_frames_follow_one_patch_position():
    """Patched frames interleave positions: the series is every 4th row; unpatched, every row."""
    from flows.calibrate import consecutive_frames

    patched = pd.DataFrame({"index": np.arange(12), "patch": np.tile(np.arange(4), 3),
                            "patch_y": np.tile([0, 0, 8, 8], 3), "patch_x": np.tile([0, 8, 0, 8], 3)})
    np.testing.assert_array_equal(consecutive_frames(patched, 10), [0, 4, 8])
    np.testing.assert_array_equal(consecutive_frames(patched, 2), [0, 4])
    plain = pd.DataFrame({"index": np.arange(5), "patch": -1})
    np.testing.assert_array_equal(consecutive_frames(plain, 10), np.arange(5))


def test_calibrate_form_builds_a_sorted_sweep_or_the_default():
    """γ text becomes a sorted, de-duplicated list; empty text means 0.25 … 2."""
    from components.job_forms import build_params

    values = {"model_id": "m-1", "references": 8, "n_per_reference": 4}
    params = build_params("calibrate", {**values, "gammas": "1, 0.5; 1 2"})
    assert params.gammas == [0.5, 1.0, 2.0] and params.references.n_prior == 8
    assert build_params("calibrate", {**values, "gammas": " "}).gammas == [0.25 * k for k in range(1, 9)]


def test_calibrate_form_names_the_bad_value():
    """A γ that is not a number, and a reference count of 0, are refused with their values."""
    from components.job_forms import submit_job

    done = submit_job("calibrate", {"model_id": "m-1", "references": 0, "gammas": "0.5, x",
                                    "n_per_reference": 4}, submit=lambda *_: "never")
    text = [str(p) for p in done.problems]
    assert done.record is None and len(text) == 2
    assert text[0].startswith("References: give either frame indices") and text[0].endswith("(you entered 0)")
    assert text[1] == "γ values [gammas] must be a number (you entered 'x')"
