"""Runs whose worker died: flow-run heartbeats plus an automation that marks them CRASHED.

A worker stopped with SIGINT or SIGTERM ends its runs itself (see `morphospace worker`). One
that dies outright (SIGKILL, OOM killer, a node lost) can tell nobody: its runs would stay
RUNNING forever. Every run a worker starts sends a heartbeat event every
``HEARTBEAT_SECONDS`` (Prefect's minimum, 30 s); the automation made here marks a run CRASHED
when ``GRACE_SECONDS`` pass without one and without a terminal state (Prefect's "detect zombie
flows" recipe). Workers call :func:`ensure_zombie_automation` at start; it is idempotent.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30  # Prefect refuses less (PREFECT_FLOWS_HEARTBEAT_FREQUENCY >= 30)
GRACE_SECONDS = 90  # three heartbeats, as Prefect's docs advise: late ones must not crash a healthy run
AUTOMATION_NAME = "morphospace: crash runs without heartbeats"


def zombie_automation(grace_seconds: float = GRACE_SECONDS):
    """The automation, unsaved: after each heartbeat of a run, expect another event of it in time."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    if grace_seconds <= HEARTBEAT_SECONDS:
        raise ValueError(f"grace_seconds={grace_seconds} must exceed the heartbeat period ({HEARTBEAT_SECONDS} s)")
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=f"Marks a flow run CRASHED when its worker stops sending heartbeats for {grace_seconds:g} s.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.*"},  # another heartbeat or any state change (end included)
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=grace_seconds),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=f"No heartbeat from the worker for {grace_seconds:g} s: the worker died (killed, "
                    "out of memory or its machine lost). Submit the run again.",
        )],
    )


def ensure_zombie_automation(grace_seconds: float = GRACE_SECONDS) -> UUID:
    """Make sure the server has exactly one such automation; return its id.

    Idempotent, and safe when several workers start at once: each creates one only if none
    with the same settings exists, then every caller keeps the same one (the smallest id) and
    deletes the others, so concurrent starts converge on one automation.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    wanted = zombie_automation(grace_seconds)
    with get_client(sync_client=True) as client:
        if not any(_signature(a) == _signature(wanted) for a in client.read_automations_by_name(AUTOMATION_NAME)):
            log.info("creating automation %r", AUTOMATION_NAME)
            client.create_automation(wanted)
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        same = sorted((a for a in existing if _signature(a) == _signature(wanted)), key=lambda a: str(a.id))
        keep = same[0].id if same else client.create_automation(wanted)
        for other in existing:
            if other.id != keep:
                try:
                    client.delete_automation(other.id)
                except (ObjectNotFound, PrefectHTTPStatusError):  # another worker deleted it first
                    pass
    return keep


def _signature(automation) -> dict:
    """What makes two automations do the same thing (ids and descriptions aside)."""
    return {
        "enabled": automation.enabled,
        "trigger": automation.trigger.model_dump(mode="json", exclude={"id"}),
        "actions": [action.model_dump(mode="json") for action in automation.actions],
    }
