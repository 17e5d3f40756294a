/* Synthesis on the map, in the browser: the click layer, the path tool and the generated marks.
 *
 * Plotly emits no click on empty space, so in "click" mode an invisible heatmap of GRID × GRID
 * cells covering the visible axes is added as the map's last trace: a click anywhere is then a
 * click on a cell, and Dash's clickData carries the cell centre's map coordinates (within half a
 * cell, 1/400 of the view, of where the pointer was). Its cells have no customdata, so the map
 * panel takes them for no frame (components/map_figure.event_frames). In "path" mode the map's
 * drag draws an open path (Plotly's drawopenpath); the drawn SVG path reaches Dash in relayoutData.
 *
 * Generated latents, projected back with the map's stored projection, are drawn as open diamonds
 * with a line from the asked point (a cross) to where each landed; a path is drawn as its
 * resampled points joined. Every trace added here has meta "synth-…" and no customdata.
 *
 * A server-side redraw of the map (new colouring, a highlighted selection) replaces the figure's
 * traces; they are added back on plotly_afterplot, as assets/live.js does for live points.
 * The Dash side (components/synthesis_panel.py) calls window.morphoSynth.show(mode, marks).
 */
(function () {
    "use strict";
    const GRID = 200;
    const MARK = "#d62728";
    const state = {mode: "inspect", marks: null, drawn: null, layerRange: null};

    function graph() { return document.querySelector(".ms-map .js-plotly-plot"); }

    function indices(gd, prefix) {
        return (gd.data || []).map((t, i) => String(t.meta || "").startsWith(prefix) ? i : -1).filter(i => i >= 0);
    }

    function twoD(gd) { return gd._fullLayout && gd._fullLayout.xaxis && !gd._fullLayout.scene; }

    /* Cells whose outer edges are the axes' current range: the layer never widens an autorange. */
    function layer(gd) {
        const [x0, x1] = gd._fullLayout.xaxis.range.map(Number), [y0, y1] = gd._fullLayout.yaxis.range.map(Number);
        const dx = (x1 - x0) / GRID, dy = (y1 - y0) / GRID;
        const x = Array.from({length: GRID}, (_, i) => x0 + (i + 0.5) * dx);
        const y = Array.from({length: GRID}, (_, i) => y0 + (i + 0.5) * dy);
        const z = Array.from({length: GRID}, () => new Array(GRID).fill(0));
        state.layerRange = [x0, x1, y0, y1];
        // hoverinfo "none" (not "skip"): no label, but clicks still fire.
        return {type: "heatmap", meta: "synth-layer", name: "click anywhere", x, y, z, opacity: 0,
                showscale: false, hoverinfo: "none", zsmooth: false, colorscale: [[0, "#000"], [1, "#000"]]};
    }

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

    /* Whether the layer still covers the view, give or take 1 % of it: the layer's own cells
     * enter the autorange, so a rebuild for every rounding of the range would never end. */
    function covers(gd) {
        const r = state.layerRange;
        if (!r) { return false; }
        const [x0, x1] = gd._fullLayout.xaxis.range.map(Number), [y0, y1] = gd._fullLayout.yaxis.range.map(Number);
        const tx = 0.01 * Math.abs(x1 - x0), ty = 0.01 * Math.abs(y1 - y0);
        const lo = (a, b) => Math.min(a, b), hi = (a, b) => Math.max(a, b);
        return lo(r[0], r[1]) <= lo(x0, x1) + tx && hi(r[0], r[1]) >= hi(x0, x1) - tx
            && lo(r[2], r[3]) <= lo(y0, y1) + ty && hi(r[2], r[3]) >= hi(y0, y1) - ty;
    }

    /* A safety net: more than 5 layer rebuilds within 2 s means something keeps moving the range. */
    const rebuilds = [];
    function mayRebuild() {
        const now = Date.now();
        while (rebuilds.length && now - rebuilds[0] > 2000) { rebuilds.shift(); }
        if (rebuilds.length >= 5) { console.warn("synthesis: click layer rebuilt too often; keeping it"); return false; }
        rebuilds.push(now);
        return true;
    }

    let busy = false;
    /* Bring the graph to the state held here: layer, marks, drag mode. Idempotent. */
    function ensure() {
        const gd = graph();
        if (busy || !gd || !gd.data || !window.Plotly || !twoD(gd)) { return; }
        if (!gd._synthHooked && gd.on) {
            gd.on("plotly_afterplot", ensure);
            gd.on("plotly_relayout", ensure);  // a zoom out may leave the layer short of the view
            gd._synthHooked = true;
        }
        busy = true;
        try {
            const wantLayer = state.mode === "click";
            const layerAt = indices(gd, "synth-layer");
            const stale = layerAt.length && (!wantLayer || (!covers(gd) && mayRebuild()));
            const marksAt = indices(gd, "synth-").filter(i => !layerAt.includes(i));
            const wantMarks = state.mode !== "inspect" && state.marks;
            const marksStale = marksAt.length && (!wantMarks || state.drawn !== state.marks);
            const remove = [...(stale ? layerAt : []), ...(marksStale ? marksAt : [])];
            if (remove.length) { window.Plotly.deleteTraces(gd, remove); }
            const add = [];
            if (wantLayer && (stale || !layerAt.length)) { add.push(layer(gd)); }
            if (wantMarks && (marksStale || !marksAt.length)) {
                add.push(...markTraces(state.marks));
                state.drawn = state.marks;
            }
            if (add.length) { window.Plotly.addTraces(gd, add); }
            const drag = gd._fullLayout.dragmode;
            if (state.mode === "path" && drag !== "drawopenpath") {
                window.Plotly.relayout(gd, {dragmode: "drawopenpath", newshape: {line: {color: "#111", width: 2}}});
            } else if (state.mode !== "path" && drag === "drawopenpath") {
                window.Plotly.relayout(gd, {dragmode: "lasso", shapes: []});
            }
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
