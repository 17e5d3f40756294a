"""Flow: Cahn–Hilliard phase separation over a (φ0, χ) grid → a dataset (core.data.cahn_hilliard)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from core.data import cahn_hilliard as ch
from core.data.ingest import ingest_array
from core.data.preprocess import PreprocessParams
from flows.params import SimulateCHParams
from flows.progress import FlowProgress
from flows.store import get_store, provenance

# φ is a volume fraction in [0, 1] already: no clipping or per-frame min-max, which would blow an
# early, nearly uniform frame's 0.02 fluctuation up to full contrast.
AS_IS = PreprocessParams(size=None, clip_percentiles=None, normalize=False)


@flow(name="simulate-cahn-hilliard")
def simulate_ch_flow(params: SimulateCHParams) -> str:
    """Simulate every run of the grid and store its snapshots with (run, phi0, chi, t) per frame."""
    log = get_run_logger()
    progress = FlowProgress("simulate Cahn–Hilliard")
    core = params.core()
    frames, table = ch.simulate(core)
    progress(0.8, f"simulated {len(frames):,} frames", force=True)
    result = ingest_array(
        frames, get_store(), AS_IS,
        name=params.name or (f"Cahn–Hilliard, {len(core.runs)} runs (φ0 {min(core.phis):g}–{max(core.phis):g}, "
                             f"χ {min(core.chis):g}–{max(core.chis):g}) × {core.n_snapshots} snapshots"),
        source_label="cahn-hilliard", frame_metadata=table,
        metadata={"simulation": ch.describe(core), **provenance()},
    )
    log.info("dataset %s: %d frames of %d runs", result.dataset_id, result.n_frames, len(core.runs))
    progress(1.0, f"{result.n_frames:,} frames", force=True)
    return result.dataset_id
