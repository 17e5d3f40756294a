"""Results live in Tiled: one project namespace, one container per kind of result.

Layout: ``/<project>/<kind>/<id>``, each node a container of named arrays and tables whose
metadata records the parameters and ids that produced it. What each kind holds, and the only
code that writes and reads it, is its owner in core.data.results; this module is the generic
access they share (ids, keys, complete-or-not, chunked appends).

The store is plain Python over the Tiled client: usable from a notebook, a flow or a callback.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

Kind = Literal["datasets", "models", "latents", "projections", "clusterings", "variations", "calibrations", "live",
               "xpcs_simulations", "xpcs_maps", "synthesis_evaluations"]
KINDS: tuple[Kind, ...] = get_args(Kind)  # a new kind of result: a word in Kind, its id prefix below
_PREFIX: dict[Kind, str] = {"datasets": "ds", "models": "m", "latents": "lat", "projections": "proj",
                            "clusterings": "cl", "variations": "var", "calibrations": "cal", "live": "live",
                            "xpcs_simulations": "xsim", "xpcs_maps": "xmap", "synthesis_evaluations": "seval"}
_SECRET_KEY = re.compile(r"(api_?key|token|password|secret)", re.IGNORECASE)
# Every id, array name and project that reaches Tiled: one path segment, so no `..` and no `/`
# (Tiled resolves both, and a crafted id would read another project's results).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
_KEY = re.compile(KEY_PATTERN)
CHUNK_BYTES = 8 * 2**20  # ~8 MiB per chunk: few requests, and a chunk fits easily in memory.


class StoreError(RuntimeError):
    """A store operation failed; the message says what to do."""


class StoreUnavailable(StoreError):
    """The Tiled server cannot be reached."""


def describe_tiled_failure(exc: Exception) -> str:
    """What went wrong talking to a server, in a few words and without its reply: a host that
    is not Tiled made the client quote its whole body (26 lines of validation errors)."""
    import httpx
    import pydantic

    response = getattr(exc, "response", None)
    if isinstance(exc, httpx.HTTPStatusError) and response is not None:
        return f"the server answered HTTP {response.status_code}"
    if isinstance(exc, httpx.TransportError):
        return f"no connection ({type(exc).__name__})"
    if isinstance(exc, (pydantic.ValidationError, ValueError)):  # parsing the reply quotes it
        return f"{type(exc).__name__}: the server did not answer as a Tiled server does"
    first_line = str(exc).strip().split("\n", 1)[0][:200]  # the client's own words
    return f"{type(exc).__name__}: {first_line}"


def check_key(value: Any, what: str = "id") -> str:
    """Return ``value`` when it is a safe Tiled key (:data:`KEY_PATTERN`), else raise ValueError."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise ValueError(
            f"{what}={value!r} is not a valid key: use 1-128 letters, digits, '-' or '_', "
            "starting with a letter or digit (as in the ids Morphospace makes, ds-2026...)"
        )
    return value


