"""Where the first lasso's server time goes: each step of the map panel's live selection, timed.

A lasso over live points is answered by ``components.map_panel.selection_from``, which reads the
session's points from Tiled (``live_in_shape``). This script stores a session of ``--rows``
points in a ``SimpleTiledServer`` (table access serialised, as in the soak and the app), then
times, in ``--clients`` fresh processes (each a web process's first lasso, then its next ones):

* ``import``: importing the map panel (the selection code and what it pulls in);
* ``client``: ``Store.from_uri`` (the Tiled client and its first request);
* ``keep_open`` (with ``--keep-open``): the session looked up ahead, as the live panel does
  when the page starts showing it;
* ``open``: ``LiveSession.open`` (project, ``live`` container and session lookups);
* ``node``: the points table's node (its structure);
* ``read``: the 4 columns the lasso needs;
* ``maths``: sorting by (batch, row), dropping rows with no image, the polygon test;
* ``select``: the whole ``selection_from`` as the page's callback runs it;
* ``table_client_imported``: whether Tiled's table client was imported before the first lasso.

``select`` is timed first in each call (``call 0`` is a web process's first lasso), then the
steps one by one; ``--in-server`` also runs one client in the server's own process, as
``bench/soak.py --page`` does. Run::

    .venv/bin/python bench/lasso_steps.py --rows 6000 --clients 3 [--keep-open] [--in-server]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "benchkey0123"
LASSO = {"points": [], "lassoPoints": {"x": [-9, 9, 9, -9], "y": [-9, -9, 9, 9]}}  # all of N(0, 1)


def ms(clock: float) -> float:
    return round(1000 * (time.perf_counter() - clock), 1)


def client(uri: str, project: str, session: str, calls: int, keep: bool) -> list[dict]:
    """Step times (ms) of ``calls`` lassos in this process, the first one a cold one."""
    clock = time.perf_counter()
    import numpy as np
    import pandas as pd

    from components import map_figure as mf
    from components.map_panel import selection_from
    from core.data.store import Store
    from core.live.session import LiveSession, keep_open

    # Tiled's table client (tiled.client.dataframe) imports dask.dataframe: ~0.7 s, paid by the
    # first table a process reads unless something imported it before.
    first = {"import": ms(clock), "table_client_imported": "tiled.client.dataframe" in sys.modules}
    clock = time.perf_counter()
    store = Store.from_uri(uri, api_key=KEY, project=project)
    first["client"] = ms(clock)
    if keep:  # what the live panel does when the page starts showing the session
        clock = time.perf_counter()
        keep_open(lambda: store, session).join()
        first["keep_open"] = ms(clock)
    current, view = {"projection_id": "p", "clustering_id": "c"}, {"key": "c", "kind": "points", "n": 0}
    shown = {"session": session, "upto": 10**9}
    out = []
    for k in range(calls):
        step = dict(first) if k == 0 else {}
        clock = time.perf_counter()
        rows = len(selection_from(store, current, LASSO, view, shown)["live"]["rows"])
        step["select"] = ms(clock)
        # the steps, one by one, each a fresh lookup
        clock = time.perf_counter()
        live = LiveSession.open(store, session)
        step["open"] = ms(clock)
        clock = time.perf_counter()
        node = live.node["points"]
        step["node"] = ms(clock)
        clock = time.perf_counter()
        table = pd.DataFrame(node.read(["batch", "row", "x", "y"]))
        step["read"] = ms(clock)
        clock = time.perf_counter()
        table = table.sort_values(["batch", "row"], kind="stable")
        table = table[table["row"] >= 0]
        mf.indices_in_shape(LASSO, table[["x", "y"]].to_numpy(np.float64))
        step["maths"] = ms(clock)
        step["rows"] = rows
        out.append(step)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=6000, help="points in the session (6,000: a 120 s soak)")
    parser.add_argument("--clients", type=int, default=3, help="fresh processes, one after another")
    parser.add_argument("--calls", type=int, default=3, help="lassos per process")
    parser.add_argument("--keep-open", action="store_true",
                        help="look the session up first, as the live panel does when the page goes live")
    parser.add_argument("--in-server", action="store_true", help="one more client in the server's process")
    parser.add_argument("--client", nargs=3, metavar=("URI", "PROJECT", "SESSION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(*args.client, args.calls, args.keep_open)))
        return

    import numpy as np
    from tiled.server import SimpleTiledServer

    from app.tiled_server import serialize_table_access
    from bench.live import store_session
    from core.data.store import Store

    serialize_table_access()
    with tempfile.TemporaryDirectory(prefix="bench-lasso-steps-") as directory:
        server = SimpleTiledServer(directory=directory, api_key=KEY)
        try:
            uri = server.uri.split("?")[0]
            store = Store.from_uri(uri, api_key=KEY, project="lasso")
            session = store_session(store, args.rows, np.random.default_rng(0)).id
            runs = []
            for n in range(args.clients):
                argv = [sys.executable, __file__, "--client", uri, "lasso", session,
                        "--calls", str(args.calls)] + ["--keep-open"] * args.keep_open
                done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
                runs.append((f"process {n + 1}", json.loads(done.stdout.splitlines()[-1])))
            if args.in_server:
                runs.append(("in the server's process", client(uri, "lasso", session, args.calls, args.keep_open)))
        finally:
            server.close()
    for name, calls in runs:
        for k, step in enumerate(calls):
            print(json.dumps({"run": name, "call": k, **step}))


if __name__ == "__main__":
    main()
