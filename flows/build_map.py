"""Flow: files (or a Cahn–Hilliard simulation) → dataset → VAE → latents → map → clusters, as
one run of five subflows."""

from __future__ import annotations

from prefect import flow

from flows.cluster import cluster_flow
from flows.encode import encode_flow
from flows.ingest import ingest_flow
from flows.params import BuildMapParams, ClusterParams, EncodeParams, ProjectParams, TrainParams
from flows.project import project_flow
from flows.simulate_ch import simulate_ch_flow
from flows.store import get_store
from flows.train import train_vae_flow


@flow(name="build-map")
def build_map_flow(params: BuildMapParams) -> dict[str, str]:
    """Returns the ids of every result; all of them carry ``tag`` when one is given."""
    ids = {"datasets": simulate_ch_flow(params.simulate) if params.simulate else ingest_flow(params.ingest)}
    ids["models"] = train_vae_flow(
        TrainParams(dataset_id=ids["datasets"], **params.train.model_dump())
    )
    ids["latents"] = encode_flow(EncodeParams(dataset_id=ids["datasets"], model_id=ids["models"]))
    ids["projections"] = project_flow(
        ProjectParams(latents_id=ids["latents"], **params.project.model_dump())
    )
    ids["clusterings"] = cluster_flow(
        ClusterParams(projection_id=ids["projections"], **params.cluster.model_dump())
    )
    if params.tag:
        store = get_store()
        for kind, id in ids.items():
            store.update_metadata(kind, id, tag=params.tag)
    return ids
