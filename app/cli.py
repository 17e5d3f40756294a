"""The `morphospace` command: one subcommand per step, plus demo, serve and worker.

Steps are submitted as Prefect flow runs and followed with a progress bar; bad input ends in
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple, get_args, get_origin

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger("morphospace")

# Which kind of result each step leaves in Tiled, to print its id when the run completes.
RESULT_KIND = {"ingest": "datasets", "train-vae": "models", "encode": "latents",
               "project": "projections", "cluster": "clusterings", "simulate-xpcs": "xpcs_simulations",
               "train-xpcs-regressor": "models", "simulate-cahn-hilliard": "datasets",
               "train-flow-matching": "models", "train-latent-diffusion": "models",
               "evaluate-samplers": "synthesis_evaluations"}
SCALE_OPTIONS = ("pixel_size", "pixel_unit", "frame_interval")  # ingest options from IngestParams' fields


class Step(NamedTuple):
    """A step subcommand whose options are its flow parameter model's fields (``flows.params``)."""

    help: str
    flow: str
    model: str  # the model's name in flows.params (imported on use: `morphospace --help` stays quick)
    positional: tuple[str, ...]
    flags: dict[str, str] = {}  # option names kept from before that differ from the field's (README)


STEPS = {
    "train": Step("dataset → VAE", "train-vae", "TrainParams", ("dataset_id",)),
    "encode": Step("(dataset, model) → latents", "encode", "EncodeParams", ("dataset_id", "model_id")),
    "project": Step("latents → map", "project", "ProjectParams", ("latents_id",), {"n_components": "--dims"}),
    "cluster": Step("map → HDBSCAN clusters and quality figures", "cluster", "ClusterParams", ("projection_id",)),
    "simulate-xpcs": Step("grain-boundary model → simulated XPCS two-time maps", "simulate-xpcs",
                          "SimulateXPCSParams", ()),
    "train-xpcs-regressor": Step("simulated (+ measured) two-time maps → D, κ, c, T regressor, adapted with "
                                 "CORAL", "train-xpcs-regressor", "TrainXPCSParams", ("simulations_id",)),
    "simulate-cahn-hilliard": Step("Cahn–Hilliard phase separation over a (φ0, χ) grid → dataset",
                                   "simulate-cahn-hilliard", "SimulateCHParams", ()),
    "train-flow-matching": Step("clustered map → conditional flow matching sampler (coordinate → latents)",
                                "train-flow-matching", "TrainFlowMatchingParams", ("clustering_id",)),
    "train-latent-diffusion": Step("clustered map → latent diffusion sampler", "train-latent-diffusion",
                                   "TrainLatentDiffusionParams", ("clustering_id",)),
    "evaluate-samplers": Step("clustered map → samplers scored on held-out points per cluster",
                              "evaluate-samplers", "EvaluateSamplersParams", ("clustering_id",)),
}
PREPROCESS_FLAGS = {"clip_percentiles": "--clip"}  # ingest's option name kept from before (README)


