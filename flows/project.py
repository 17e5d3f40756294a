"""Flow: latents → a 2-D/3-D map (PCA or UMAP), with the fitted projection stored for reuse."""

from __future__ import annotations

from prefect import flow, get_run_logger

from core.data.results import latents, projections
from core.maps.projection import Projector
from flows.params import ProjectParams
from flows.progress import FlowProgress
from flows.store import load, read_metadata, save


@flow(name="project")
def project_flow(params: ProjectParams) -> str:
    log = get_run_logger()
    progress = FlowProgress("project")
    made_from = read_metadata(latents.KIND, params.latents_id)
    mu = load(latents.read_means, params.latents_id)  # (N, d)
    projector = Projector(
        params.method, params.n_components, n_neighbors=params.n_neighbors,
        min_dist=params.min_dist, metric=params.metric, random_state=params.random_state,
        fit_sample=params.fit_sample,
    )
    embedding = projector.fit_transform(mu, progress=progress.span(0.05, 0.9))  # (N, n_components)
    if projector.sampled_:
        log.info("fitted on a sample of %d of %d points; transformed the rest", projector.n_fit_, len(mu))
    progress(0.9, "storing the map", force=True)
    projection_id = save(
        projections.write_projection, embedding, projector,
        metadata={
            "latents_id": params.latents_id,
            "dataset_id": made_from["dataset_id"],
            "model_id": made_from["model_id"],
            "params": params.model_dump(),
            "sampled": bool(projector.sampled_),
            "n_fit": int(projector.n_fit_),
            "n": int(len(mu)),
        },
    )
    progress(1.0, f"stored {projection_id}", force=True)
    return projection_id