def new_id(kind: Kind) -> str:
    """Sortable to the millisecond, unique, readable: ``ds-20261122T021501042-3f9a1c`` (ms last).

    (Whole seconds were not enough: results made in the same second listed in random order.)
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")[:-3]
    return f"{_PREFIX[kind]}-{stamp}-{uuid.uuid4().hex[:6]}"


def clean_metadata(value: Any) -> Any:
    """Make metadata JSON/msgpack-safe and drop anything that looks like a secret."""
    if isinstance(value, Mapping):
        return {
            str(k): clean_metadata(v)
            for k, v in value.items()
            if not _SECRET_KEY.search(str(k))
        }
    if isinstance(value, (list, tuple)):
        return [clean_metadata(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean_metadata(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def frames_per_chunk(frame_shape: tuple[int, ...], itemsize: int = 4) -> int:
    return max(1, CHUNK_BYTES // (int(np.prod(frame_shape)) * itemsize))


@dataclass
class Store:
    """Project-scoped access to a Tiled server.

    Build it with :meth:`from_uri` (a server by URL), :meth:`from_settings` or
    :meth:`from_client` (an existing client, e.g. an in-process test server).
    """

    root: Any  # tiled.client.container.Container at the server root
    project: str = "default"
    _nodes: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_key(self.project, "project")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_uri(cls, uri: str, *, api_key: str | None = None, project: str = "default") -> Store:
        import httpx
        from tiled.client import from_uri

        try:
            # One quick probe: the client itself retries a dead server for ~25 s.
            httpx.get(uri, timeout=5, trust_env=False)
            root = from_uri(uri, api_key=api_key)
        except Exception as exc:  # httpx.ConnectError, auth errors, bad URLs ...
            raise StoreUnavailable(
                f"Tiled at {uri.split('?')[0]} is not reachable ({describe_tiled_failure(exc)}). "
                "Start it with `morphospace demo`, or set MORPHOSPACE_TILED_URI and "
                "MORPHOSPACE_TILED_API_KEY (the API key) to a running server."
            ) from None  # the chained error may quote the server's reply
        return cls(root, project)

    @classmethod
    def from_client(cls, client: Any, *, project: str = "default") -> Store:
        return cls(client, project)

    @classmethod
    def from_settings(cls, settings: Any) -> Store:
        if not settings.tiled_uri:
            raise StoreUnavailable(
                "No Tiled server configured: set MORPHOSPACE_TILED_URI, or run `morphospace demo`, "
                "which starts one and passes its address on."
            )
        return cls.from_uri(
            settings.tiled_uri, api_key=settings.resolved_tiled_api_key(), project=settings.project
        )

    # -- generic nodes ---------------------------------------------------------------------
    def _container(self, kind: Kind) -> Any:
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} must be one of {KINDS}")
        if kind not in self._nodes:
            project = self._child_container(self.root, self.project, {"morphospace": "project"})
            self._nodes[kind] = self._child_container(project, kind, {})
        return self._nodes[kind]

    @staticmethod
    def _child_container(parent: Any, key: str, metadata: dict) -> Any:
        if key in parent:
            return parent[key]
        try:
            return parent.create_container(key, metadata=metadata)
        except Exception:
            # Another process may have created it between our check and our create.
            if key in parent:
                return parent[key]
            raise

    def node(self, kind: Kind, id: str) -> Any:
        container = self._container(kind)
        check_key(id, f"{kind[:-1]} id")
        try:
            return container[id]
        except KeyError:
            raise StoreError(
                f"No {kind[:-1]} {id!r} in project {self.project!r}. "
                f"Known: {', '.join(list(container)[-5:]) or 'none'}"
            ) from None

    def exists(self, kind: Kind, id: str) -> bool:
        return check_key(id, f"{kind[:-1]} id") in self._container(kind)

    def list(self, kind: Kind, *, incomplete: bool = False) -> list[dict]:
        """Every node of a kind as ``{"id": ..., **metadata}``, newest first.

        Nodes still being written, or left half-written by a run that failed, are hidden unless
        ``incomplete=True``: nothing should offer them as an input.
        """
        container = self._container(kind)
        items = [{"id": key, **dict(node.metadata)} for key, node in container.items()]
        if not incomplete:
            items = [item for item in items if item.get("complete") is not False]
        return sorted(items, key=lambda item: item["id"].split("-", 1)[-1], reverse=True)

    def finished(self, kind: Kind, id: str) -> Any:
        """The node, refused (StoreError) when it is not complete: the one check every read of
        an input goes through, so no flow trains on or encodes a half-stored result."""
        node = self.node(kind, id)
        meta = node.metadata
        if meta.get("complete") is False:
            why = f" ({meta['error']})" if meta.get("error") else ""
            raise StoreError(
                f"{kind[:-1]} {id!r} is incomplete: the run that wrote it stopped or failed"
                f"{why}. Run that step again and use the new result."
            )
        return node

    def count_complete(self, kind: Kind) -> int:
        """How many finished results of a kind there are: one small request, for polling."""
        from tiled.queries import Key

        return len(self._container(kind).search(Key("complete") == True))  # noqa: E712 (a query)

    def metadata(self, kind: Kind, id: str) -> dict:
        return dict(self.node(kind, id).metadata)

    def update_metadata(self, kind: Kind, id: str, **changes: Any) -> None:
        node = self.node(kind, id)
        node.update_metadata(metadata=clean_metadata(changes))

    def put(
        self,
        kind: Kind,
        *,
        arrays: Mapping[str, np.ndarray] = {},
        tables: Mapping[str, pd.DataFrame] = {},
        metadata: Mapping[str, Any] = {},
        id: str | None = None,
    ) -> str:
        """Write a node of named arrays and tables; returns its id.

        The node is marked ``complete`` only after every child is written, so a reader never
        mistakes a half-written result for a finished one.
        """
        id = check_key(id, f"{kind[:-1]} id") if id else new_id(kind)
        meta = {"created": dt.datetime.now(dt.timezone.utc).isoformat(), **metadata}
        node = self._container(kind).create_container(
            id, metadata=clean_metadata({**meta, "complete": False})
        )
        for name, array in arrays.items():
            node.write_array(np.ascontiguousarray(array), key=name)
        for name, table in tables.items():
            node.write_table(table, key=name)
        node.update_metadata(metadata={"complete": True})
        log.info("stored %s/%s/%s", self.project, kind, id)
        return id

    def array(self, kind: Kind, id: str, name: str, index: Any = slice(None)) -> np.ndarray:
        return np.asarray(self.child(kind, id, name)[index])

    def table(self, kind: Kind, id: str, name: str) -> pd.DataFrame:
        return self.child(kind, id, name).read()

    def child(self, kind: Kind, id: str, name: str) -> Any:
        """A named array or table of a finished node, as Tiled's lazy client (slice it to read)."""
        node = self.finished(kind, id)
        check_key(name, "array name")
        try:
            return node[name]
        except KeyError:
            raise StoreError(f"{kind[:-1]} {id!r} has no {name!r}; it holds: {', '.join(node) or 'nothing'}") from None

    def array_names(self, kind: Kind, id: str) -> list[str]:
        return list(self.node(kind, id))

    # -- nodes written piece by piece ------------------------------------------------------
    def writer(self, kind: Kind, *, metadata: Mapping[str, Any], id: str | None = None) -> NodeWriter:
        """A node written piece by piece (see :class:`NodeWriter`)."""
        return NodeWriter(self, kind, check_key(id) if id else new_id(kind), dict(metadata))