class LazySubcommands(argparse._SubParsersAction):
    """Subcommands whose options are added when one is chosen (``fillers``): the steps' options come
    from the flow parameter models, whose imports (pydantic, numpy and pandas through core) take
    over a second, so `morphospace --help`, `demo` and `worker` start without them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fillers: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def filled(self, name: str) -> argparse.ArgumentParser:
        """The subcommand's parser with every option in place."""
        filler = self.fillers.pop(name, None)
        if filler is not None:
            filler(self.choices[name])
        return self.choices[name]

    def __call__(self, parser, namespace, values, option_string=None):
        self.filled(values[0])
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    # Global options go before or after the subcommand (`morphospace --data-dir D demo` and
    # `morphospace demo --data-dir D`): every subparser shares them, and SUPPRESS keeps a
    # subparser from resetting a value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="data directory (default ./.morphospace); a second shell reaches a "
                             "running demo through it")
    parser = argparse.ArgumentParser(prog="morphospace", description="Latent maps of materials images.",
                                     parents=[common])
    sub = parser.add_subparsers(dest="command", required=True, action=LazySubcommands)
    add_parser = functools.partial(sub.add_parser, parents=[common])

    demo = add_parser("demo", help="start every service locally, build the demo map, serve the app")
    demo.add_argument("--port", type=int, help="web app port (default 8050)")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--simulate", action="store_true",
                      help="also replay the demo frames, over and over, to the live source (press Live)")
    demo.add_argument("--cahn-hilliard", action="store_true",
                      help="build the map from a Cahn–Hilliard phase-separation simulation (480 frames over "
                           "composition, interaction and time) instead of the colloid frames")

    serve = add_parser("serve", help="serve the web app against configured services")
    serve.add_argument("--port", type=int)

    worker = add_parser("worker", help="serve the flows as Prefect deployments")
    worker.add_argument("--limit", type=int, default=2, help="runs at once on this worker")

    add_parser("ingest", help="files → dataset")
    sub.fillers["ingest"] = ingest_options
    for command, step in STEPS.items():
        add_parser(command, help=step.help)
        sub.fillers[command] = functools.partial(step_options, step=step)

    xmap = add_parser("ingest-xpcs-map", help="measured two-time maps (.npy, one (T, T) map per file) → "
                      "xpcs_maps, for the XPCS regressor to adapt to")
    xmap.add_argument("files", nargs="+", help=".npy files, folders or globs under the data roots "
                      "(MORPHOSPACE_DATA_ROOTS)")
    xmap.add_argument("--name", help="a name for the record (default: the files' names)")

    simulate = add_parser("simulate", help="replay a frame series as a detector would (live mode)")
    simulate.add_argument("series", help="an .npz/.npy stack, an image file or a folder of frames")
    to = simulate.add_mutually_exclusive_group(required=True)
    to.add_argument("--zmq", metavar="ADDRESS", help="send to a `morphospace live` (tcp://127.0.0.1:5555)")
    to.add_argument("--folder", type=Path, help="write .npy files into this folder")
    simulate.add_argument("--rate", type=float, default=10.0, help="frames per second (0: as fast as possible)")
    simulate.add_argument("--loop", action="store_true", help="replay the series again and again (until Ctrl-C)")
    simulate.add_argument("--timeout", type=float, default=30.0,
                          help="ZMQ: seconds to wait for a pipeline to take a frame before giving up (0: forever)")
    simulate.add_argument("--two-time", type=int, metavar="WINDOW",
                          help="send sliding two-time maps instead (over --zmq marked as such, so live "
                               "mode reports their non-equilibrium measure)")
    simulate.add_argument("--step", type=int, help="frames between two-time windows (default WINDOW)")
    rings = simulate.add_argument_group("two-time rings", "one map per |q| ring (default: "
                                        "--rings rings of equal width around the frame centre)")
    rings.add_argument("--rings", type=int, default=4, help="number of default rings (default 4)")
    rings.add_argument("--centre", type=float, nargs=2, metavar=("ROW", "COL"),
                       help="direct-beam position in pixels (default: the frame centre)")
    ring_edges = rings.add_mutually_exclusive_group()
    ring_edges.add_argument("--radii", type=float, nargs="+", metavar="PX",
                            help="ring edges in pixels from the centre (n + 1 values for n rings)")
    ring_edges.add_argument("--q-edges", type=float, nargs="+", metavar="NM-1",
                            help="ring edges in |q|, nm⁻¹ (needs --centre, --pixel-size, --distance, "
                                 "--wavelength)")
    rings.add_argument("--pixel-size", type=float, metavar="M", help="pixel side in metres")
    rings.add_argument("--distance", type=float, metavar="M", help="sample-detector distance in metres")
    rings.add_argument("--wavelength", type=float, metavar="M", help="X-ray wavelength in metres")

    live = add_parser("live", help="place incoming frames on a map, for browsers and Tiled")
    live.add_argument("projection_id")
    live.add_argument("--source", help="tcp://HOST:PORT (ZMQ), a folder, or tiled+http://... "
                      "(default MORPHOSPACE_LIVE_SOURCE)")
    live.add_argument("--clustering", dest="clustering_id")
    live.add_argument("--session")
    live.add_argument("--resume", action="store_true",
                      help="with --session: go on with that session if it exists (a restarted operator)")
    live.add_argument("--ws-port", type=int, default=0,
                      help="websocket port (default: a free one, printed when ready)")
    live.add_argument("--standby", action="store_true",
                      help="for the web app: load the map now, start on a 'start' line on stdin, "
                           "stop on 'stop' or end of input; events as JSON lines on stdout")
    live.add_argument("--max-batch", type=int, default=32)
    live.add_argument("--queue-size", type=int, default=64)
    live.add_argument("--connect", action="store_true", help="ZMQ: connect to a detector that binds")
    live.add_argument("--sub", action="store_true", help="ZMQ: SUB socket (detector publishes) instead of PULL")
    return parser


