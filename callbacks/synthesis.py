"""Map → the synthesis panel: a click's map coordinates become MAP_POINT and a path drawn on the
map becomes DRAWN_PATH, forwarded in the browser (no server round trip for zooms or pans).

A click on a point gives that point's coordinates; a click on empty space reaches Dash only in the
synthesis panel's click mode, where ``assets/synthesis.js`` sets the layout's ``clickanywhere``
and clickData carries the pointer's map coordinates as ``xvals``/``yvals`` (no points).
"""

from __future__ import annotations

from dash import ALL, Dash, Input, Output

from components.ids import DRAWN_PATH, MAP_POINT
from components.map_panel import MapAIO

# clickData → {x, y} of its first point, or of the pointer on empty space (clickanywhere's xvals and
# yvals); the panel ignores clicks on a 3-D map.
FORWARD_POINT = """function(values) {
    const t = dash_clientside.callback_context.triggered;
    const v = t && t.length ? t[0].value : null;
    const p = v && v.points && v.points[0];
    if (p && typeof p.x === "number" && typeof p.y === "number") {
        return {x: p.x, y: p.y};
    }
    const x = v && v.xvals && v.xvals[0], y = v && v.yvals && v.yvals[0];
    return typeof x === "number" && typeof y === "number" ? {x: x, y: y} : dash_clientside.no_update;
}"""

# relayoutData → {path} of the newest drawn path: a new shape comes as the whole "shapes" list, an
# edited one as "shapes[i].path"; zooms, pans and the cleared list change nothing.
FORWARD_PATH = """function(values) {
    const t = dash_clientside.callback_context.triggered;
    const v = t && t.length ? t[0].value : null;
    if (!v) { return dash_clientside.no_update; }
    if (Array.isArray(v.shapes)) {
        const last = v.shapes[v.shapes.length - 1];
        return last && last.path ? {path: last.path} : dash_clientside.no_update;
    }
    const edited = Object.keys(v).find(k => /^shapes\\[\\d+\\]\\.path$/.test(k));
    return edited ? {path: v[edited]} : dash_clientside.no_update;
}"""


def register(app: Dash) -> None:
    app.clientside_callback(FORWARD_POINT, Output(MAP_POINT, "data", allow_duplicate=True),
                            Input(MapAIO.ids.graph(ALL), "clickData"), prevent_initial_call=True)
    app.clientside_callback(FORWARD_PATH, Output(DRAWN_PATH, "data", allow_duplicate=True),
                            Input(MapAIO.ids.graph(ALL), "relayoutData"), prevent_initial_call=True)
