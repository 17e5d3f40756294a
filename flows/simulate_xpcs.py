"""Flow: two-time maps of the grain-boundary model over random draws or a grid, written to Tiled in
chunks as they are made (layout: core.data.results.xpcs_simulations)."""

from __future__ import annotations

import numpy as np
from prefect import flow, get_run_logger

from core.data.results import xpcs_simulations
from core.xpcs import simulate as gb
from core.xpcs.two_time import non_equilibrium
from flows.params import SimulateXPCSParams
from flows.progress import CancelCheck, FlowProgress
from flows.store import get_store, provenance

CHUNK_MAPS = 256  # maps per write: 4 MiB of 64² float32, a few seconds of simulation


def parameter_sets(params: SimulateXPCSParams) -> list[gb.GBParams]:
    """The run's parameter sets: ``n_maps`` draws from the seed, or the k⁴ grid."""
    ranges = params.ranges.model_dump()
    if params.grid_per_axis:
        return gb.param_grid(params.grid_per_axis, ranges)
    return gb.draw_params(params.n_maps, np.random.default_rng([params.seed, 1]), ranges)  # maps use seed's own stream


@flow(name="simulate-xpcs")
def simulate_xpcs_flow(params: SimulateXPCSParams) -> str:
    """Simulate, measure (non-equilibrium) and store the maps chunk by chunk; a cancelled run
    stops between chunks and keeps what it wrote, marked stopped."""
    log = get_run_logger()
    progress = FlowProgress("simulate XPCS")
    sets = parameter_sets(params)
    generators = gb.map_generators(params.seed, len(sets))
    sink = xpcs_simulations.simulations_writer(get_store(), {
        "name": params.name or f"{len(sets):,} GB-model maps ({params.sampling}), {params.n_frames} frames",
        "sampling": params.sampling, "ranges": params.ranges.model_dump(), "seed": params.seed,
        "n_frames": params.n_frames, "q": params.q, "dt": params.dt, "beta": params.beta, "units": gb.UNITS,
        "model": {"boundary_nm": gb.BOUNDARY_NM, "depth_nm": gb.DEPTH_NM, "n_boundaries": gb.N_BOUNDARIES,
                  "mobility_m4_per_J_s": gb.MOBILITY, "T_formed_K": gb.T_FORMED},
        "params": params.model_dump(mode="json"), **provenance(),
    })
    should_stop = CancelCheck()
    for start in range(0, len(sets), CHUNK_MAPS):
        if should_stop():
            sink.stop()
            log.warning("stopped after %d of %d maps; the partial result stays incomplete", sink.n, len(sets))
            return sink.id
        chunk = sets[start:start + CHUNK_MAPS]
        maps = gb.simulate_maps(chunk, n_frames=params.n_frames, q=params.q, dt=params.dt, beta=params.beta,
                                rng=generators[start:start + len(chunk)])
        sink.append(maps, gb.to_array(chunk), np.array([non_equilibrium(C) for C in maps]))
        progress(sink.n / len(sets), f"{sink.n:,}/{len(sets):,} maps")
    log.info("simulated %d two-time maps of %d frames", sink.n, params.n_frames)
    progress(1.0, f"stored {sink.n:,} maps", force=True)
    return sink.finish()