def ingest_options(ingest: argparse.ArgumentParser) -> None:
    from core.data.preprocess import PreprocessParams
    from flows.params import IngestParams

    ingest.add_argument("source", nargs="+", help="folders, globs, files (file.h5::/dataset) or tiled+http://...")
    add_model_options(ingest, IngestParams, only=("name", *SCALE_OPTIONS))
    add_model_options(ingest, PreprocessParams, flags=PREPROCESS_FLAGS)


def step_options(parser: argparse.ArgumentParser, step: Step) -> None:
    from flows import params

    add_model_options(parser, getattr(params, step.model), positional=step.positional, flags=step.flags)


def add_model_options(parser: argparse.ArgumentParser, model: type, *, positional: tuple[str, ...] = (),
                      flags: dict[str, str] | None = None, only: tuple[str, ...] | None = None) -> None:
    """One argument per field of a flow's parameter model (or of core's preprocessing dataclass):
    its type, default, choices and help (description and bounds) come from the field, so the
    command line cannot drift from it. A yes/no field gets ``--NAME``/``--no-NAME``; a pair takes
    two values, and ``--no-NAME`` when it may be None.

    A list of plain values (e.g. ``experimental_ids``) takes any number of values
    (``nargs="*"``); left out, the model's default fills it. Nested models are left out too.
    """
    from flows.params import fields_of, rule

    for name in positional:
        parser.add_argument(name, help=rule(model, name).description or None)
    for name, info in fields_of(model).items():
        if name in positional or (only is not None and name not in only):
            continue
        item = list_item(info.annotation)
        if item is not None:
            parser.add_argument("--" + name.replace("_", "-"), dest=name, nargs="*", type=item,
                                default=argparse.SUPPRESS, metavar=name.rstrip("s").upper(),
                                help=(info.description or "").replace("%", "%%") or None)
            continue
        if info.default_factory:
            continue
        r = rule(model, name)
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        words = "; ".join(w for w in (r.description.rstrip("."), "" if r.choices else r.accepts()) if w)
        how = {"action": argparse.BooleanOptionalAction} if r.kind is bool else {"type": r.kind}
        if r.count > 1:
            how["nargs"], how["metavar"] = r.count, ("LO", "HI") if r.count == 2 else None
        parser.add_argument(flag, dest=name, default=r.default, choices=r.choices or None, **how,
                            help=" ".join((words.replace("%", "%%"), "(default %(default)s)")).strip())
        if r.count > 1 and r.optional:
            parser.add_argument("--no-" + flag[2:], dest=name, action="store_const", const=None,
                                help=f"no {flag[2:]} (None)")


def list_item(annotation) -> type | None:
    """The item type of a ``list[str | int | float]`` field (Annotated items unwrapped), else None."""
    if get_origin(annotation) is not list:
        return None
    (item,) = get_args(annotation)
    if get_origin(item) is Annotated:
        item = get_args(item)[0]
    return item if item in (str, int, float) else None


