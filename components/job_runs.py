"""Following the runs the jobs panel submitted: their state, progress, elapsed time and result.

Plain functions of what ``flows.submit.status`` returns, so they are tested without Prefect.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

from components.job_forms import JOBS
from components.words import describe
from components.records import MapRef, RunRecord
from core.data.reader import ResultStore

log = logging.getLogger(__name__)

RESULT_LOOKS = 10  # polls after COMPLETED spent looking for the run's result before giving up
FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")  # as flows.submit.FINAL, without importing Prefect
STATE_COLOURS = {
    "SCHEDULED": "secondary", "PENDING": "secondary", "RUNNING": "primary", "COMPLETED": "success",
    "FAILED": "danger", "CRASHED": "danger", "CANCELLING": "warning", "CANCELLED": "dark",
    "PAUSED": "info", "UNKNOWN": "light",
}


def format_elapsed(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def status_row(status: Any) -> dict:
    """A RunStatus (or anything with its fields) as a JSON-able row for the table."""
    state = status.state
    done = state in FINAL
    progress = 100.0 if state == "COMPLETED" else status.progress
    return {
        "state": state,
        "name": status.name,
        "colour": STATE_COLOURS.get(state, "light"),
        "progress": None if progress is None else float(progress),
        "description": status.description,
        "elapsed": format_elapsed(status.elapsed),
        "error": status.message if state in ("FAILED", "CRASHED") else "",
        "note": status.message if state in ("CANCELLED", "CANCELLING") else "",
        "done": done,
        "cancellable": not done and state != "CANCELLING",
    }


def unfinished(records: list[RunRecord], rows: Mapping[str, dict]) -> bool:
    return any(not rows.get(r["id"], {}).get("done") for r in records)


def refresh(
    records: list[RunRecord],
    rows: Mapping[str, dict],
    *,
    read_status: Callable[[str], Any],
    find_result: Callable[[str, str], str | None],
) -> tuple[dict[str, dict], int, str]:
    """Poll the runs not yet finished.

    Returns the rows by run id, how many runs completed since ``rows``, and a problem to show
    ('' when Prefect answered). A completed row gets ``result``: the id of what it stored.
    """
    rows = dict(rows)
    completed, problem = 0, ""
    for record in records:
        run_id = record["id"]
        if rows.get(run_id, {}).get("done"):
            continue
        try:
            row = status_row(read_status(run_id))
        except Exception as exc:
            problem = f"Cannot read run states from Prefect ({type(exc).__name__}: {exc})."
            break
        if row["state"] == "COMPLETED":
            try:
                row["result"] = find_result(record.get("kind") or JOBS[record["job"]].result_kind, run_id)
            except Exception as exc:
                log.warning("could not find the result of run %s: %s", run_id, exc)
            looks = rows.get(run_id, {}).get("result_looks", 0) + 1
            if not row.get("result") and looks < RESULT_LOOKS:  # not listed yet: look again next poll
                row.update(done=False, result_looks=looks, note="looking for its result in Tiled…")
            else:
                completed += 1
        rows[run_id] = row
    return rows, completed, problem


def find_result(store: ResultStore, kind: str, run_id: str) -> str | None:
    """The id of the result a run stored (every result records its flow_run_id)."""
    made = [item["id"] for item in store.list(kind) if item.get("flow_run_id") == run_id]
    return made[0] if made else None


# The models a job form takes (encode, calibrate, GAN map): image generators. Synthesis samplers
# and XPCS regressors are stored as models too, and have panels of their own.
GENERATOR_FAMILIES = ("vae", "gan")


def result_options(kind: str, items: list[dict]) -> list[dict]:
    """Dropdown options for complete results of a kind, newest first."""
    options = []
    for item in items:
        if not item.get("complete"):
            continue
        if kind == "models" and item.get("family", "vae") not in GENERATOR_FAMILIES:
            continue
        if kind == "latents":
            label = f"{item.get('n', '?')} × d={item.get('latent_dim', '?')} from {item.get('model_id')} · {item['id']}"
        else:
            label = describe(kind, item)
        options.append({"label": label, "value": item["id"]})
    return options


MAP_IDS = {"datasets": "dataset_id", "models": "model_id", "latents": "latents_id", "projections": "projection_id"}


def chosen_results(kinds: list[str], options: list[list[dict]], chosen: list[str | None],
                   current: MapRef | None, *, follow_map: bool) -> list[str | None]:
    """Each result field's value: the map shown's own dataset, model, latents or projection when
    the map changed (``follow_map``) or the field holds nothing offered; else the user's choice.
    The newest result only when the map shown has none of that kind."""
    values = []
    for kind, opts, value in zip(kinds, options, chosen):
        offered = [o["value"] for o in opts]
        shown = (current or {}).get(MAP_IDS.get(kind, ""))
        if value in offered and not (follow_map and shown in offered):
            values.append(value)
        else:
            values.append(shown if shown in offered else (offered or [None])[0])
    return values
