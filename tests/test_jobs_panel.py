"""Jobs panel, services banner and quality panel logic, without a browser or servers."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from components.job_forms import build_params, explain, submit_job
from components.job_runs import format_elapsed, refresh, status_row
from components.quality_panel import quality_rows
from components.status_banner import Check, banner, check_prefect, check_tiled, worker_check

PROJECT = dict(latents_id="lat-1", method="umap", n_components=2, n_neighbors=15, min_dist=0.1, metric="euclidean")
INGEST = dict(source="/data/run7/*.tif", name="", size=64, patch_size=None, clip_lo=0.5, clip_hi=99.5,
              log=True, mask_nonpositive=True)


def _status(state, progress=None, message="", description="", elapsed=0.0):
    return SimpleNamespace(id="r1", name="brave-fox", flow_name="project", state=state, message=message,
                           progress=progress, description=description, elapsed=elapsed)


def test_project_form_builds_the_flow_params():
    """Form values become flows.params.ProjectParams unchanged."""
    params = build_params("project", {**PROJECT, "method": "pca", "n_components": 3})
    assert (params.latents_id, params.method, params.n_components, params.n_neighbors) == ("lat-1", "pca", 3, 15)


def test_ingest_form_builds_preprocessing():
    """Ingest splits sources per line, blank name to None, and empty clips to no clipping."""
    params = build_params("ingest", {**INGEST, "source": "/a\n\n /b ", "clip_lo": None, "clip_hi": None})
    assert params.source == ["/a", "/b"] and params.name is None
    assert params.preprocess.clip_percentiles is None and params.preprocess.log is True
    assert build_params("ingest", INGEST).preprocess.clip_percentiles == (0.5, 99.5)


@pytest.mark.parametrize("job, values, expected", [
    ("project", {**PROJECT, "n_neighbors": 1}, "Neighbours [n_neighbors] must be a whole number between 2 and 200 (you entered 1)"),
    ("project", {**PROJECT, "min_dist": 2.0}, "Min dist must be between 0 and 1 (you entered 2.0)"),
    ("train", dict(dataset_id="ds-1", latent_dim=8, beta=1.0, epochs=None, batch_size=64, lr=1e-3, name=""),
     "Epochs is empty: enter a whole number between 1 and 1000"),
    ("train", dict(dataset_id="ds-1", latent_dim=8, beta=1.0, epochs=5, batch_size=64, lr=0, name=""),
     "Learning rate [lr] must be more than 0 and at most 1 (you entered 0)"),
    ("ingest", {**INGEST, "size": 0}, "Size must be a whole number of at least 8 (you entered 0)"),
    ("ingest", {**INGEST, "size": 2.5}, "Size must be a whole number (you entered 2.5)"),
    ("ingest", {**INGEST, "clip_hi": None}, "Clip high % [clip_hi] is empty: enter both percentiles"),
    ("cluster", dict(projection_id=None, space="projection", min_cluster_size=15, min_samples=None),
     "Projection [projection_id] is empty: required"),
])
def test_invalid_values_give_field_value_and_bound(job, values, expected):
    """A ValidationError becomes one line in words: the field, what is allowed, the value given."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        build_params(job, values)
    lines = [str(p) for p in explain(job, info.value)]
    assert any(line.startswith(expected) for line in lines), lines


def test_invalid_form_submits_nothing():
    """Out-of-range input never reaches Prefect; valid input does, once, with a run record."""
    calls = []

    def fake_submit(flow, params):
        calls.append((flow, params))
        return "0b6f7a4e-0000-4000-8000-000000000001"

    refused = submit_job("project", {**PROJECT, "n_neighbors": 1}, fake_submit)
    assert refused.record is None and refused.problems and calls == []
    done = submit_job("project", PROJECT, fake_submit)
    assert calls[0][0] == "project" and done.record["id"].startswith("0b6f7a4e")
    assert done.record["label"] == "UMAP 2-D, k=15, min_dist=0.1, euclidean of lat-1"


