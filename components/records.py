"""The values the page's stores hold (``components.ids``), as typed records.

Dash keeps them as JSON in the browser, so they are ``TypedDict``s: plain dicts on the wire,
checked shapes in our signatures.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict


class MapRef(TypedDict):
    """CURRENT: the map shown, by the ids of the results it is made of."""

    clustering_id: str | None  # None: a projection not clustered yet
    projection_id: str
    latents_id: str
    dataset_id: str
    model_id: str
    n_components: int


class LiveRows(TypedDict):
    """Live points of one session in a selection: rows of its stored table."""

    session: str
    rows: list[int]


class Selection(TypedDict):
    """SELECTION: frames of the map selected, and how."""

    indices: list[int]
    how: Literal["lasso", "box", "click", "neighbours"]
    live: NotRequired[LiveRows]


class Clicked(TypedDict):
    """CLICKED: the frame last clicked on the map."""

    index: int


class MapPoint(TypedDict):
    """MAP_POINT: a click on a 2-D map, in map coordinates (a point's, or the pointer's on empty space)."""

    x: float
    y: float


class DrawnPath(TypedDict):
    """DRAWN_PATH: the last path drawn on the map, as Plotly's SVG path in map coordinates."""

    path: str


class RunRecord(TypedDict):
    """A submitted run a panel follows (SUBMITTED, and the jobs panel's table)."""

    id: str  # the Prefect flow run id
    job: str  # the form it came from ("train", "sample-variations", ...)
    flow: str
    kind: str  # the kind of result it stores (core.data.store.KINDS)
    label: str  # what was asked, in words
    submitted: str  # HH:MM:SS


class LiveShown(TypedDict):
    """The live points the page shows: the first ``upto`` of ``session`` in arrival order."""

    session: str
    upto: int


def selected_indices(selection: Selection | None) -> list[int]:
    """Frames of the map in the selection (none for no selection)."""
    return list((selection or {}).get("indices") or [])


def selected_live(selection: Selection | None) -> LiveRows | dict:
    """``{"session", "rows"}`` of the live points in the selection, or ``{}``."""
    return (selection or {}).get("live") or {}
