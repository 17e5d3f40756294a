"""Live sessions in Tiled: appendable tables that grow as frames are placed on the map.

Layout: ``/<project>/live/<session>`` is a container whose metadata records what produced the
points (projection, clustering, model, dataset, preprocessing), with two appendable tables and
one growing array:

    points   index, patch, source, batch, row, x, y[, z], cluster, non_equilibrium,
             received, processed, noise_floor, ring
    errors   index, source, reason, received, batch     (created with the first error)
    images   (rows, [C,] S, S) float32: the preprocessed images the model saw

``index`` is the producer's frame number, ``batch`` the websocket batch number, so a browser
that missed batches ``a..b`` reads the rows (and the errors) with ``a <= batch <= b``. ``row`` is the point's
row in ``images``: the operator numbers images as it makes them and each batch's images are
written at their rows, so the link holds whatever order the table's rows are in (and a retried
write lands on the same rows). ``non_equilibrium`` is :func:`core.xpcs.two_time.non_equilibrium` of a
frame that is a two-time map, NaN for other frames; ``noise_floor`` its
:func:`core.xpcs.noise.noise_floor` (the map is significantly non-equilibrium above it) and
``ring`` the ring it averages ("q 0.1–0.2 nm⁻¹", "r 5–10 px"; "" for other frames). Times are
epoch seconds.

``images`` is created with chunks of :data:`IMAGE_CHUNK_BYTES` however small the first batch:
Zarr keeps the first chunk shape for good, and a chunk per batch of one frame would make a
selection's read touch thousands of files. So the array is at least one chunk long: rows that
no point names yet read as zeros, and only the ``row`` column says which rows hold frames.

Appendable tables live in the server's SQL storage (``create_appendable_table``) and grow with
``append_partition``; a ``write_table`` (Parquet) node cannot grow. Rows go up as a
``pyarrow.Table`` with the declared schema: a pandas frame would be sent with its index as an
extra ``__index_level_0__`` column, which the server refuses.
"""

from __future__ import annotations

import builtins
import datetime as dt
import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from core.data.store import Store, StoreError, clean_metadata, new_id

# Tiled imports its table client, and dask.dataframe with it, when a process first meets a
# table: ~0.7 s here, which a web process paid inside its first lasso over live points (1.1 s
# against 0.2 s for the next ones, bench/lasso_steps.py). Every reader of this module reads or
# writes tables, so it pays that once, when it is imported.
importlib.import_module("tiled.client.dataframe")

log = logging.getLogger(__name__)

LIVE = "live"
AXES = ("x", "y", "z")
IMAGES = "images"
# One Zarr chunk of live images: a batch's write rewrites the chunk it falls in, so chunks stay
# small (1 MiB: 256 images of 32x32) while a 5,000-image selection is still only ~20 chunks.
IMAGE_CHUNK_BYTES = 2**20


def new_session_id() -> str:
    """Sortable and unique, like every stored id: ``live-20261122T021501042-3f9a1c``."""
    return new_id(LIVE)


# One read of a session table at a time from this process: a second guard beside
# app.tiled_server.serialize_table_access (SimpleTiledServer's DuckDB tables share one connection
# across request threads; concurrent reads and appends failed, and crashed the server).
_TABLE_READS = threading.Lock()
KEPT_SESSIONS = 8  # sessions :meth:`LiveSession.kept` holds open per process (the newest ones)
_KEPT: dict[tuple[int, str], LiveSession] = {}


def points_schema(n_components: int) -> pa.Schema:
    return pa.schema(
        [("index", pa.int64()), ("patch", pa.int32()), ("source", pa.string()),
         ("batch", pa.int64()), ("row", pa.int64())]
        + [(axis, pa.float32()) for axis in AXES[:n_components]]
        + [("cluster", pa.int32()), ("non_equilibrium", pa.float64()),
           ("received", pa.float64()), ("processed", pa.float64()),
           ("noise_floor", pa.float64()), ("ring", pa.string())]
    )


# Columns a session stored before they existed reads as: no image row, no XPCS measure.
LATER_COLUMNS = {"row": -1, "non_equilibrium": np.nan, "noise_floor": np.nan, "ring": ""}
XPCS_COLUMNS = ("noise_floor", "ring")  # a frame that is no two-time map has none


ERRORS_SCHEMA = pa.schema([("index", pa.int64()), ("source", pa.string()),
                           ("reason", pa.string()), ("received", pa.float64()),
                           ("batch", pa.int64())])