def step_params(args: argparse.Namespace):
    """(flow name, validated parameters) for a step subcommand."""
    from core.data.preprocess import PreprocessParams
    from flows import params as p

    if args.command == "ingest":
        preprocess = PreprocessParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(PreprocessParams)})
        sources = [str(Path(s).resolve()) if "://" not in s else s for s in args.source]
        return "ingest", p.IngestParams(source=sources, name=args.name, preprocess=preprocess,
                                        **{name: getattr(args, name) for name in SCALE_OPTIONS})
    step = STEPS[args.command]
    model = getattr(p, step.model)
    return step.flow, model(**{name: getattr(args, name) for name in model.model_fields if hasattr(args, name)})


def use_services(settings: Settings) -> Settings:
    """Point this process at the configured (or running demo's) Tiled and Prefect."""
    from app.demo import prefect_env

    settings = settings.with_running_services()
    if settings.prefect_api_url:
        os.environ.update(prefect_env(settings, settings.prefect_api_url))
    return settings


def run_step(settings: Settings, args: argparse.Namespace) -> int:
    from app.progress import follow
    from core.data.store import Store

    flow_name, params = step_params(args)
    settings = use_services(settings)
    store = Store.from_settings(settings)  # fail fast, before submitting, when Tiled is down
    from flows.submit import submit

    run_id = submit(flow_name, params)
    follow(run_id, flow_name)
    kind = RESULT_KIND[flow_name]
    made = [item for item in store.list(kind) if item.get("flow_run_id") == run_id]
    print(made[0]["id"] if made else f"run {run_id} completed")
    if made and made[0].get("skipped"):  # e.g. ingest: how many files were skipped, and why
        print(f"morphospace {args.command}: {made[0]['skipped']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("numexpr").setLevel(logging.WARNING)  # pyFAI's numexpr says its thread count at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request drowns the log
    overrides = {k: v for k, v in (("data_dir", getattr(args, "data_dir", None)),
                                    ("port", getattr(args, "port", None))) if v}
    try:
        settings = get_settings().model_copy(update=overrides)
        if args.command == "demo":
            from app.demo import run_demo

            logging.getLogger().setLevel(logging.WARNING)
            return run_demo(settings, open_browser=not args.no_browser, simulate=args.simulate,
                            cahn_hilliard=args.cahn_hilliard)
        if args.command == "serve":
            from app.webapp import create_app

            settings = use_services(settings)
            create_app(settings).run(host=settings.host, port=settings.port, debug=False)
            return 0
        if args.command == "worker":
            settings = use_services(settings)
            from flows.deployments import serve_flows

            serve_flows(limit=args.limit, poll_seconds=settings.worker_poll_seconds)
            return 0
        if args.command == "simulate":
            return run_simulate(args)
        if args.command == "ingest-xpcs-map":
            return run_ingest_xpcs_map(settings, args)
        if args.command == "live":
            return run_live(settings, args)
        logging.getLogger().setLevel(logging.WARNING)
        return run_step(settings, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one clear line, no traceback
        if get_settings().debug:
            raise
        print(f"morphospace {args.command}: error: {describe(exc)}", file=sys.stderr)
        return 2


def xpcs_map_files(specs: list[str], roots: list[Path]) -> list[Path]:
    """The .npy files ``specs`` name, every one inside the data roots (as ingest checks them)."""
    from core.data.imageio import resolve_sources

    sources = resolve_sources(specs, roots)
    refused = [s.refused for s in sources if s.refused]
    if refused:
        raise PermissionError(refused[0])
    files = [s.path for s in sources if s.path.suffix.lower() == ".npy"]
    if not files:
        raise FileNotFoundError(f"no .npy file among {', '.join(specs)}: give (T, T) two-time maps saved "
                                "with numpy.save")
    return files


def run_ingest_xpcs_map(settings: Settings, args: argparse.Namespace) -> int:
    """Store measured two-time maps (``core.data.results.xpcs_maps``) and print the record's id."""
    from core.data.results.xpcs_maps import ingest_npy
    from core.data.store import Store

    files = xpcs_map_files(args.files, settings.data_roots)
    store = Store.from_settings(use_services(settings))
    print(ingest_npy(store, files, name=args.name))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    """Replay a series at the given rate, printing progress on one line."""
    from core.xpcs.rings import detector_mask, rings_from
    from streaming.simulator import load_series, replay_folder, replay_zmq, two_time_series

    frames = load_series(args.series)
    metadata = None
    if args.two_time:
        rings = rings_from(frames.shape[1:3], mask=detector_mask(frames), n_rings=args.rings,
                           centre=args.centre, radii=args.radii, q_edges=args.q_edges,
                           pixel_size=args.pixel_size, distance=args.distance,
                           wavelength=args.wavelength)
        print("rings: " + "; ".join(f"{rings.label(i)} ({n} px)" for i, n in enumerate(rings.n_pixels)),
              file=sys.stderr)
        frames, metadata = two_time_series(frames, args.two_time, args.step, rings)
        if args.folder:
            print("note: files in a folder carry no metadata, so `morphospace live` will take these "
                  "two-time maps for plain images (no non-equilibrium measure); use --zmq for that",
                  file=sys.stderr)
    rate = args.rate or None

    def progress(done: int, total: int) -> None:
        print(f"\rsent {done}/{total}", end="", file=sys.stderr, flush=True)

    sent = 0
    while True:  # once, or (--loop) until interrupted, frame numbers going on from pass to pass
        if args.zmq:
            done = replay_zmq(frames, args.zmq, rate=rate, source=str(args.series), progress=progress,
                              metadata=metadata, start_index=sent,
                              timeout=args.timeout or None, end=not args.loop)
        else:
            done = replay_folder(frames, args.folder, rate=rate, progress=progress, start_index=sent)
        sent += done
        if not args.loop:
            break
    print(file=sys.stderr)
    print(f"sent {sent} frames")
    return 0


def run_live(settings: Settings, args: argparse.Namespace) -> int:
    """Run a live session until SIGINT/SIGTERM, then finish what was received and store it."""
    import asyncio
    import json
    import signal

    from app.live import deployment_token
    from streaming.pipeline import LiveConfig, run_on_command, run_pipeline

    config = LiveConfig(
        projection_id=args.projection_id, source=args.source or settings.live_source,
        clustering_id=args.clustering_id, session=args.session, ws_host=settings.host,
        ws_port=args.ws_port, max_batch=args.max_batch, queue_size=args.queue_size,
        resume=args.resume, bind=not args.connect, zmq_kind="sub" if args.sub else "pull", device=settings.device,
    )
    settings = settings.with_running_services()  # Tiled only: live mode needs no Prefect
    token, where = deployment_token(settings)

    def ready(info: dict) -> None:
        print(f"live session {info['session']}: frames from {info['source']}, browsers on "
              f"{info['ws_url']} (first message: the token in {where}), table {info['table']}", flush=True)

    def emit(event: dict) -> None:
        print(json.dumps(event), flush=True)

    async def main() -> dict | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if not args.standby:
            return await run_pipeline(settings, config, token=token, stop_event=stop, on_ready=ready)
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        return await run_on_command(settings, config, token=token, commands=commands, emit=emit,
                                    stop_event=stop)

    stats = asyncio.run(main())
    if stats is None:
        return 0
    print(f"processed {stats['processed']} images, {stats['errors']} errors, "
          f"{stats['stored_rows']} rows stored")
    return 0


def describe(exc: Exception) -> str:
    """One line per bad parameter, from pydantic's structured errors: 'n_neighbors=1: Input should
    be greater than or equal to 2'; a parameter core refused is named by the error it raised."""
    from pydantic import ValidationError

    from core.limits import BadParameter

    if not isinstance(exc, ValidationError):
        return str(exc) or type(exc).__name__
    lines = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, BadParameter):
            lines.append(f"{cause.name}={cause.value!r}: {cause.rule}")
        else:
            lines.append(f"{'.'.join(str(p) for p in err['loc']) or 'value'}={err.get('input')!r}: {err['msg']}")
    return "; ".join(lines)


if __name__ == "__main__":
    sys.exit(main())
