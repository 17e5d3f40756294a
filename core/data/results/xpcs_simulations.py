"""Owner of ``xpcs_simulations/<id>``: two-time maps simulated from the grain-boundary model
(core.xpcs.simulate) with the parameters that made each one.

Layout, written as a run goes (:class:`SimulationsWriter`):
  maps        (N, T, T) float32   C(t1, t2) of each simulated map, appended in chunks
  parameters  table               one row per map, in ``maps`` order: D (nm²/s), kappa (J/m²),
                                  c, T (K), measure (core.xpcs.two_time.non_equilibrium of the map)
Metadata: sampling ("random" or "grid"), ranges (per parameter [lo, hi]), seed, n_frames, q
(nm⁻¹), dt (s), beta, units, model (the simulator's fixed constants), n_maps, status
("completed" or "stopped": then the table covers the maps written); ``complete`` only once the
run finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.store import NodeWriter, Store
from core.xpcs.simulate import PARAM_NAMES

KIND = "xpcs_simulations"
MAPS, PARAMETERS = "maps", "parameters"
MEASURE = "measure"
COLUMNS = (*PARAM_NAMES, MEASURE)  # the parameters table: D, kappa, c, T, measure


class SimulationsWriter:
    """Appends maps to the node as they are made; the parameters table is written at the end
    (:meth:`finish`, or :meth:`stop` for a run that ends early)."""

    def __init__(self, writer: NodeWriter):
        self.writer = writer
        self.rows: list[pd.DataFrame] = []

    @property
    def id(self) -> str:
        return self.writer.id

    @property
    def n(self) -> int:
        return self.writer.lengths.get(MAPS, 0)

    def append(self, maps: np.ndarray, parameters: np.ndarray, measures: np.ndarray) -> None:
        """Maps (B, T, T), their parameters (B, 4) in :data:`PARAM_NAMES` order and measures (B,)."""
        maps, parameters = np.asarray(maps), np.asarray(parameters, dtype=np.float64)
        if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or parameters.shape != (len(maps), len(PARAM_NAMES)) \
                or np.shape(measures) != (len(maps),):
            raise ValueError(f"expected maps (B, T, T), parameters (B, 4), measures (B,); got {maps.shape}, "
                             f"{parameters.shape}, {np.shape(measures)}")
        self.writer.append(MAPS, maps.astype(np.float32))
        self.rows.append(pd.DataFrame({**dict(zip(PARAM_NAMES, parameters.T)), MEASURE: np.asarray(measures, float)}))

    def _write_table(self) -> None:
        if self.rows:
            self.writer.write_table(PARAMETERS, pd.concat(self.rows, ignore_index=True))

    def finish(self, **metadata: Any) -> str:
        self._write_table()
        return self.writer.finish(n_maps=self.n, status="completed", **metadata)

    def stop(self) -> None:
        """A run stopped early: what was made stays readable, the node stays incomplete."""
        self._write_table()
        self.writer.update_metadata(n_maps=self.n, status="stopped")


def simulations_writer(store: Store, metadata: dict[str, Any]) -> SimulationsWriter:
    return SimulationsWriter(store.writer(KIND, metadata=metadata))


@dataclass(frozen=True)
class XPCSSimulations:
    """A finished simulation node without its maps (read them with :func:`read_maps`)."""

    id: str
    parameters: pd.DataFrame  # D, kappa, c, T, measure; row i describes map i
    metadata: dict

    @property
    def n(self) -> int:
        return len(self.parameters)

    @property
    def n_frames(self) -> int:
        return int(self.metadata["n_frames"])

    @property
    def q(self) -> float:
        return float(self.metadata["q"])

    @property
    def beta(self) -> float:
        return float(self.metadata["beta"])

    @property
    def sampling(self) -> str:
        return self.metadata["sampling"]

    def values(self) -> np.ndarray:
        """(N, 4) parameters in :data:`PARAM_NAMES` order, as core.xpcs.simulate.to_array gives them."""
        return self.parameters[list(PARAM_NAMES)].to_numpy(dtype=np.float64)


def read_simulations(store: Store, simulations_id: str) -> XPCSSimulations:
    """The parameters and metadata of a complete node (an incomplete one is refused)."""
    node = store.finished(KIND, simulations_id)
    return XPCSSimulations(simulations_id, node[PARAMETERS].read(), dict(node.metadata))


def read_maps(store: Store, simulations_id: str, index: Any = slice(None)) -> np.ndarray:
    """Maps (N, T, T) float32, or the rows ``index`` (an int or a slice) of them."""
    return store.array(KIND, simulations_id, MAPS, index)
