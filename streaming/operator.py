"""The live operator: raw frames -> map points, in batches, with a bounded queue.

For each batch it takes off its queue (everything waiting, up to ``max_batch``), the operator
preprocesses every frame exactly as the model's training dataset was (the dataset's stored
:class:`~core.data.preprocess.PreprocessParams`), encodes the images in one forward pass, places the
posterior means on the stored map with ``Projector.transform`` (never refitting) and gives each
point a cluster. It times each stage (``queue_wait``, ``preprocess``, ``encode``, ``project``,
``cluster``, and ``publish`` in the totals) and publishes one
:class:`~streaming.messages.ResultBatch`, which carries the preprocessed images too (the
session stores them, so a selection of live points shows their frames) and numbers them: image
``k`` of the session is ``row`` k, whatever batch it came in.

A frame marked as a two-time correlation map (``metadata["kind"] == "two-time"``, see
:mod:`streaming.messages`) also gets :func:`core.xpcs.two_time.non_equilibrium` of the raw map, before
preprocessing rescales it, and its noise floor (:func:`core.xpcs.noise.noise_floor`, from the
ring's ``n_pixels`` when the metadata gives it, else inferred from the map; both timed with
``preprocess``) and its ring (``ring_label``); other frames get NaN and "".

A frame that cannot be used (wrong shape, mostly NaN/inf, unreadable) becomes a
:class:`~streaming.messages.FrameError` in the batch and the stream goes on.

Backpressure: the queue (:class:`streaming.backlog.FrameQueue`) holds at most ``queue_size``
frames and ``queue_bytes`` bytes; a listener that finds it full waits (nothing is dropped) and
``stats.backpressure`` counts how often that happened, which is the sign that frames arrive
faster than they are processed. Every published batch carries ``backlog`` (frames queued, seconds
of lag, the bound), so the page can say how far behind it is.

Resume: ``skip`` holds frame indices already stored by an earlier run of the same session, as
points or as errors (:meth:`streaming.pipeline.LivePipeline.create` with ``resume``); such
frames, and a listener's errors about them, are counted in ``stats.skipped`` and neither placed
nor reported again, so each frame is in the table once and each error reaches a page once.

arroyopy 0.2.2 rough edges worked around here (see :class:`LiveOperator`):

* ``Operator.listeners``/``publishers`` are class attributes (``arroyopy/operator.py:14-15``), so
  every operator in a process shares one list; ``__init__`` sets them per instance.
* ``Operator.start()`` reads ``self.queue`` (``operator.py:50``), which nothing creates (the base
  ``__init__`` makes ``listener_queue``, unbounded, ``operator.py:19``); here ``queue`` is one
  bounded :class:`~streaming.backlog.FrameQueue`, also bound to ``listener_queue``, and
  ``start()`` is replaced by a batching loop that ends after draining when
  :meth:`LiveOperator.close` is called.
* ``Operator.add_listener`` awaits ``listener.start(self.listener_queue)`` (``operator.py:27``),
  an argument ``Listener.start()`` does not take, and it would block until the listener ends;
  listeners here are built with the operator and started as tasks by the pipeline.
* ``Operator.stop_requested`` is also a class attribute, checked only between messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from arroyopy import Operator

from core.data.results import clusterings, latents, projections
from core.data.results.datasets import read_preprocess
from core.maps.clustering import assign_nearest
from core.data.preprocess import PreprocessParams, preprocess_frame
from core.maps.projection import Projector
from core.xpcs.noise import noise_floor
from core.xpcs.two_time import non_equilibrium
from streaming.backlog import DEFAULT_BYTES, FrameQueue
from streaming.messages import TWO_TIME, Frame, FrameBatch, FrameError, ResultBatch, StreamEnd

log = logging.getLogger(__name__)

STAGES = ("queue_wait", "preprocess", "encode", "project", "cluster", "publish")
LIVE_SURROGATES = 50  # per two-time map: a floor within ~0.01 at a fraction of a second's work


class ClusterAssigner:
    """Cluster labels for new points, from a stored clustering (labels, no pickled model).

    HDBSCAN is deterministic, so :meth:`from_points` refits it on the stored points with the
    stored parameters and ``prediction_data=True``; when that reproduces the stored labels
    exactly, new points get ``hdbscan.approximate_predict`` (which can say "noise", -1).
    Otherwise, and for clusterings made by something else, each new point takes the label of its
    nearest clustered point (:func:`core.maps.clustering.assign_nearest`). ``method`` says which.
    """

    def __init__(self, space: str, points: np.ndarray | None, labels: np.ndarray | None,
                 model: Any = None):
        self.space = space  # "projection" or "latent": which coordinates are clustered
        self.points = points
        self.labels = labels
        self.model = model
        self.method = ("none" if labels is None else
                       "approximate_predict" if model is not None else "nearest")

    @classmethod
    def from_points(cls, space: str, points: np.ndarray, labels: np.ndarray,
                    params: dict) -> ClusterAssigner:
        import hdbscan

        labels = np.asarray(labels, dtype=np.int64)
        model = None
        if params.get("method", "hdbscan") == "hdbscan" and (labels >= 0).any():
            min_samples = params.get("min_samples")
            model = hdbscan.HDBSCAN(
                min_cluster_size=int(params["min_cluster_size"]),
                min_samples=None if min_samples is None else int(min_samples),
                cluster_selection_epsilon=float(params.get("cluster_selection_epsilon", 0.0)),
                core_dist_n_jobs=1, prediction_data=True,
            ).fit(np.asarray(points, dtype=np.float64))
            if not np.array_equal(model.labels_, labels):
                log.warning("refitted HDBSCAN does not reproduce the stored labels; "
                            "assigning live points to the nearest clustered point instead")
                model = None
        return cls(space, np.asarray(points, dtype=np.float64), labels, model)

    @classmethod
    def none(cls) -> ClusterAssigner:
        return cls("projection", None, None)

    def predict(self, coords: np.ndarray, mu: np.ndarray) -> np.ndarray:
        X = coords if self.space == "projection" else mu
        if self.labels is None or len(X) == 0:
            return np.full(len(X), -1, dtype=np.int32)
        if self.model is not None:
            import hdbscan

            labels, _ = hdbscan.approximate_predict(self.model, np.asarray(X, dtype=np.float64))
            return np.asarray(labels, dtype=np.int32)
        return assign_nearest(X, self.points, self.labels).astype(np.int32)


@dataclass
class LiveModel:
    """Everything the operator needs from the store, loaded once per session."""

    model: Any  # torch.nn.Module in eval mode
    projector: Projector
    clusters: ClusterAssigner
    preprocess: PreprocessParams
    ids: dict[str, str | None]  # projection, clustering, model, dataset, latents

    @property
    def n_components(self) -> int:
        return int(self.projector.n_components)

    @classmethod
    def from_store(cls, store: Any, projection_id: str, clustering_id: str | None = None, *,
                   device: str = "auto") -> LiveModel:
        """Load the map's model, fitted projection, clustering and preprocessing.

        The model, dataset and latents come from the projection's metadata; a clustering must
        belong to that projection.
        """
        from core.models.checkpoint import load_model
        from core.models.device import pick_device

        projection = projections.read_projection(store, projection_id)
        meta = projection.metadata
        projector = projections.read_projector(store, projection_id)
        clusters = ClusterAssigner.none()
        if clustering_id is not None:
            clustering = clusterings.read_clustering(store, clustering_id)
            if clustering.projection_id != projection_id:
                raise ValueError(
                    f"clustering {clustering_id!r} was made from projection "
                    f"{clustering.projection_id!r}, not {projection_id!r}; pick one of this map"
                )
            space = clustering.params.get("space", "projection")
            points = (projection.embedding if space == "projection"
                      else latents.read_means(store, projection.latents_id))
            clusters = ClusterAssigner.from_points(space, points, clustering.labels, clustering.params)
        return cls(
            model=fast_layout(load_model(store, meta["model_id"], device=pick_device(device))),
            projector=projector,
            clusters=clusters,
            preprocess=read_preprocess(store, projection.dataset_id),
            ids={"projection_id": projection_id, "clustering_id": clustering_id,
                 "model_id": meta["model_id"], "dataset_id": meta["dataset_id"],
                 "latents_id": meta.get("latents_id")},
        )


@dataclass
class OperatorStats:
    """Counters a UI shows; all cumulative over the session."""

    received: int = 0  # frames and errors handed in by listeners
    processed: int = 0  # images placed on the map
    errors: int = 0  # frames reported and skipped
    batches: int = 0
    backpressure: int = 0  # times a listener found the queue full and had to wait
    max_queue: int = 0  # deepest the queue has been
    skipped: int = 0  # frames already stored by an earlier run of the session (resume)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def as_dict(self) -> dict:
        return {"received": self.received, "processed": self.processed, "errors": self.errors,
                "batches": self.batches, "backpressure": self.backpressure,
                "max_queue": self.max_queue, "skipped": self.skipped,
                "seconds": {k: round(v, 6) for k, v in self.seconds.items()}}


class LiveOperator(Operator):
    """Batches frames off a bounded queue through preprocess -> encode -> project -> cluster.

    Parameters
    ----------
    live : LiveModel
    max_batch : int, default 32
        Most frames taken off the queue at once; a batch is whatever is waiting, so a slow
        trickle is processed frame by frame with no added latency.
    queue_size : int, default 64
        Frames that may wait; beyond that listeners wait too (``stats.backpressure``).
    queue_bytes : int, default 256 MiB
        Bytes of frames that may wait (one larger frame alone still passes).
    skip : set of int, optional
        Frame indices already stored in this session (resume): not placed again.
    expected_shape : tuple, optional
        Raw frame shape to accept; by default the shape of the first frame that is processed
        (a detector does not change shape mid-run: a different one is a misrouted stream).
    max_invalid_fraction : float, default 0.25
        Frames with a larger fraction of NaN/inf pixels are refused as broken transfers;
        below it, such pixels are masked the way ingest masks them.
    """

    def __init__(self, live: LiveModel, *, max_batch: int = 32, queue_size: int = 64,
                 queue_bytes: int = DEFAULT_BYTES, skip: set[int] | None = None,
                 expected_shape: tuple[int, ...] | None = None,
                 max_invalid_fraction: float = 0.25):
        if not (isinstance(max_batch, int) and 1 <= max_batch <= 4096):
            raise ValueError(f"max_batch={max_batch!r} must be between 1 and 4096")
        if not (isinstance(queue_size, int) and 1 <= queue_size <= 65536):
            raise ValueError(f"queue_size={queue_size!r} must be between 1 and 65536")
        if not 0 <= max_invalid_fraction < 1:
            raise ValueError(f"max_invalid_fraction={max_invalid_fraction!r} must be in [0, 1)")
        super().__init__()
        self.listeners = []  # per instance: arroyopy shares class-level lists
        self.publishers = []
        self.queue = FrameQueue(queue_size, queue_bytes)
        self.listener_queue = self.queue  # arroyopy's name for it; one queue, bounded
        self.skip = skip or set()
        self.live = live
        self.max_batch = max_batch
        self.expected_shape = expected_shape
        self.max_invalid_fraction = max_invalid_fraction
        self.stats = OperatorStats()
        self.seq = 0  # next batch number
        self.next_row = 0  # row of the next image in the session's stored images
        self.ended = asyncio.Event()  # set when a producer's StreamEnd has been published

    # -- listener side -----------------------------------------------------------------------
    async def submit(self, item: Frame | FrameError | StreamEnd) -> None:
        """Queue an item; waits (never drops) while the queue is full."""
        if isinstance(item, (Frame, FrameError)) and item.index in self.skip:
            self.stats.skipped += 1
            return
        if not isinstance(item, StreamEnd):
            self.stats.received += 1
        if not self.queue.fits(item):
            self.stats.backpressure += 1
        await self.queue.put(item)
        self.stats.max_queue = self.queue.max_seen

    async def close(self) -> None:
        """Ask :meth:`start` to return once everything queued so far is processed."""
        await self.queue.put(None)

    # -- processing ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Process batches until :meth:`close`; replaces arroyopy's loop (see module doc)."""
        closing = False
        while not closing:
            items = await self.queue.get_batch(self.max_batch)
            closing = None in items
            batch: list[Frame | FrameError] = []
            for item in items:
                if isinstance(item, (Frame, FrameError)):
                    batch.append(item)
                    continue
                await self._process_and_publish(batch)  # what came before the marker goes first
                batch = []
                if isinstance(item, StreamEnd):
                    await self.publish(item)
                    self.ended.set()
            await self._process_and_publish(batch)

    async def _process_and_publish(self, items: list[Frame | FrameError]) -> None:
        if not items:
            return
        result = await self.process(FrameBatch(items))
        result.backlog = self.queue.backlog(since=min(item.received for item in items))
        start = time.perf_counter()
        await self.publish(result)
        self.stats.seconds["publish"] += time.perf_counter() - start

    async def process(self, message: FrameBatch) -> ResultBatch:
        """One batch, computed in a worker thread so the event loop keeps serving sockets."""
        result = await asyncio.to_thread(self._compute, message.items, self.seq, self.next_row)
        self.seq += 1
        self.next_row += len(result)
        stats = self.stats
        stats.batches += 1
        stats.processed += len(result)
        stats.errors += len(result.errors)
        for stage, ms in result.timings.items():
            stats.seconds[stage] += ms / 1000
        result.stats = stats.as_dict()
        return result

    def _compute(self, items: list[Frame | FrameError], seq: int, first_row: int) -> ResultBatch:
        started = time.time()
        clock = time.perf_counter()
        timings = {"queue_wait": 1000 * max(started - item.received for item in items)}
        errors = [item for item in items if isinstance(item, FrameError)]
        frames, images, measures = [], [], []
        for frame in (item for item in items if isinstance(item, Frame)):
            try:
                prepared, measure = self._prepare(frame)
                images.append(prepared)  # (n_patches, [C,] S, S)
                measures.append(measure)  # (non_equilibrium, floor, ring)
                frames.append(frame)
            except ValueError as exc:
                errors.append(FrameError(frame.index, frame.source, str(exc), frame.received))

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = 1000 * (now - clock)
            clock = now

        lap("preprocess")
        n_per = [len(im) for im in images]
        patched = self.live.preprocess.patch_size is not None
        d = self.live.projector.n_components
        coords, clusters = np.zeros((0, d), np.float32), np.zeros(0, np.int32)
        stacked = np.concatenate(images) if images else np.zeros((0, 0, 0), np.float32)
        if images:
            try:
                coords, clusters = self._place(stacked, lap)
            except Exception as exc:  # noqa: BLE001  a failed batch is reported, the stream goes on
                log.exception("batch %d failed", seq)
                errors += [FrameError(f.index, f.source, f"processing failed: {exc}", f.received)
                           for f in frames]
                frames, n_per, measures, stacked = [], [], [], stacked[:0]
        total = sum(n_per)
        return ResultBatch(
            seq=seq,
            index=np.repeat([f.index for f in frames], n_per).astype(np.int64),
            patch=np.concatenate([np.arange(n) if patched else np.full(n, -1) for n in n_per]
                                 or [np.zeros(0)]).astype(np.int32),
            row=np.arange(first_row, first_row + total, dtype=np.int64),
            source=[f.source for f, n in zip(frames, n_per) for _ in range(n)],
            images=stacked.astype(np.float32, copy=False),
            coords=coords.astype(np.float32),
            cluster=clusters.astype(np.int32),
            non_equilibrium=np.repeat([m[0] for m in measures], n_per).astype(np.float64),
            noise_floor=np.repeat([m[1] for m in measures], n_per).astype(np.float64),
            ring=[m[2] for m, n in zip(measures, n_per) for _ in range(n)],
            received=np.repeat([f.received for f in frames], n_per).astype(np.float64),
            processed=time.time(),
            timings=timings,
            errors=errors,
        )

    def _prepare(self, frame: Frame) -> tuple[np.ndarray, tuple[float, float, str]]:
        """The frame's preprocessed images and (measure, noise floor, ring); (NaN, NaN, "") when
        it is not a two-time map."""
        array = np.asarray(frame.array)
        if self.expected_shape is not None and array.shape != tuple(self.expected_shape):
            raise ValueError(f"frame of shape {array.shape} where this stream's frames are "
                             f"{tuple(self.expected_shape)}")
        if array.dtype.kind == "f":
            invalid = float(np.mean(~np.isfinite(array)))
            if invalid > self.max_invalid_fraction:
                raise ValueError(f"{100 * invalid:.0f} % of the pixels are NaN or inf (limit "
                                 f"{100 * self.max_invalid_fraction:.0f} %): a broken frame")
        measure = (two_time_measure(array, frame.metadata) if frame.metadata.get("kind") == TWO_TIME
                   else (np.nan, np.nan, ""))
        images = preprocess_frame(array, self.live.preprocess)
        if self.expected_shape is None:
            self.expected_shape = array.shape  # lock to the first frame that worked
        return images, measure

    def warm_up(self) -> None:
        """Place one blank image, so that a session's first frame does not pay for first calls
        (torch's first forward, numba compiling the projection or cluster prediction)."""
        config = self.live.model.config
        channels = getattr(config, "channels", 1)
        shape = (config.image_size,) * 2 if channels == 1 else (channels, config.image_size, config.image_size)
        self._place(np.zeros((1, *shape), np.float32), lambda stage: None)  # (1, [C,] S, S)

    def _place(self, images: np.ndarray, lap: Any) -> tuple[np.ndarray, np.ndarray]:
        from core.maps.encode import encode_images

        mu, _ = encode_images(self.live.model, images, batch_size=len(images))  # (n, d)
        lap("encode")
        coords = self.live.projector.transform(mu)  # (n, 2|3), never a refit
        lap("project")
        clusters = self.live.clusters.predict(coords, mu)
        lap("cluster")
        return coords, clusters


