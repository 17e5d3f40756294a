"""The operator's queue: bounded in frames *and* bytes, so a beamtime's memory has a ceiling.

Why both: 64 frames of 128² uint8 are 1 MiB, 64 frames of a 4k × 4k float32 detector are 4 GiB;
a frame count alone bounds nothing. A listener that finds the queue full waits
(:meth:`FrameQueue.put`), which stops it reading its socket, so ZMQ's own buffers fill and the
sender blocks: frames are held up, never dropped. One frame larger than the byte bound is still
let in when the queue is empty (refusing it would stall the stream for good).

:meth:`FrameQueue.backlog` is what the page shows: frames waiting, seconds the oldest frame not
yet on the map has waited, and the bound.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

DEFAULT_FRAMES = 64  # ~1 s at 50 frames/s: a batch of 32 being processed and the next filling
DEFAULT_BYTES = 256 * 2**20  # 256 MiB: 64 frames of 1k × 1k float32, with room to spare


def item_bytes(item: Any) -> int:
    """Bytes an item holds: a frame's array, a result batch's images; markers and errors
    count as nothing."""
    array = getattr(item, "array", getattr(item, "images", None))
    return int(getattr(array, "nbytes", 0))


class FrameQueue:
    """A FIFO of frames, errors and markers, at most ``max_frames`` items and ``max_bytes`` bytes
    (also the Tiled publisher's queue of result batches, bounded the same way).

    Parameters
    ----------
    max_frames : int, default 64
    max_bytes : int, default 256 MiB
    """

    def __init__(self, max_frames: int = DEFAULT_FRAMES, max_bytes: int = DEFAULT_BYTES):
        if not (isinstance(max_frames, int) and max_frames >= 1):
            raise ValueError(f"max_frames={max_frames!r} must be an integer >= 1")
        if not (isinstance(max_bytes, int) and max_bytes >= 1):
            raise ValueError(f"max_bytes={max_bytes!r} must be an integer >= 1")
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.max_seen = 0  # deepest the queue has been, in items
        self._items: deque[tuple[Any, int]] = deque()
        self._changed = asyncio.Condition()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def fits(self, item: Any) -> bool:
        """Whether ``put(item)`` would go through without waiting."""
        return not self._items or (len(self._items) < self.max_frames
                                   and self.nbytes + item_bytes(item) <= self.max_bytes)

    async def put(self, item: Any) -> None:
        """Append ``item``; waits while it does not fit (never drops)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.fits(item))
            size = item_bytes(item)
            self._items.append((item, size))
            self.nbytes += size
            self.max_seen = max(self.max_seen, len(self._items))
            self._changed.notify_all()

    async def get_batch(self, n: int) -> list[Any]:
        """The oldest ``n`` items (fewer if fewer wait); waits for at least one."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            taken = []
            while self._items and len(taken) < n:
                item, size = self._items.popleft()
                self.nbytes -= size
                taken.append(item)
            self._changed.notify_all()
            return taken

    def oldest_received(self) -> float | None:
        """Epoch seconds the oldest waiting frame arrived, None when no frame waits."""
        for item, _ in self._items:
            received = getattr(item, "received", None)
            if received is not None:
                return received
        return None

    def backlog(self, since: float | None = None) -> dict:
        """``{"queued", "lag_s", "bound"}``: frames waiting, seconds since the oldest frame not
        yet published arrived (the oldest waiting one, else ``since``: the oldest of the batch
        being published), and the frame bound."""
        oldest = self.oldest_received()
        oldest = since if oldest is None else oldest
        lag = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        return {"queued": self.qsize(), "lag_s": round(lag, 4), "bound": self.max_frames}
