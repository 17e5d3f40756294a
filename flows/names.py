"""Names of the project's flows and their deployments, importable without the flows themselves.

The web app submits runs by name; importing the flows would import torch and every science
module into the Dash process (~5 s on the first job callback). `flows.deployments` checks that
this list and the flows it serves agree.
"""

from __future__ import annotations

DEPLOYMENT = "morphospace"
FLOW_NAMES = ("ingest", "train-vae", "encode", "project", "cluster", "build-map", "sample-variations", "train-gan",
              "calibrate-gamma", "gan-map", "simulate-xpcs",
              "train-xpcs-regressor", "simulate-cahn-hilliard", "train-flow-matching", "train-latent-diffusion",
              "evaluate-samplers")


def deployment_name(flow_name: str) -> str:
    if flow_name not in FLOW_NAMES:
        raise ValueError(f"flow {flow_name!r} is not one of {sorted(FLOW_NAMES)}")
    return f"{flow_name}/{DEPLOYMENT}"