def test_submit_error_is_shown_not_raised():
    """A Prefect that refuses the run gives a message, not an exception."""
    def down(flow, params):
        raise RuntimeError("could not submit 'project' to Prefect; start `morphospace worker`")

    result = submit_job("project", PROJECT, down)
    assert result.record is None and "morphospace worker" in result.error


def test_status_rows():
    """Rows carry state, progress, elapsed, the failure text, and whether Cancel is offered."""
    running = status_row(_status("RUNNING", 42.0, description="train: epoch 3/10", elapsed=75.2))
    assert running["progress"] == 42.0 and running["elapsed"] == "1 min 15 s"
    assert running["cancellable"] and not running["done"]
    failed = status_row(_status("FAILED", 10.0, message="Flow run encountered an exception: ValueError: bad"))
    assert failed["done"] and not failed["cancellable"] and "ValueError: bad" in failed["error"]
    assert status_row(_status("COMPLETED"))["progress"] == 100.0
    assert not status_row(_status("CANCELLING"))["cancellable"]
    assert status_row(_status("SCHEDULED"))["elapsed"] == "–"
    assert format_elapsed(3725) == "1 h 02 min"


def test_refresh_polls_unfinished_runs_and_counts_completions():
    """Finished rows are not asked about again; a completion is counted once, with its result id."""
    asked = []
    states = {"a": "COMPLETED", "b": "RUNNING"}

    def read_status(run_id):
        asked.append(run_id)
        return _status(states[run_id])

    records = [{"id": "a", "job": "project"}, {"id": "b", "job": "train"}, {"id": "c", "job": "cluster"}]
    rows = {"c": status_row(_status("FAILED"))}
    rows, completed, problem = refresh(records, rows, read_status=read_status,
                                       find_result=lambda kind, run_id: f"{kind}:{run_id}")
    assert asked == ["a", "b"] and completed == 1 and problem == ""
    assert rows["a"]["result"] == "projections:a"
    asked.clear()
    rows, completed, _ = refresh(records, rows, read_status=read_status, find_result=lambda *a: None)
    assert asked == ["b"] and completed == 0


def test_a_completed_run_whose_result_is_not_listed_yet_is_looked_up_again():
    """COMPLETED before its result is listed: polled again (not counted) until found, then counted once."""
    records = [{"id": "a", "job": "project"}]
    found = iter([None, None, "proj-1"])
    rows, counted = {}, []
    for _ in range(3):
        rows, completed, _ = refresh(records, rows, read_status=lambda run_id: _status("COMPLETED"),
                                     find_result=lambda kind, run_id: next(found))
        counted.append(completed)
    assert counted == [0, 0, 1] and rows["a"]["result"] == "proj-1" and rows["a"]["done"]


def test_refresh_reports_prefect_down():
    """A status that cannot be read keeps the old rows and says why."""
    def dead(run_id):
        raise ConnectionError("connection refused")

    rows, completed, problem = refresh([{"id": "a", "job": "project"}], {}, read_status=dead,
                                       find_result=lambda *a: None)
    assert rows == {} and completed == 0 and "connection refused" in problem


def test_checks_against_dead_urls():
    """Nothing listening: the banner names the service and what to do."""
    tiled = check_tiled("http://127.0.0.1:9/api/v1")
    prefect = check_prefect("http://127.0.0.1:9/api")
    assert not tiled.ok and "127.0.0.1:9" in tiled.detail and "MORPHOSPACE_TILED_URI" in tiled.fix
    assert not prefect.ok and "PREFECT_API_URL" in prefect.fix
    assert "MORPHOSPACE_TILED_URI" in check_tiled(None).fix
    assert "PREFECT_API_URL" in check_prefect(None).fix
    alert = str(banner([tiled, prefect, Check("Worker", False, "unknown")]))
    assert "Tiled" in alert and "Prefect server" in alert