@dataclass
class LiveSession:
    """One live session's node; build with :meth:`create` or :meth:`open`."""

    store: Store
    id: str
    node: Any  # tiled container client
    _tables: dict[str, Any] = field(default_factory=dict, repr=False)  # table and array clients

    @classmethod
    def create(cls, store: Store, *, n_components: int, metadata: Mapping[str, Any],
               id: str | None = None) -> LiveSession:
        if n_components not in (2, 3):
            raise ValueError(f"n_components={n_components!r} must be 2 or 3")
        live = _live_container(store)
        if id is not None and id in live:  # a generated id is unique: no need to ask
            raise StoreError(f"live session {id!r} already exists in project {store.project!r}")
        id = id or new_session_id()
        meta = {"created": dt.datetime.now(dt.timezone.utc).isoformat(),
                "n_components": n_components, **metadata}
        node = live.create_container(id, metadata=clean_metadata(meta))
        node.create_appendable_table(points_schema(n_components), key="points")
        return cls(store, id, node)  # the errors table is made with the first error

    @classmethod
    def open(cls, store: Store, id: str) -> LiveSession:
        live = _live_container(store)
        if id not in live:
            raise StoreError(
                f"No live session {id!r} in project {store.project!r}. "
                f"Known: {', '.join(list(live)[-5:]) or 'none'}"
            )
        return cls(store, id, live[id])

    @classmethod
    def kept(cls, store: Store, id: str) -> LiveSession:
        """:meth:`open` with its points table looked up, once per store and session in this
        process: a page's lassos and gap fills then read it in one request, not after eight
        lookups (~0.1 s, more under load). An appendable table's client reads every row appended since."""
        key = (builtins.id(store), id)
        live = _KEPT.get(key)
        if live is None or live.store is not store:  # an id of a store since collected
            live = _KEPT[key] = cls.open(store, id)
            live._table("points")
            while len(_KEPT) > KEPT_SESSIONS:
                del _KEPT[next(iter(_KEPT))]
        return live

    @staticmethod
    def exists(store: Store, id: str) -> bool:
        return id in _live_container(store)

    @property
    def path(self) -> str:
        return f"/{self.store.project}/{LIVE}/{self.id}"

    @property
    def n_components(self) -> int:
        return int(self.node.metadata["n_components"])

    def append_points(self, rows: Mapping[str, Any]) -> None:
        """Append rows given as columns (the names of :func:`points_schema`; the XPCS columns of
        :data:`LATER_COLUMNS` may be left out: no measure for these frames)."""
        n = len(rows["index"])
        rows = {**{name: [default] * n for name, default in LATER_COLUMNS.items()
                   if name in XPCS_COLUMNS}, **rows}
        self._append("points", rows, points_schema(self.n_components))

    def append_errors(self, rows: Mapping[str, Any]) -> None:
        """Append rows given as columns (:data:`ERRORS_SCHEMA`'s; ``batch``, the batch that
        reported the error, may be left out: -1)."""
        self._append("errors", {"batch": [-1] * len(rows["index"]), **rows}, ERRORS_SCHEMA)

    def put_images(self, rows: np.ndarray, images: np.ndarray) -> None:
        """Write preprocessed images (n, [C,] S, S) at consecutive ``rows`` of ``images``.

        Writing the same rows again rewrites them (a retried write), so a row number is a
        stable address for its image.
        """
        rows = np.asarray(rows, dtype=np.int64)
        images = np.ascontiguousarray(images, dtype=np.float32)
        if len(rows) != len(images):
            raise ValueError(f"{len(rows)} rows for {len(images)} images")
        if not len(rows):
            return
        if rows[0] < 0 or not np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
            raise ValueError(f"image rows must be consecutive and >= 0, got {rows[:5].tolist()}...")
        self._images_for(images.shape[1:]).patch(images, offset=int(rows[0]), extend=True)

    def _images_for(self, shape: tuple[int, ...]) -> Any:
        """The ``images`` array client, created (see the module docstring) on first use."""
        if IMAGES not in self._tables:
            self._tables[IMAGES] = (self.node[IMAGES] if IMAGES in self.node
                                    else _create_images(self.node, shape))
        client = self._tables[IMAGES]
        if tuple(client.shape[1:]) != tuple(shape):
            raise ValueError(f"images of shape {tuple(shape)} where this session stores "
                             f"{tuple(client.shape[1:])}")
        return client

    @property
    def images(self) -> Any:
        """The ``images`` array client; the points table's ``row`` column indexes it."""
        if IMAGES not in self.node:
            raise StoreError(f"live session {self.id!r} stores no images (it predates them, "
                             "or no frame has been placed yet)")
        return self.node[IMAGES]

    def _append(self, name: str, rows: Mapping[str, Any], schema: pa.Schema) -> None:
        """Append to table ``name``, made with ``schema`` on first use. A table stored before
        a column existed (a resumed older session) keeps its columns: the new one is left out,
        and reads as its default (:meth:`points`, :meth:`errors`)."""
        if not len(rows["index"]):
            return
        if name not in self._tables:
            self._tables[name] = (self.node[name] if name in self.node
                                  else self.node.create_appendable_table(schema, key=name))
        node = self._tables[name]
        schema = pa.schema([field for field in schema if field.name in node.columns])
        node.append_partition(0, pa.table({col: rows[col] for col in schema.names}, schema=schema))

    def points(self) -> pd.DataFrame:
        """The points table, with :data:`LATER_COLUMNS` filled in for older sessions."""
        with _TABLE_READS:
            table = self._table("points").read()
        for name, default in LATER_COLUMNS.items():
            if name not in table:
                table[name] = default
        return table

    def columns(self, name: str, columns: list[str]) -> dict[str, np.ndarray]:
        """Some columns of the ``points`` or ``errors`` table as arrays (empty when it holds
        nothing): what a resumed operator, a retried append and a lasso need, without reading
        them all (a beamtime's table has ~10^5 rows). :data:`LATER_COLUMNS` an older session
        lacks read as their defaults."""
        schema = points_schema(self.n_components) if name == "points" else ERRORS_SCHEMA
        with _TABLE_READS:
            node = self._table(name)
            stored = [c for c in columns if node is not None and c in node.columns]
            table = node.read(stored) if stored else None
        if table is None or not len(table):
            return {c: np.zeros(0, schema.field(c).type.to_pandas_dtype()) for c in columns}
        return {c: table[c].to_numpy() if c in table else np.full(len(table), LATER_COLUMNS[c])
                for c in columns}

    def _table(self, name: str) -> Any:
        """The client of table ``name``, kept once found (None while it does not exist)."""
        if name not in self._tables and name in self.node:
            self._tables[name] = self.node[name]
        return self._tables.get(name)

    def errors(self) -> pd.DataFrame:
        """The errors table (``batch`` -1 in a session stored before errors had one)."""
        node = self._table("errors")
        if node is None:
            return ERRORS_SCHEMA.empty_table().to_pandas()
        with _TABLE_READS:
            table = node.read()
        if "batch" not in table:
            table["batch"] = -1
        return table

    def update_metadata(self, **changes: Any) -> None:
        self.node.update_metadata(metadata=clean_metadata(changes))