def fast_layout(model: Any) -> Any:
    """The model with its weights channels-last on a CPU: oneDNN's convolutions then skip a
    layout conversion per layer (128² VAE encoder, batch 32, 2 cores: 1.3–1.7× faster in
    interleaved runs, the same latents to 1e-5). On a GPU the model is left as it is (not
    measured there)."""
    import torch

    if next(model.parameters()).device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def two_time_measure(array: np.ndarray, metadata: dict) -> tuple[float, float, str]:
    """(non_equilibrium, noise floor, ring label) of a frame that says it is a two-time map, or why not.

    A floor that cannot be had (a map too short or without a decay to fit) is NaN, logged: the
    measure still stands.
    """
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"frame marked kind={TWO_TIME!r} has shape {array.shape}; a two-time "
                         "map is square (T, T): check what the producer sends")
    measure = non_equilibrium(array)
    n_pixels = metadata.get("n_pixels")
    n_pixels = float(n_pixels) if isinstance(n_pixels, (int, float)) and n_pixels >= 1 else None
    try:
        floor = noise_floor(array, n_pixels=n_pixels, n_surrogates=LIVE_SURROGATES).floor
    except ValueError as exc:
        log.warning("no noise floor for a two-time map: %s", exc)
        floor = np.nan
    return measure, floor, str(metadata.get("ring_label", ""))
