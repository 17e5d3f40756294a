"""Progress of a run tree, readable by the CLI and the web app.

Each flow reports through one Prefect progress artifact keyed by the *root* flow run, so a
caller that submitted ``build-map`` sees the progress of whichever subflow is working now.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run


def progress_key(root_flow_run_id: str) -> str:
    return f"progress-{root_flow_run_id}"


class FlowProgress:
    """Report ``fraction`` in [0, 1] with a short description; at most every ``interval`` s."""

    def __init__(self, step: str, *, interval: float = 0.5):
        self.step = step
        self.interval = interval
        self._artifact_id = None
        self._last = 0.0

    def __call__(self, fraction: float, description: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval and fraction < 1.0:
            return
        self._last = now
        percent = round(100.0 * min(max(fraction, 0.0), 1.0), 1)
        text = f"{self.step}: {description}" if description else self.step
        if self._artifact_id is None:
            self._artifact_id = create_progress_artifact(
                percent, key=progress_key(str(flow_run.root_flow_run_id)), description=text
            )
        else:
            update_progress_artifact(self._artifact_id, percent, description=text)

    def span(self, start: float, end: float) -> Callable[[float, str], None]:
        """A ``progress(fraction, text)`` for one part of the run: its 0..1 maps onto start..end."""
        return lambda fraction, text: self(start + (end - start) * fraction, text)


class CancelCheck:
    """``should_stop`` for long loops: True once the run is being cancelled (asked every ``interval`` s).

    A worker kills a cancelled run's process, but a loop that notices first stops between two
    batches and leaves its partial result marked as stopped instead of half-written.
    """

    def __init__(self, *, interval: float = 2.0):
        self.interval, self._last, self._cancelling = interval, time.monotonic(), False

    def __call__(self) -> bool:
        if self._cancelling or time.monotonic() - self._last < self.interval:
            return self._cancelling
        self._last = time.monotonic()
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.objects import StateType

        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(flow_run.id).state
        except Exception:  # the server is briefly unreachable: keep working, ask again later
            return False
        self._cancelling = state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED)
        return self._cancelling
