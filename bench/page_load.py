"""What does one load of the page cost, and where does the time to the first map go?

A map (``bench/live.py``'s ``build_map``: 2,000 points, PCA, HDBSCAN) is stored in the embedded
Tiled server (``python -m app.tiled_server``, a child process, as ``morphospace demo`` runs it).
The app (``app.webapp.create_app``) is served from this process by werkzeug's threaded server,
so each Dash callback can be measured where it runs: its thread's CPU time
(``time.thread_time``) and the Tiled requests it makes (counted on ``httpx.Client.send``).
Headless Chromium (``headless_chromium.launch_chromium``) loads the page ``--loads`` times (a
fresh load, then reloads) and each load is timed until the map's count line reports every point.
For each load, the CPU seconds spent meanwhile (psutil) by the browser's renderer (Dash, React,
plotly.js: the page's JavaScript), its GPU process (WebGL, drawn by SwiftShader on the CPU), all
its processes, this process (the app: callbacks, Flask, the Tiled client; and Selenium's
polling) and the Tiled server. A browser process that started and ended within a load is missed.
(CDP's ``TaskDuration`` was tried and dropped: it restarts with some navigations and, being wall
time, swells on a loaded machine.)

The split says which side to make faster: if the renderer's CPU is most of the time to the map,
fewer or lighter components help, and faster callbacks do not.

``--without XPCSAIO JobsAIO ...`` leaves those panels out of the page (their callbacks stay
registered and find nothing to run on), to see what each costs.

    .venv/bin/python bench/page_load.py [--loads 6] [--without XPCSAIO] [--json page_load.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.services import free_port  # noqa: E402
from bench.live import build_map  # noqa: E402
from core.data.store import Store  # noqa: E402

POINTS = 2000  # build_map's map
AIO_ID = re.compile(r'\{"aio_id":\["MATCH"\],"component":"(\w+)","subcomponent":"([\w-]+)"\}')


def start_tiled(folder: Path) -> tuple[subprocess.Popen, str, str]:
    """The embedded Tiled server as the demo starts it; (process, uri, api key)."""
    key = secrets.token_hex(16)
    key_file = folder / "api_key"
    key_file.write_text(key)
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "app.tiled_server", "--directory", str(folder / "tiled"),
                              "--port", str(port), "--api-key-file", str(key_file)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return child, f"http://127.0.0.1:{port}/api/v1", key
        except httpx.HTTPError:
            pass
        if child.poll() is not None:
            raise SystemExit("the Tiled server exited at start")
        time.sleep(0.2)
    raise SystemExit("the Tiled server did not answer in 120 s")


class CallbackMeter:
    """Per Dash callback: the thread CPU seconds and Tiled requests of each call, by load."""

    def __init__(self) -> None:
        self.load = -1
        self.cpu: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        self.requests: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        self.calls: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
        self._local = threading.local()

    def install(self, server) -> None:
        from flask import request

        meter = self
        send = httpx.Client.send

        def counted_send(client, req, **kwargs):
            name = getattr(meter._local, "name", None)
            if name is not None:
                meter.requests[meter.load][name] += 1
            return send(client, req, **kwargs)

        httpx.Client.send = counted_send

        @server.before_request
        def started():
            meter._local.name = None
            if request.path.endswith("_dash-update-component"):
                output = (request.get_json(silent=True) or {}).get("output", "")
                meter._local.name = AIO_ID.sub(r"\1.\2", output).strip(".")[:70]
                meter._local.cpu = time.thread_time()

        @server.after_request
        def finished(response):
            name = getattr(meter._local, "name", None)
            if name is not None:
                meter.cpu[meter.load][name] += time.thread_time() - meter._local.cpu
                meter.calls[meter.load][name] += 1
                meter._local.name = None
            return response


def cpu_seconds(processes) -> float:
    """User + system CPU seconds of these processes (gone ones count 0)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def renderers(processes) -> list:
    return [p for p in processes if "--type=renderer" in " ".join(p.cmdline())]


def gpu(processes) -> list:
    """SwiftShader: WebGL drawn by the CPU, in the GPU process."""
    return [p for p in processes if "--type=gpu-process" in " ".join(p.cmdline())]


def map_drawn(driver) -> bool:
    return driver.execute_script(
        "const c = document.querySelector('.ms-map-count');"
        f"return !!c && c.textContent.includes('{POINTS:,} points');")


