"""Map panel (placeholder until its owner lands it)."""

from __future__ import annotations

import uuid

from dash import html


class MapAIO(html.Div):
    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        super().__init__(html.Div("Map"), id={"component": "MapAIO", "subcomponent": "root", "aio_id": aio_id})
