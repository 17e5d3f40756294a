"""Replay a real frame series as if a detector were producing it, over ZMQ or into a folder.

So live mode can be shown and tested without a beamline: ``morphospace simulate`` loads a series
(an ``.npz``/``.npy`` stack, or any file or folder :mod:`core.data.imageio` reads), optionally turns
it into sliding two-time correlation maps, one per |q| ring (:mod:`core.xpcs.rings`,
:func:`core.xpcs.two_time.two_time_rings`), and sends it at a chosen rate (or appends it to a Tiled array, :func:`replay_tiled`).
Over ZMQ each two-time map says what it is in its metadata (:data:`TWO_TIME_METADATA`, its ring and
pixel count), so the live operator adds its non-equilibrium measure and noise floor; a folder of
``.npy`` files carries no metadata.

Pacing is against a monotonic schedule (frame i leaves at ``start + i / rate``), so a slow send
does not stretch the whole replay (a stall longer than a frame restarts the schedule instead of
bursting); waits go through ``stop.wait`` so a replay stops at once.
Progress goes to a plain ``progress(done, total)`` callback.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.data.imageio import iter_array_frames, read_frames, resolve_sources
from core.xpcs.rings import Rings, default_rings, detector_mask
from core.xpcs.two_time import two_time_rings
from streaming.messages import TWO_TIME, end_parts, frame_to_parts

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
TWO_TIME_METADATA = {"kind": TWO_TIME}  # what each frame of a two-time series says it is
QUEUED_FRAMES = 8  # frames a ZMQ socket holds for a pipeline that is not there (yet)


def load_series(path: str | Path) -> np.ndarray:
    """A frame stack (N, H, W[, C]) from an npz/npy stack, an image file or a folder of them."""
    path = Path(path).expanduser().resolve()
    root = path if path.is_dir() else path.parent
    frames = [frame for source in resolve_sources(path, [root])
              for frame, _ in read_frames(source)]
    shapes = {frame.shape for frame in frames}
    if len(shapes) != 1:
        raise ValueError(f"{str(path)!r} holds frames of {len(shapes)} different shapes "
                         f"({sorted(shapes)[:3]}); replay one series at a time")
    return np.stack(frames)


def two_time_series(frames: np.ndarray, window: int, step: int | None = None,
                    rings: Rings | None = None, *, device: str = "auto") -> tuple[np.ndarray, list[dict]]:
    """Sliding two-time maps, one per ring and window, and what each map is.

    Windows of ``window`` frames start every ``step`` (default ``window``) frames; each gives
    one map per ring (:func:`core.xpcs.two_time.two_time_rings`, on the device). Without
    ``rings``, :func:`core.xpcs.rings.default_rings` around the frame centre, with the
    detector's negative and non-finite pixels masked. Returns the maps (M, window, window)
    float32, window by window and ring by ring within a window, and per map its metadata:
    :data:`TWO_TIME_METADATA` plus the ring (``Rings.describe``) and the window's first frame.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(f"two-time maps need a stack of grey frames (T, H, W), not {frames.shape}")
    step = step or window
    if not 2 <= window <= len(frames) or step < 1:
        raise ValueError(f"window={window} must be between 2 and the series' {len(frames)} frames, "
                         f"step={step} at least 1")
    rings = rings if rings is not None else default_rings(frames.shape[1:], mask=detector_mask(frames))
    maps, metadata = [], []
    for start in range(0, len(frames) - window + 1, step):
        maps.append(two_time_rings(frames[start:start + window], rings, device=device))
        metadata += [{**TWO_TIME_METADATA, **rings.describe(i), "start": start}
                     for i in range(len(rings))]
    return np.concatenate(maps).astype(np.float32), metadata


class _Pacer:
    def __init__(self, rate: float | None, stop: threading.Event):
        if rate is not None and not rate > 0:
            raise ValueError(f"rate={rate!r} must be > 0 frames per second, or None for as fast as possible")
        self.rate, self.stop = rate, stop
        self.start = time.monotonic()

    def wait(self, i: int) -> bool:
        """Wait for frame i's slot; False when asked to stop.

        After a long stall (no pipeline to take frames) the schedule restarts from now, so the
        frames that would have left meanwhile do not go out in one burst.
        """
        if self.rate is not None:
            behind = time.monotonic() - (self.start + i / self.rate)
            if behind > 1.0 / self.rate:
                self.start += behind
            self.stop.wait(max(0.0, self.start + i / self.rate - time.monotonic()))
        return not self.stop.is_set()


