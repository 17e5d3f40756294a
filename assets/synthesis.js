/* Synthesis on the map, in the browser: clicks on empty space, the path tool and the generated marks.
 *
 * Plotly emits no click on empty space unless the layout asks for it: in "click" mode the map's
 * layout gets clickanywhere (plotly.js ≥ 3.1), so a click anywhere in the plot area is a
 * plotly_click whose xvals/yvals are the pointer's map coordinates (dcc.Graph passes them on in
 * clickData; callbacks/synthesis.py forwards them). A click on a frame still carries that frame,
 * and hover is untouched: the map's hover cards work in every mode. (An invisible heatmap over
 * the view did this before; it took every hover, since a heatmap cell is always under the pointer.)
 * In "path" mode the map's drag draws an open path (Plotly's drawopenpath); the drawn SVG path
 * reaches Dash in relayoutData.
 *
 * Generated latents, projected back with the map's stored projection, are drawn as open diamonds
 * with a line from the asked point (a cross) to where each landed; a path is drawn as its
 * resampled points joined. Every trace added here has meta "synth-…" and no customdata.
 *
 * A server-side redraw of the map (new colouring, a highlighted selection) replaces the figure's
 * traces and layout; marks and the click mode are put back on plotly_afterplot, as assets/live.js
 * does for live points. The Dash side (components/synthesis_panel.py) calls
 * window.morphoSynth.show(mode, marks).
 */
(function () {
    "use strict";
    const MARK = "#d62728";
    const state = {mode: "inspect", marks: null, drawn: null};

    function graph() { return document.querySelector(".ms-map .js-plotly-plot"); }

    function indices(gd, prefix) {
        return (gd.data || []).map((t, i) => String(t.meta || "").startsWith(prefix) ? i : -1).filter(i => i >= 0);
    }

    function twoD(gd) { return gd._fullLayout && gd._fullLayout.xaxis && !gd._fullLayout.scene; }

    function markTraces(marks) {
        const asked = marks.asked || [], landed = marks.landed || [], pairs = marks.pairs || [];
        const line = {x: [], y: []};
        landed.forEach(([x, y], k) => {
            const [ax, ay] = asked[pairs[k]];
            line.x.push(ax, x, null); line.y.push(ay, y, null);
        });
        const traces = [
            {type: "scatter", mode: "lines", meta: "synth-lines", name: "asked → landed", x: line.x, y: line.y,
             line: {color: MARK, width: 1, dash: "dot"}, hoverinfo: "skip"},
            {type: "scatter", mode: marks.path ? "lines+markers" : "markers", meta: "synth-asked",
             name: "asked", x: asked.map(p => p[0]), y: asked.map(p => p[1]),
             marker: {symbol: "cross-thin-open", size: 14, color: "#111", line: {width: 2, color: "#111"}},
             line: {color: "#111", width: 2}, text: marks.asked_text || [],
             hovertemplate: "%{text}<extra></extra>"},
            {type: "scatter", mode: "markers", meta: "synth-landed", name: "generated, projected back",
             x: landed.map(p => p[0]), y: landed.map(p => p[1]),
             marker: {symbol: "diamond-open", size: 11, color: MARK, line: {width: 2, color: MARK}},
             text: marks.landed_text || [], hovertemplate: "%{text}<extra></extra>"},
        ];
        return traces;
    }

    let busy = false;
    /* Bring the graph to the state held here: click mode, marks, drag mode. Idempotent. */
    function ensure() {
        const gd = graph();
        if (busy || !gd || !gd.data || !window.Plotly || !twoD(gd)) { return; }
        if (!gd._synthHooked && gd.on) {
            gd.on("plotly_afterplot", ensure);
            gd._synthHooked = true;
        }
        busy = true;
        try {
            const marksAt = indices(gd, "synth-");
            const wantMarks = state.mode !== "inspect" && state.marks;
            const marksStale = marksAt.length && (!wantMarks || state.drawn !== state.marks);
            if (marksStale) { window.Plotly.deleteTraces(gd, marksAt); }
            if (wantMarks && (marksStale || !marksAt.length)) {
                window.Plotly.addTraces(gd, markTraces(state.marks));
                state.drawn = state.marks;
            }
            const layout = {};
            const anywhere = state.mode === "click";
            if (Boolean(gd._fullLayout.clickanywhere) !== anywhere) { layout.clickanywhere = anywhere; }
            const drag = gd._fullLayout.dragmode;
            if (state.mode === "path" && drag !== "drawopenpath") {
                Object.assign(layout, {dragmode: "drawopenpath", newshape: {line: {color: "#111", width: 2}}});
            } else if (state.mode !== "path" && drag === "drawopenpath") {
                Object.assign(layout, {dragmode: "lasso", shapes: []});
            }
            if (Object.keys(layout).length) { window.Plotly.relayout(gd, layout); }
        } finally {
            busy = false;
        }
    }

    window.morphoSynth = {
        /* mode: "inspect" | "click" | "path"; marks: {asked, landed, pairs, asked_text, landed_text, path} or null. */
        show(mode, marks) {
            const newPath = marks && marks.path && marks !== state.marks;
            state.mode = mode || "inspect";
            state.marks = marks || null;
            const gd = graph();
            // The drawn outline gives way to the resampled path the images were made along.
            if (newPath && gd && gd.layout && (gd.layout.shapes || []).length && window.Plotly) {
                window.Plotly.relayout(gd, {shapes: []});
            }
            ensure();
            return state.mode;
        },
    };
})();