def without(layout, names: set[str]):
    """``layout`` with the components whose class is named in ``names`` replaced by empty divs."""
    from dash import html

    def prune(component) -> None:
        children = getattr(component, "children", None)
        if isinstance(children, (list, tuple)):
            component.children = [html.Div() if type(c).__name__ in names else c for c in children]
            for child in component.children:
                prune(child)
        elif children is not None and type(children).__name__ in names:
            component.children = html.Div()
        elif children is not None:
            prune(children)

    def build():
        root = layout()
        prune(root)
        return root

    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=6, help="page loads (the first is a fresh one)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a load may take")
    parser.add_argument("--without", nargs="*", default=[], metavar="PANEL",
                        help="leave these panels out (class names: XPCSAIO, JobsAIO, VariationsAIO, ...)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    from selenium.webdriver.support.ui import WebDriverWait
    from werkzeug.serving import make_server

    from app.webapp import create_app
    from core.settings import Settings
    from headless_chromium import launch_chromium

    folder = Path(tempfile.mkdtemp(prefix="morphospace-page-load-"))
    tiled, uri, key = start_tiled(folder)
    driver = server = None
    try:
        store = Store.from_uri(uri, api_key=key, project="pageload")
        build_map(store, 64, 16)
        port = free_port()
        settings = Settings(tiled_uri=uri, tiled_api_key=key, project="pageload", data_dir=folder / "data",
                            port=port)
        app = create_app(settings)
        if args.without:
            app.layout = without(app.layout, set(args.without))
        meter = CallbackMeter()
        meter.install(app.server)
        server = make_server("127.0.0.1", port, app.server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        driver = launch_chromium()
        rows = []
        for load in range(args.loads):
            meter.load = load
            browser = psutil.Process(driver.service.process.pid).children(recursive=True)
            sides = {"renderer": renderers(browser), "gpu": gpu(browser), "browser": browser,
                     "app": [psutil.Process()], "tiled": [psutil.Process(tiled.pid)]}
            cpu_before = {side: cpu_seconds(procs) for side, procs in sides.items()}
            started = time.monotonic()
            driver.get(f"http://127.0.0.1:{port}/") if load == 0 else driver.refresh()
            WebDriverWait(driver, args.timeout, poll_frequency=0.05).until(map_drawn)
            wall = time.monotonic() - started
            browser = psutil.Process(driver.service.process.pid).children(recursive=True)
            now = {"renderer": renderers(browser), "gpu": gpu(browser), "browser": browser}
            cpu = {side: cpu_seconds(now.get(side, procs)) - cpu_before[side] for side, procs in sides.items()}
            rows.append({"load": load, "to_map_s": round(wall, 2),
                         **{f"{side}_cpu_s": round(v, 2) for side, v in cpu.items()},
                         "callbacks": sum(meter.calls[load].values()),
                         "server_cpu_s": round(sum(meter.cpu[load].values()), 3),
                         "tiled_requests": sum(meter.requests[load].values())})
            print(rows[-1], flush=True)
        warm = rows[1:] or rows
        heaviest = collections.Counter()
        for load in range(1, args.loads) if args.loads > 1 else range(1):
            heaviest.update(meter.cpu[load])
        result = {
            "machine": f"{platform.node()}, nproc {os.cpu_count()}, Python {platform.python_version()}",
            "load_average": [round(x, 2) for x in os.getloadavg()], "without": args.without,
            "loads": rows,
            "median_after_first": {k: statistics.median(r[k] for r in warm)
                                   for k in ("to_map_s", "browser_cpu_s", "renderer_cpu_s", "gpu_cpu_s",
                                             "app_cpu_s", "tiled_cpu_s", "server_cpu_s",
                                             "tiled_requests", "callbacks")},
            "heaviest_callbacks_cpu_s": {k: round(v / len(warm), 3) for k, v in heaviest.most_common(6)},
        }
        print(json.dumps({k: result[k] for k in ("median_after_first", "heaviest_callbacks_cpu_s",
                                                 "load_average")}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        if driver is not None:
            driver.quit()
        if server is not None:
            server.shutdown()
        tiled.terminate()
        tiled.wait(timeout=30)


if __name__ == "__main__":
    main()
