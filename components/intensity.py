"""The intensity scale of pictures drawn as grey PNGs: which value is black and which is white.

Images reach the page as PNG data URIs (``core.maps.selection.to_png_data_uri``), which carry no
colour bar of their own, so every panel that shows one puts this strip under it. The values it
states are the ``vmin``/``vmax`` the PNG was drawn with; ``data-vmin``/``data-vmax`` carry them
for tests and the browser.
"""

from __future__ import annotations

from dash import html

NORMALISED = "normalised intensity"  # datasets hold each frame scaled to [0, 1] (core.data.ingest)
GRADIENT = {"background": "linear-gradient(to right, #000, #fff)", "height": "0.55rem", "flex": "1",
            "minWidth": "3rem", "border": "1px solid #adb5bd"}


def intensity_scale(low: float, high: float, what: str = NORMALISED, *, class_name: str = "") -> html.Div:
    """A black-to-white strip labelled with the values at its ends and what they measure."""
    strip = html.Div([
        html.Span(_value(low), className="ms-intensity-low"),
        html.Div(style=GRADIENT),
        html.Span(_value(high), className="ms-intensity-high"),
    ], className="d-flex align-items-center gap-1", style={"flex": "1 1 7rem"})
    # Label and strip wrap as two units under a narrow picture, never the strip's parts apart.
    return html.Div([html.Span(what, className="text-nowrap"), strip],
                    title=f"{what}: black = {_value(low)}, white = {_value(high)}",
                    className=f"d-flex flex-wrap align-items-center text-muted ms-intensity "
                              f"{class_name}".strip(),
                    style={"fontSize": "0.7rem", "columnGap": "0.25rem", "maxWidth": "22rem"},
                    **{"data-vmin": f"{low:g}", "data-vmax": f"{high:g}"})


def _value(value: float) -> str:
    return f"{value:.3g}"
