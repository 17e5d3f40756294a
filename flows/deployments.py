"""The project's flows as deployments, served by a worker process (`morphospace worker`)."""

from __future__ import annotations

import logging

from prefect import serve

from flows.build_map import build_map_flow
from flows.cluster import cluster_flow
from flows.encode import encode_flow
from flows.ingest import ingest_flow
from flows.project import project_flow
from flows.names import DEPLOYMENT
from flows.train import train_vae_flow
from flows.variations import sample_variations_flow

log = logging.getLogger(__name__)

FLOWS = {f.name: f for f in (ingest_flow, train_vae_flow, encode_flow, project_flow, cluster_flow, build_map_flow,
                             sample_variations_flow)}


def serve_flows(*, limit: int = 2) -> None:
    """Serve every flow until interrupted; at most ``limit`` runs at once on this worker."""
    deployments = [f.to_deployment(name=DEPLOYMENT) for f in FLOWS.values()]
    serve(*deployments, limit=limit, print_starting_message=False)