class NodeWriter:
    """Write one result node piece by piece, then :meth:`finish` it.

    For results made as a flow goes (ingested frames, sampled variations): arrays grow by
    :meth:`append` (memory bounded by one batch, chunks of ~8 MiB), small pieces are written
    whole, and the node is marked ``complete`` only in :meth:`finish`, so a reader never takes
    a half-written (or stopped) result for a finished one.
    """

    def __init__(self, store: Store, kind: Kind, id: str, metadata: dict):
        self.store, self.kind, self.id, self.metadata = store, kind, id, metadata
        self.lengths: dict[str, int] = {}
        self._node = None
        self._arrays: dict[str, Any] = {}

    @property
    def node(self) -> Any:
        if self._node is None:
            meta = {"created": dt.datetime.now(dt.timezone.utc).isoformat(), **self.metadata, "complete": False}
            self._node = self.store._container(self.kind).create_container(self.id, metadata=clean_metadata(meta))
        return self._node

    def append(self, name: str, batch: np.ndarray) -> None:
        """Add rows to array ``name`` (created by the first batch; later batches match its shape)."""
        batch = np.ascontiguousarray(batch)
        if batch.ndim < 1 or len(batch) == 0:
            raise ValueError(f"expected a non-empty batch for {name!r}, got shape {batch.shape}")
        if name not in self._arrays:
            import dask.array as da

            chunks = (frames_per_chunk(batch.shape[1:], batch.dtype.itemsize),) + batch.shape[1:]
            self._arrays[name] = self.node.write_array(da.from_array(batch, chunks=chunks), key=name)
            self.lengths[name] = 0
        else:
            shape = tuple(self._arrays[name].shape[1:])
            if batch.shape[1:] != shape:
                raise ValueError(f"rows of shape {batch.shape[1:]} do not match {name!r}'s {shape}")
            self._arrays[name].patch(batch, offset=self.lengths[name], extend=True)
        self.lengths[name] += len(batch)

    def write_array(self, name: str, array: np.ndarray) -> None:
        self.node.write_array(np.ascontiguousarray(array), key=name)

    def write_table(self, name: str, table: pd.DataFrame) -> None:
        self.node.write_table(table.reset_index(drop=True), key=name)

    def update_metadata(self, **metadata: Any) -> None:
        """Progress notes on an unfinished node (e.g. how far a run got before it stopped)."""
        self.node.update_metadata(metadata=clean_metadata(metadata))

    def abandon(self, reason: str) -> None:
        """Mark a node that will never be finished (the run failed): it stays incomplete, hidden
        from :meth:`Store.list` and refused as an input, with the reason for whoever looks."""
        if self._node is not None:
            self.node.update_metadata(metadata=clean_metadata({"status": "failed", "error": reason[:500]}))

    def finish(self, **metadata: Any) -> str:
        self.node.update_metadata(metadata=clean_metadata({**metadata, "complete": True}))
        log.info("stored %s/%s/%s", self.store.project, self.kind, self.id)
        return self.id
