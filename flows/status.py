"""What the page's service banner asks Prefect: where its API is, which deployments workers polled.

The web app touches Prefect only through ``flows/``; Prefect is imported on first call, so the
page loads without it.
"""

from __future__ import annotations

from typing import Any

from core.settings import Settings
from flows.names import DEPLOYMENT


def prefect_api_url(settings: Settings) -> str | None:
    """The configured URL, else Prefect's own setting (what its client will use)."""
    if settings.prefect_api_url:
        return settings.prefect_api_url
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def served_deployments(*, timeout: float) -> list[dict[str, Any]]:
    """``{"flow", "last_polled", "status"}`` of each deployment a worker registered (as configured
    for this process, like :mod:`flows.submit`); raises what the Prefect client raises."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowFilter, FlowFilterId

    with get_client(sync_client=True, httpx_settings={"timeout": timeout}) as client:
        found = client.read_deployments(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT]))
        )
        flows = {f.id: f.name for f in client.read_flows(
            flow_filter=FlowFilter(id=FlowFilterId(any_=[d.flow_id for d in found]))
        )} if found else {}
    return [{"flow": flows.get(d.flow_id), "last_polled": d.last_polled,
             "status": getattr(d.status, "value", d.status)} for d in found]
