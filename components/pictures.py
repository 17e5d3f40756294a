"""Small views several panels show: a hint line, a captioned frame thumbnail."""

from __future__ import annotations

import numpy as np
from dash import html

from core.maps.selection import to_png_data_uri

THUMB_PX = 96  # PNGs are shrunk to at most this (assets/style.css sizes .ms-thumb)
THUMB_STYLE = {"imageRendering": "pixelated", "objectFit": "contain", "background": "#000"}


def hint(text: str) -> html.Div:
    """A quiet line saying what to do before a view has something to show."""
    return html.Div(text, className="text-muted small fst-italic my-2")


def thumbnail(image: np.ndarray, caption: str, *, title: str | None = None) -> html.Figure:
    return html.Figure([
        html.Img(src=to_png_data_uri(image, max_size=THUMB_PX), style=THUMB_STYLE, title=title or caption,
                 className="ms-thumb"),
        html.Figcaption(caption, className="small text-muted text-center", style={"fontSize": "0.7rem"}),
    ], className="m-0")
