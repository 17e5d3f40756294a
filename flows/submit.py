"""Submit flow runs and follow them: what the CLI and the web app call.

Results are found in Tiled by the ``flow_run_id`` every stored result carries, so a caller
needs no shared result storage with the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.deployments import run_deployment
from prefect.states import Cancelling
from pydantic import BaseModel

from flows.names import FLOW_NAMES, deployment_name
from flows.progress import progress_key

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


class SubmitError(RuntimeError):
    """The Prefect server refused or could not be reached; the message says what to do."""


class RunFailed(RuntimeError):
    """A flow run ended in a state other than COMPLETED."""


@dataclass(frozen=True)
class RunStatus:
    id: str
    name: str
    flow_name: str
    state: str  # SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLING, CANCELLED, CRASHED
    message: str
    progress: float | None  # percent, from the run tree's progress artifact
    description: str
    elapsed: float

    @property
    def done(self) -> bool:
        return self.state in FINAL


def submit(flow_name: str, params: BaseModel) -> str:
    """Start a run of the flow's deployment and return its id at once."""
    try:
        run = run_deployment(
            deployment_name(flow_name), parameters={"params": params.model_dump(mode="json")}, timeout=0
        )
    except Exception as exc:
        raise SubmitError(
            f"could not submit {flow_name!r} to Prefect ({type(exc).__name__}: {exc}). Is the "
            "Prefect server running, PREFECT_API_URL set and, for a protected server, "
            "PREFECT_API_AUTH_STRING (as `morphospace demo` does; a second shell: pass its --data-dir), "
            "and is a worker serving the deployments (`morphospace worker`)?"
        ) from exc
    return str(run.id)


def status(flow_run_id: str) -> RunStatus:
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[progress_key(flow_run_id)])),
            sort=ArtifactSort.UPDATED_DESC,
            limit=1,
        )
        flow = client.read_flow(run.flow_id)
    state = run.state
    artifact = artifacts[0] if artifacts else None
    return RunStatus(
        id=flow_run_id,
        name=run.name,
        flow_name=flow.name,
        state=state.type.value if state else "UNKNOWN",
        message=(state.message or "") if state else "",
        progress=float(artifact.data) if artifact else None,
        description=(artifact.description or "") if artifact else "",
        elapsed=run.estimated_run_time.total_seconds(),
    )


def wait(
    flow_run_id: str,
    *,
    on_update: Callable[[RunStatus], None] | None = None,
    poll: float = 1.0,
    timeout: float | None = None,
) -> RunStatus:
    """Poll until the run ends; raise RunFailed with the run's own message unless it completed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = status(flow_run_id)
        if on_update:
            on_update(current)
        if current.done:
            break
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"flow run {current.name} still {current.state} after {timeout} s")
        time.sleep(poll)
    if current.state != "COMPLETED":
        raise RunFailed(f"{current.flow_name} run {current.name} {current.state.lower()}: {current.message}")
    return current


def cancel(flow_run_id: str) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(flow_run_id), Cancelling(), force=True)


def deployments_registered() -> bool:
    """True once a worker has registered every flow's deployment with the server."""
    try:
        with get_client(sync_client=True) as client:
            for name in FLOW_NAMES:
                client.read_deployment_by_name(deployment_name(name))
    except Exception:
        return False
    return True