def keep_open(get_store: Callable[[], Store], id: str) -> threading.Thread:
    """Look session ``id`` up for :meth:`LiveSession.kept` in a background thread, when a page
    starts showing it: its first lasso then reads the table at once (the lookups took 0.25-0.8 s
    at load 6-8). Never delays nor fails the caller: a failure is logged, and the lasso looks
    the session up itself."""

    def look_up() -> None:
        try:
            LiveSession.kept(get_store(), id)
        except Exception as exc:  # noqa: BLE001  Tiled down, no such session: the lasso says so
            log.info("could not look up live session %s ahead of a lasso: %s", id, exc)

    thread = threading.Thread(target=look_up, name=f"keep-open-{id}", daemon=True)
    thread.start()
    return thread


def list_sessions(store: Store) -> list[dict]:
    """Every live session as ``{"id": ..., **metadata}``, newest first."""
    live = _live_container(store)
    items = [{"id": key, **dict(node.metadata)} for key, node in live.items()]
    return sorted(items, key=lambda item: item["id"], reverse=True)


def _create_images(node: Any, shape: tuple[int, ...]) -> Any:
    """An empty ``images`` array of one chunk; Zarr's fill value (0) stands in until written."""
    from tiled.structures.array import ArrayStructure, BuiltinDtype
    from tiled.structures.core import StructureFamily
    from tiled.structures.data_source import DataSource

    per_chunk = max(1, IMAGE_CHUNK_BYTES // (4 * int(np.prod(shape))))
    structure = ArrayStructure(
        shape=(per_chunk, *shape), chunks=((per_chunk,), *((n,) for n in shape)),
        data_type=BuiltinDtype.from_numpy_dtype(np.dtype(np.float32)))
    return node.new(StructureFamily.array,
                    [DataSource(structure=structure, structure_family=StructureFamily.array)],
                    key=IMAGES)


def _live_container(store: Store) -> Any:
    """The project's ``live`` container, found (or made) once per store like every kind's: it
    was looked up anew, four requests, before every open, check and listing of a session."""
    return store._container(LIVE)
