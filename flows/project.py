"""Flow: latents → a 2-D/3-D map (PCA or UMAP), with the fitted projection stored for reuse."""

from __future__ import annotations

from prefect import flow, get_run_logger

from core.maps.projection import Projector
from flows.params import ProjectParams
from flows.progress import FlowProgress
from flows.store import read_array, read_metadata, write_result

PROJECTOR_PREFIX = "projector_"


@flow(name="project")
def project_flow(params: ProjectParams) -> str:
    log = get_run_logger()
    progress = FlowProgress("project")
    latents = read_metadata("latents", params.latents_id)
    mu = read_array("latents", params.latents_id, "mu")  # (N, d)
    projector = Projector(
        params.method, params.n_components, n_neighbors=params.n_neighbors,
        min_dist=params.min_dist, metric=params.metric, random_state=params.random_state,
        fit_sample=params.fit_sample,
    )
    embedding = projector.fit_transform(mu, progress=progress.span(0.05, 0.9))  # (N, n_components)
    if projector.sampled_:
        log.info("fitted on a sample of %d of %d points; transformed the rest", projector.n_fit_, len(mu))
    progress(0.9, "storing the map", force=True)
    arrays, fitted = projector.to_arrays()
    projection_id = write_result(
        "projections",
        {"embedding": embedding, **{PROJECTOR_PREFIX + k: v for k, v in arrays.items()}},
        {
            "latents_id": params.latents_id,
            "dataset_id": latents["dataset_id"],
            "model_id": latents["model_id"],
            "params": params.model_dump(),
            "projector": fitted,
            "sampled": bool(projector.sampled_),
            "n_fit": int(projector.n_fit_),
            "n": int(len(mu)),
        },
    )
    progress(1.0, f"stored {projection_id}", force=True)
    return projection_id


def load_projector(store, projection_id: str) -> Projector:
    """The fitted projection of a stored map, ready to place new latents without refitting."""
    meta = store.metadata("projections", projection_id)
    arrays = {
        name[len(PROJECTOR_PREFIX):]: store.array("projections", projection_id, name)
        for name in store.array_names("projections", projection_id)
        if name.startswith(PROJECTOR_PREFIX)
    }
    return Projector.from_arrays(arrays, meta["projector"])