def test_worker_check_from_deployments():
    """A worker is up when every flow has a deployment polled within the last minute."""
    now = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)
    fresh, stale = now - dt.timedelta(seconds=8), now - dt.timedelta(minutes=5)
    flows = ["ingest", "project"]
    assert worker_check([{"flow": f, "last_polled": fresh} for f in flows], flows, now=now).ok
    gone = worker_check([{"flow": f, "last_polled": stale} for f in flows], flows, now=now)
    assert not gone.ok and "300 s" in gone.detail and "morphospace worker" in gone.fix
    assert "no worker" in worker_check([], flows, now=now).detail
    assert "project" in worker_check([{"flow": "ingest", "last_polled": fresh}], flows, now=now).detail
    assert "services-ok" in str(banner([Check("Tiled", True, "x"), Check("Worker", True, "polled 2 s ago")]))


def test_quality_rows():
    """Quality metadata becomes labelled values (the loss curve: tests/test_quality_panel.py)."""
    rows = quality_rows({"quality": {"silhouette": 0.61234, "davies_bouldin": 0.8, "calinski_harabasz": 1234.5,
                                     "participation_ratio": 3.2, "active_units": 6, "latent_dim": 8,
                                     "n_clusters": 4, "noise_fraction": 0.125, "scored_on": "embedding"}})
    values = {r.label: r.value for r in rows}
    assert values["Silhouette"] == "0.612" and values["Active units"] == "6 / 8" and values["Noise"] == "12.5 %"
    assert all(r.hint for r in rows)
    assert quality_rows({})[0].value == "–"


def test_result_fields_default_to_the_map_shown():
    """The Cluster form offers the projection shown, not the newest; a user's pick stays until the map changes."""
    from components.job_runs import chosen_results

    projections = [{"value": "p-new"}, {"value": "p-shown"}]  # newest first
    current = {"projection_id": "p-shown", "latents_id": "lat-gone"}
    kinds, options = ["projections", "latents"], [projections, [{"value": "lat-1"}]]
    assert chosen_results(kinds, options, [None, None], current, follow_map=True) == ["p-shown", "lat-1"]
    assert chosen_results(kinds, options, ["p-new", "lat-1"], current, follow_map=False) == ["p-new", "lat-1"]
    assert chosen_results(kinds, options, ["p-new", "lat-1"], current, follow_map=True) == ["p-shown", "lat-1"]
    assert chosen_results(kinds, options, ["p-gone", None], None, follow_map=False) == ["p-new", "lat-1"]


def test_gan_map_form_builds_its_run():
    """The GAN map tab (the README promises it) builds GANMapParams; no real frames means prior draws only."""
    from components.job_forms import JOBS, build_params, summarize

    assert JOBS["gan-map"].flow == "gan-map"
    values = {"model_id": "m-1", "dataset_id": "", "n_samples": 500, "n_real": 20, "invert_steps": 50, "tag": ""}
    params = build_params("gan-map", values)
    assert params.dataset_id is None and params.n_samples == 500
    assert summarize("gan-map", params) == "GAN map of m-1: 500 prior draws"
    with_frames = build_params("gan-map", {**values, "dataset_id": "ds-2"})
    assert summarize("gan-map", with_frames).endswith("+ 20 frames of ds-2 inverted")


def test_model_fields_offer_generators_only():
    """Samplers and XPCS regressors are stored as models too; encode, calibrate and GAN map take
    an image generator, so their dropdowns list the VAE and the GAN only (incomplete ones neither)."""
    from components.job_runs import result_options

    items = [{"id": f"m-{family}", "family": family, "name": family, "complete": True}
             for family in ("vae", "gan", "flow_matching", "latent_diffusion", "xpcs")]
    items.append({"id": "m-half", "family": "vae", "name": "half", "complete": False})
    assert [o["value"] for o in result_options("models", items)] == ["m-vae", "m-gan"]