def replay_zmq(
    frames: np.ndarray,
    address: str,
    *,
    rate: float | None = None,
    kind: Literal["push", "pub"] = "push",
    bind: bool = False,
    source: str | None = None,
    start_index: int = 0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    timeout: float | None = 30.0,
    end: bool = True,
    metadata: dict | Sequence[dict] | None = None,
) -> int:
    """Send each frame as a two-part ZMQ message, then (``end``) an end marker; returns frames sent.

    PUSH (default) waits for the pipeline when it is behind, so nothing is lost; ``timeout``
    seconds without being able to send ends the replay with TimeoutError (None: wait for one
    as long as it takes, as a demo waits for Live to be switched on). At most
    :data:`QUEUED_FRAMES` wait in the socket, so a pipeline that connects late gets a few recent
    frames, not a backlog. ``bind=False`` connects to a pipeline that binds (its default).
    ``metadata`` goes with every frame (e.g. :data:`TWO_TIME_METADATA`), or a list gives one
    per frame (a two-time series' rings).
    """
    import zmq

    stop = stop or threading.Event()
    pacer = _Pacer(rate, stop)
    source = source or address
    context = zmq.Context()  # its own, never an asyncio one (see streaming.listeners)
    socket = context.socket(zmq.PUSH if kind == "push" else zmq.PUB)
    socket.setsockopt(zmq.SNDHWM, QUEUED_FRAMES)
    socket.setsockopt(zmq.LINGER, int((timeout or 30.0) * 1000))  # let queued frames leave on close
    (socket.bind if bind else socket.connect)(address)
    sent = 0
    try:
        for i, frame in enumerate(iter_array_frames(frames)):
            if not pacer.wait(i):
                break
            meta = metadata if metadata is None or isinstance(metadata, dict) else metadata[i]
            _send(socket, frame_to_parts(start_index + i, frame, source, meta), stop, timeout)
            sent += 1
            if progress is not None:
                progress(sent, len(frames))
        if end and not stop.is_set():
            _send(socket, end_parts(sent), stop, timeout)
    finally:
        socket.close()  # waits up to `timeout` (LINGER) for queued frames to leave
        context.term()
    return sent


def _send(socket, parts: list[bytes], stop: threading.Event, timeout: float | None) -> None:
    import zmq

    deadline = None if timeout is None else time.monotonic() + timeout
    while not socket.poll(100, zmq.POLLOUT):  # short polls so a stop request is seen
        if stop.is_set():
            return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"no pipeline took a frame for {timeout:g} s; is `morphospace live` running?")
    socket.send_multipart(parts)


def replay_tiled(
    frames: np.ndarray,
    container: Any,
    key: str,
    *,
    rate: float | None = None,
    block: int = 50,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Any:
    """Append each frame, at its time, to a growing array ``key`` (N, H, W) in a Tiled container.

    A detector whose frames land in Tiled (the ``tiled+http://`` source of ``morphospace live``):
    the frames stay there, so a live operator that restarts loses none. Frames due while a write
    is in flight go up together. The first write waits for ``block`` frames, because the first
    write fixes the array's chunk length (one chunk file per ``block`` frames). A write that fails
    (Tiled restarting) is tried again with the frames due since; a write is a patch at a fixed
    offset, so repeating one whose answer was lost rewrites the same rows. Returns the array node.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate={rate!r} must be > 0 frames per second, or None for as fast as possible")
    stop = stop or threading.Event()
    state = {"node": None, "written": 0}
    due: list[np.ndarray] = []

    def write() -> bool:
        try:
            stack = np.stack(due)  # (n, H, W)
            if state["node"] is None:
                state["node"] = container.write_array(stack, key=key)
            else:
                state["node"].patch(stack, offset=state["written"], extend=True)
        except Exception as exc:  # noqa: BLE001  Tiled restarting: keep the frames, try again
            log.warning("writing %d frames to Tiled failed (%s); trying again", len(due), exc)
            return False
        state["written"] += len(due)
        due.clear()
        if progress is not None:
            progress(state["written"], len(frames))
        return True

    n, i, start = len(frames), 0, time.monotonic()
    first = min(block, n)
    while i < n and not stop.is_set():
        # A detector does not wait for a slow write: every frame whose time has come is due.
        until = n if rate is None else min(n, int((time.monotonic() - start) * rate) + 1)
        until = min(until, i + block) if rate is None else until
        due.extend(np.asarray(frames[k]) for k in range(i, until))
        i = until
        if due and (state["node"] is not None or len(due) >= first) and not write():
            stop.wait(0.2)  # Tiled is down: the frames wait here, more join them
        elif rate is not None and i < n:
            stop.wait(max(0.0, start + i / rate - time.monotonic()))
    while due and not write():  # the last frames, once Tiled answers again
        if stop.wait(0.5):
            break
    return state["node"]


def replay_folder(
    frames: np.ndarray,
    folder: str | Path,
    *,
    rate: float | None = None,
    prefix: str = "frame",
    start_index: int = 0,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Write each frame as ``<prefix>_<index:06d>.npy`` the way a careful detector does: into a
    hidden ``.part`` file first, renamed when complete (a watcher never sees half a frame)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    pacer = _Pacer(rate, stop)
    sent = 0
    for i, frame in enumerate(iter_array_frames(frames)):
        if not pacer.wait(i):
            break
        name = f"{prefix}_{start_index + i:06d}.npy"
        part = folder / f".{name}.part"
        with open(part, "wb") as f:
            np.save(f, frame)
        os.replace(part, folder / name)
        sent += 1
        if progress is not None:
            progress(sent, len(frames))
    return sent
