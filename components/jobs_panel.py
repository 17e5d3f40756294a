"""Jobs panel (placeholder until its owner lands it)."""

from __future__ import annotations

import uuid

from dash import html


class JobsAIO(html.Div):
    def __init__(self, aio_id: str | None = None):
        aio_id = aio_id or str(uuid.uuid4())
        super().__init__(html.Div("Jobs"), id={"component": "JobsAIO", "subcomponent": "root", "aio_id": aio_id})
