"""Flow parameters: one pydantic model per flow, so bad input is refused before any worker starts.

These models are the one place for parameter rules: bounds, defaults, descriptions and choices
(``Literal``). The CLI's options (``app.cli``) and the page's forms (``components.job_forms``) are
built from them through :func:`rule`; bounds core checks too come from ``core.limits``, shared by
both sides. The submit helpers build these models on the caller's side, and Prefect checks them
again on the worker.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

from core.data.imageio import split_api_key
from core.data.cahn_hilliard import CHParams
from core.data.ingest import TILED_PREFIXES
from core.data.preprocess import PreprocessParams
from core.data.store import KEY_PATTERN
from core.data.results.datasets import PhysicalScale
from core.limits import (BASE_CHANNELS, BATCH_SIZE, ENTROPY_MAX, EPOCHS, FC_HIDDEN, FRAME_INTERVAL_MAX,
                         INTENSITY_MAX, IOU_MIN, LATENT_DIM, LR_MAX, N_CRITIC, N_MEMBERS, N_PER_REFERENCE,
                         PIXEL_SIZE_MAX, PIXEL_UNITS, XPCS_FRAMES, XPCS_MAPS, XPCS_SIDE)
from core.synthesis.paths import STEPS_RANGE
from core.variations.filters import DEFAULT_PRESET, PRESETS, FilterParams
from core.xpcs import simulate as gb

# An id of a stored result, checked by the store's one pattern before a run is even created.
ResultId = Annotated[str, Field(pattern=KEY_PATTERN, description="Id of a stored result, e.g. ds-2026...")]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- what a field accepts, for the CLI's options and the page's forms ------------------------------
def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def bounds_words(lo: tuple[str, float] | None, hi: tuple[str, float] | None, *, whole: bool) -> str:
    """Bounds as a scientist says them: 'a whole number between 2 and 200', 'more than 0 and at
    most 1', 'at least 0'; ``lo``/``hi`` are ('at least' | 'more than', v) and ('at most' |
    'less than', v)."""
    if lo and hi and lo[0] == "at least" and hi[0] == "at most":
        text = f"between {_number(lo[1])} and {_number(hi[1])}"
    else:
        text = " and ".join(f"{bound[0]} {_number(bound[1])}" for bound in (lo, hi) if bound)
    return f"a whole number {text}".strip() if whole else text


@dataclass(frozen=True)
class Rule:
    """What one parameter accepts, read from its model's ``Field`` (see :func:`rule`)."""

    name: str
    kind: type  # int, float, str or bool: what a command line or a form turns text into
    default: Any
    description: str = ""
    choices: tuple = ()  # from a Literal
    lo: tuple[str, float] | None = None  # ('at least', 2) or ('more than', 0)
    hi: tuple[str, float] | None = None  # ('at most', 200) or ('less than', 1)
    count: int = 1  # values it takes: 2 for a (lo, hi) pair
    optional: bool = False  # None is a value (e.g. no clipping)

    def accepts(self) -> str:
        """'a whole number between 2 and 200', "one of 'pca', 'umap'", or '' when anything goes."""
        if self.choices:
            return "one of " + ", ".join(repr(v) for v in self.choices)
        if not (self.lo or self.hi):
            return ""
        return bounds_words(self.lo, self.hi, whole=self.kind is int)


_BOUNDS = {Ge: ("lo", "at least", "ge"), Gt: ("lo", "more than", "gt"),
           Le: ("hi", "at most", "le"), Lt: ("hi", "less than", "lt")}


def fields_of(model: type) -> dict[str, FieldInfo]:
    """The fields of a parameter model, or of a core dataclass whose fields carry a description
    and bounds as metadata (``core.data.preprocess.PreprocessParams``), as pydantic ``FieldInfo``."""
    if not dataclasses.is_dataclass(model):
        return model.model_fields
    hints = get_type_hints(model)
    infos = {}
    for f in dataclasses.fields(model):
        lo, hi = f.metadata.get("bounds", (None, None))
        infos[f.name] = FieldInfo.from_annotated_attribute(
            hints[f.name], Field(f.default, description=f.metadata.get("description"), ge=lo, le=hi))
    return infos


def rule(model: type, name: str) -> Rule:
    """The rule of ``model``'s field ``name``: its type, default, description, choices and bounds."""
    info = fields_of(model)[name]
    annotation = info.annotation
    members = get_args(annotation) if get_origin(annotation) is not Literal else ()
    choices = get_args(annotation) if get_origin(annotation) is Literal else ()
    pair = next((get_args(t) for t in (annotation, *members) if get_origin(t) is tuple), ())
    kinds = [t for t in (annotation, *members, *pair) if t in (bool, int, float, str)]
    kind = type(choices[0]) if choices else (float if float in kinds else kinds[0] if kinds else str)
    bounds: dict[str, tuple[str, float]] = {}
    for meta in info.metadata:
        if type(meta) in _BOUNDS:
            side, words, attr = _BOUNDS[type(meta)]
            bounds[side] = (words, getattr(meta, attr))
    default = None if info.is_required() or info.default_factory else info.default
    return Rule(name, kind, default, info.description or "", choices, bounds.get("lo"), bounds.get("hi"),
                count=len(pair) or 1, optional=type(None) in members)


class IngestParams(_Params):
    source: str | list[str] = Field(
        ..., description="A folder, a glob, a file (file.h5::/dataset for HDF5), a list of these, "
        "or a Tiled array node as tiled+http://..."
    )
    name: str | None = Field(None, max_length=200)
    preprocess: PreprocessParams = Field(default_factory=PreprocessParams)
    pixel_size: float | None = Field(None, gt=0.0, le=PIXEL_SIZE_MAX, description=(
        "Size of one pixel of the source frames, in pixel_unit; empty when unknown (results in px). "
        "The dataset stores the effective size after any resize."))
    pixel_unit: Literal[PIXEL_UNITS] = Field("µm", description="Unit of pixel_size.")
    frame_interval: float | None = Field(None, gt=0.0, le=FRAME_INTERVAL_MAX, description=(
        "Time between consecutive frames in seconds; empty when unknown (results in frames)."))

    @field_validator("pixel_unit", mode="before")
    @classmethod
    def _ascii_unit(cls, unit: object) -> object:
        """'um' and 'A' as typed on a keyboard without µ or Å."""
        return {"um": "µm", "A": "Å", "angstrom": "Å"}.get(unit, unit) if isinstance(unit, str) else unit

    @property
    def scale(self) -> PhysicalScale:
        return PhysicalScale(self.pixel_size, self.pixel_unit if self.pixel_size else None, self.frame_interval)

    @field_validator("source")
    @classmethod
    def _no_key_in_uri(cls, source: str | list[str]) -> str | list[str]:
        """Run parameters are stored and shown: an ?api_key= in a Tiled URI is dropped here (the
        worker reads with the key configured for that server)."""
        def clean(item: str) -> str:
            return split_api_key(item)[0] if item.startswith(TILED_PREFIXES) else item
        return clean(source) if isinstance(source, str) else [clean(item) for item in source]

    @model_validator(mode="after")
    def _check_preprocess(self) -> IngestParams:
        self.preprocess.validate()
        return self


LR_SCHEDULES = ("constant", "cosine", "step")  # as core.models.train.LR_SCHEDULES (no torch here)
NOISE_FIELDS = ("flip_prob", "grid_amplitude", "grid_frequency", "grid_angle", "ring_count", "ring_width",
                "ring_intensity")  # core.models.corruption.CorruptionParams' fields, defaults alike (tested)


class TrainOptions(_Params):
    latent_dim: int = Field(32, ge=LATENT_DIM[0], le=LATENT_DIM[1], description="Size of z.")
    base_channels: int = Field(32, ge=BASE_CHANNELS[0], le=BASE_CHANNELS[1],
                               description="Width of the first conv block; doubles per block.")
    fc_hidden: int = Field(0, ge=FC_HIDDEN[0], le=FC_HIDDEN[1], description="Fully connected layer between "
                           "the conv stack and z, mirrored in the decoder; 0: none (1024 in Moola et al.).")
    beta: float = Field(1.0, ge=0.0, le=100.0, description="Weight of the KL term.")
    epochs: int = Field(20, ge=EPOCHS[0], le=EPOCHS[1])
    batch_size: int = Field(64, ge=BATCH_SIZE[0], le=BATCH_SIZE[1])
    lr: float = Field(1e-3, gt=0.0, le=LR_MAX)
    lr_schedule: Literal[LR_SCHEDULES] = Field("constant", description="Learning rate over the epochs: constant; "
                                               "cosine to 0; step: ×0.1 at half and again at three quarters.")
    seed: int = Field(0, ge=0)
    name: str | None = Field(None, max_length=200)
    init_model_id: ResultId | None = Field(
        None, description="Start from this stored VAE's weights (fine-tune it on this dataset); "
        "latent_dim, base_channels and fc_hidden are then its own.")
    # Denoising (DESIGN §1, Moola et al.): inputs corrupted in training, the loss on the clean image;
    # each noise model is off at 0 (core.models.corruption), any mix.
    flip_prob: float = Field(0.0, ge=0.0, le=1.0, description="Salt and pepper: share of pixels "
                             "flipped to the other extreme.")
    grid_amplitude: float = Field(0.0, ge=0.0, le=1.0,
                                  description="Sinusoidal grid: amplitude added (0: no grid).")
    grid_frequency: float = Field(0.125, gt=0.0, le=0.5,
                                  description="Sinusoidal grid: frequency, cycles/px (period 1/f px).")
    grid_angle: float = Field(30.0, ge=-180.0, le=180.0, description="Sinusoidal grid: angle, degrees.")
    ring_count: int = Field(0, ge=0, le=32, description="FFT ring mask: rings at radii "
                            "(k+1)/(n+1) of the Nyquist radius (0: no rings).")
    ring_width: float = Field(0.05, gt=0.0, le=1.0,
                              description="FFT ring mask: ring width, in units of the Nyquist radius.")
    ring_intensity: float = Field(0.8, ge=0.0, le=1.0,
                                  description="FFT ring mask: I_fm; a ring keeps 1 − I_fm of its amplitude.")

    @property
    def noise(self) -> dict[str, float]:
        """The noise models' settings, for core.models.corruption.CorruptionParams."""
        return {name: getattr(self, name) for name in NOISE_FIELDS}


class TrainParams(TrainOptions):
    dataset_id: ResultId


class EncodeParams(_Params):
    dataset_id: ResultId
    model_id: ResultId
    batch_size: int = Field(256, ge=1, le=8192)


class ProjectOptions(_Params):
    method: Literal["pca", "umap"] = "umap"
    n_components: Literal[2, 3] = 2
    n_neighbors: int = Field(15, ge=2, le=200)
    min_dist: float = Field(0.1, ge=0.0, le=1.0)
    metric: Literal["euclidean", "cosine", "manhattan", "correlation"] = "euclidean"
    random_state: int = Field(0, ge=0)
    fit_sample: int = Field(
        50_000, ge=100, le=2_000_000,
        description="UMAP fits on at most this many points and transforms the rest.",
    )


class ProjectParams(ProjectOptions):
    latents_id: ResultId


class ClusterOptions(_Params):
    space: Literal["projection", "latent"] = Field(
        "projection", description="Cluster the map's coordinates or the full latent vectors."
    )
    min_cluster_size: int = Field(15, ge=2, le=100_000)
    min_samples: int | None = Field(None, ge=1, le=100_000)


class ClusterParams(ClusterOptions):
    projection_id: ResultId


# -- Cahn–Hilliard phase separation as a data source (core.data.cahn_hilliard, issue 14) ---------
CH_DEFAULTS = CHParams()
CH_PIXELS_MAX = 500_000_000  # frames × size²: the run holds them all as float32 (2 GB) before it stores them


class SimulateCHParams(_Params):
    """A grid of (φ0, χ) runs of Cahn–Hilliard phase separation, snapshots over time, stored as a
    dataset whose frames table holds run, phi0, chi, t and snapshot (colour options of the map)."""

    phis: list[Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(
        default_factory=lambda: list(CH_DEFAULTS.phis), min_length=1, max_length=50,
        description="Initial volume fractions φ0, each in (0, 1); one run per (φ0, χ).")
    chis: list[Annotated[float, Field(ge=0.0, le=20.0)]] = Field(
        default_factory=lambda: list(CH_DEFAULTS.chis), min_length=1, max_length=50,
        description="Flory–Huggins interactions χ; phase separation needs χ > 1 / (2 φ0 (1 − φ0)) (2 at φ0 = 0.5).")
    size: int = Field(CH_DEFAULTS.size, ge=16, le=512, description="Grid side N, px (periodic).")
    kappa: float = Field(CH_DEFAULTS.kappa, gt=0.0, le=100.0, description="Gradient-energy coefficient κ (interface width).")
    dt: float = Field(CH_DEFAULTS.dt, gt=0.0, le=10.0, description="Time step of the semi-implicit solver.")
    t_end: float = Field(CH_DEFAULTS.t_end, gt=0.0, le=1e6, description="Time of the last snapshot.")
    t_first_fraction: float = Field(CH_DEFAULTS.t_first / CH_DEFAULTS.t_end, gt=0.0, le=1.0,
                                    description="Time of the first snapshot, as a fraction of t_end.")
    n_snapshots: int = Field(CH_DEFAULTS.n_snapshots, ge=1, le=2000, description="Snapshots per run, geometric in time.")
    noise: float = Field(CH_DEFAULTS.noise, gt=0.0, le=0.5, description="Half-width of the initial fluctuation around φ0.")
    seed: int = Field(0, ge=0)
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _not_too_many(self) -> SimulateCHParams:
        n = len(self.phis) * len(self.chis) * self.n_snapshots
        if n * self.size**2 > CH_PIXELS_MAX:
            raise ValueError(f"{len(self.phis)} φ0 × {len(self.chis)} χ × {self.n_snapshots} snapshots = {n:,} "
                             f"frames of {self.size}² px; at most {CH_PIXELS_MAX:,} pixels in all: fewer values, "
                             "snapshots or a smaller size")
        return self

    def core(self) -> CHParams:
        """The simulator's parameters."""
        values = self.model_dump(exclude={"name", "t_first_fraction"})
        return CHParams(**values | {"phis": tuple(self.phis), "chis": tuple(self.chis),
                                    "t_first": self.t_first_fraction * self.t_end})


class BuildMapParams(_Params):
    """Everything from files (or a Cahn–Hilliard simulation) to a clustered map, as one run (what
    the demo submits)."""

    ingest: IngestParams | None = Field(None, description="Files to ingest; or give simulate.")
    simulate: SimulateCHParams | None = Field(None, description="A Cahn–Hilliard simulation as the data.")
    train: TrainOptions = Field(default_factory=TrainOptions)
    project: ProjectOptions = Field(default_factory=ProjectOptions)
    cluster: ClusterOptions = Field(default_factory=ClusterOptions)
    tag: str | None = Field(None, max_length=64, description="e.g. 'demo', to find the result later.")

    @model_validator(mode="after")
    def _one_source(self) -> BuildMapParams:
        if (self.ingest is None) == (self.simulate is None):
            raise ValueError("give one data source: ingest (files) or simulate (Cahn–Hilliard), not both or neither")
        return self


# -- material variations (DESIGN §1, Dao et al. 2025) ------------------------------------------
class ReferenceStates(_Params):
    """Where the reference latents z_i come from: frames of a map (a lasso), or prior draws."""

    latents_id: ResultId | None = Field(None, description="Latents of the map the frames were lassoed on.")
    indices: list[int] = Field(default_factory=list, max_length=5000, description="Frames (rows of the latents).")
    n_prior: int = Field(0, ge=0, le=5000, description="Draws from N(0, I) instead of frames.")

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceStates:
        if bool(self.indices) == bool(self.n_prior):
            raise ValueError("give either frame indices (a lasso on the map) or n_prior > 0 draws from the "
                             "prior, not both and not neither")
        if self.indices and not self.latents_id:
            raise ValueError("frame indices need the latents_id of the map they were selected on")
        if any(i < 0 for i in self.indices):
            raise ValueError("frame indices must be >= 0")
        return self


_DEFAULT = PRESETS[DEFAULT_PRESET]
THRESHOLDS = ("entropy_max", "iou_min", "intensity_max")  # the filters a run sets (core.variations.filters)


class VariationFilters(_Params):
    """Plausibility filters; None switches one off. A preset by kind of data fills the thresholds
    not given; the preset kept is the one the final thresholds are (core.variations.filters), so a
    preset with one threshold changed becomes 'custom'."""

    preset: Literal["particles", "clumps", "custom"] = Field(
        DEFAULT_PRESET, description="particles: |ΔH| ≤ 0.2 bits only (diffusion); clumps: intensity "
        "deviation ≤ 20 % and IoU ≥ 0.5 (compact clumps, composition); custom: every threshold as given.")
    entropy_max: float | None = Field(_DEFAULT["entropy_max"], ge=ENTROPY_MAX[0], le=ENTROPY_MAX[1],
                                      description="Keep |ΔH| ≤ this (bits).")
    iou_min: float | None = Field(_DEFAULT["iou_min"], ge=IOU_MIN[0], le=IOU_MIN[1],
                                  description="Keep foreground IoU ≥ this.")
    intensity_max: float | None = Field(_DEFAULT["intensity_max"], ge=INTENSITY_MAX[0], le=INTENSITY_MAX[1],
                                        description="Keep |ΔΣI|/ΣI ≤ this.")

    @model_validator(mode="after")
    def _fill_from_preset(self) -> VariationFilters:
        given = {name: getattr(self, name) for name in THRESHOLDS if name in self.model_fields_set}
        filters = FilterParams.from_preset(self.preset, **given)
        for name in THRESHOLDS:
            setattr(self, name, getattr(filters, name))
        self.preset = filters.preset
        return self


class SampleVariationsParams(_Params):
    model_id: ResultId
    references: ReferenceStates
    gamma: float = Field(1.0, gt=0.0, le=10.0, description="Half-width of U[−γ, γ] per latent component.")
    n_per_reference: int = Field(100, ge=N_PER_REFERENCE[0], le=N_PER_REFERENCE[1])
    seed: int = Field(0, ge=0)
    batch_size: int | None = Field(None, ge=1, le=8192, description="Decoded at once; None: 256 on a GPU, 16 on a CPU.")
    filters: VariationFilters = Field(default_factory=VariationFilters)
    descriptors: list[str] | None = Field(None, description="Names from core.variations.descriptors.DESCRIPTORS; None = all.")
    n_clusters: int = Field(3, ge=2, le=50, description="Where the dendrogram is cut (the page can re-cut it).")
    min_cluster_size: int = Field(5, ge=2, le=10_000)
    measured_window: int | None = Field(
        2, ge=2, le=1000, description="W: consecutive real frames per measured trace, set beside the "
        "sampled ones when the model's dataset is a time series (ingested with a frame interval); "
        "2 = one frame interval, the step γ is matched to; None: none.")
    n_modes: int = Field(3, ge=1, le=50, description="Diffusion modes: where the particle traces' "
                         "dendrogram is cut (the paper finds three).")
    name: str | None = Field(None, max_length=200)


# -- GAN: training, γ calibration, a map of generated and inverted frames ------------------------
class TrainGANParams(_Params):
    """A progressively grown WGAN-GP (core.models.train_gan); defaults are ProGAN's, as there."""

    dataset_id: ResultId
    latent_dim: int = Field(64, ge=LATENT_DIM[0], le=LATENT_DIM[1],
                            description="Size of z, the space the variations perturb.")
    base_channels: int = Field(32, ge=BASE_CHANNELS[0], le=BASE_CHANNELS[1],
                               description="Width at the final resolution; doubles per halving "
                               "up to 256 (the model's max_channels).")
    epochs_per_stage: int = Field(10, ge=EPOCHS[0], le=EPOCHS[1], description="Epochs at each resolution, 4×4 up.")
    batch_size: int = Field(32, ge=BATCH_SIZE[0], le=BATCH_SIZE[1])
    lr: float = Field(1e-3, gt=0.0, le=LR_MAX)
    n_critic: int = Field(1, ge=N_CRITIC[0], le=N_CRITIC[1], description="Critic steps per generator step.")
    seed: int = Field(0, ge=0)
    name: str | None = Field(None, max_length=200)


GAMMA_SWEEP = [0.25 * k for k in range(1, 9)]  # 0.25 … 2.0, as core.variations.calibration.DEFAULT_GAMMAS (no torch here)


class CalibrateParams(_Params):
    """A γ sweep compared with the change between consecutive real frames (DESIGN §1)."""

    model_id: ResultId
    references: ReferenceStates
    dataset_id: ResultId | None = Field(
        None, description="Real frames for the bands, read in order; None = the model's training dataset."
    )
    n_real_frames: int = Field(300, ge=2, le=5000, description="Consecutive real frames read (the first ones).")
    gammas: list[Annotated[float, Field(gt=0.0, le=10.0)]] = Field(
        default_factory=lambda: list(GAMMA_SWEEP), min_length=1, max_length=40,
        description="γ values to try, each in (0, 10]; sorted and de-duplicated.",
    )
    n_per_reference: int = Field(32, ge=1, le=10_000, description="Samples per reference and γ.")
    seed: int = Field(0, ge=0)

    @field_validator("gammas")
    @classmethod
    def _sorted(cls, gammas: list[float]) -> list[float]:
        return sorted(set(gammas))


class GANMapParams(_Params):
    """A map for a generator: prior draws decoded, plus real frames placed by inversion."""

    model_id: ResultId
    n_samples: int = Field(2000, ge=2, le=1_000_000, description="Draws from N(0, I) to decode.")
    seed: int = Field(0, ge=0)
    dataset_id: ResultId | None = Field(None, description="Real frames to invert onto the map; None for prior draws only.")
    n_real: int = Field(200, ge=1, le=100_000, description="Real frames inverted, evenly spaced over the dataset.")
    invert_steps: int = Field(100, ge=1, le=10_000, description="Adam steps per inversion.")
    invert_restarts: int = Field(2, ge=1, le=32, description="Starting points per frame; the best fit is kept.")
    batch_size: int = Field(256, ge=1, le=8192)
    project: ProjectOptions = Field(default_factory=ProjectOptions)
    cluster: ClusterOptions = Field(default_factory=ClusterOptions)
    tag: str | None = Field(None, max_length=64, description="e.g. 'gan', to find the result later.")


# -- XPCS: two-time maps simulated from the grain-boundary model (DESIGN §1, issue 13) ---------------
Span = tuple[float, float]


class SimulationRanges(_Params):
    """Where parameters are drawn or gridded, [lo, hi] each; defaults: core.xpcs.simulate.PARAM_RANGES
    (their choice is explained there)."""

    D: Span = Field(gb.PARAM_RANGES["D"], description="Bulk diffusivity, nm²/s (log-uniform).")
    kappa: Span = Field(gb.PARAM_RANGES["kappa"], description="Boundary stiffness, J/m².")
    c: Span = Field(gb.PARAM_RANGES["c"], description="Share of atoms on boundaries, 0–1.")
    T: Span = Field(gb.PARAM_RANGES["T"], description="Temperature, K.")

    @model_validator(mode="after")
    def _ordered_and_physical(self) -> SimulationRanges:
        for name, (lo, hi) in self.model_dump().items():
            if not lo <= hi:
                raise ValueError(f"{name} range ({lo:g}, {hi:g}): the low end must not exceed the high end")
        if self.D[0] <= 0 or self.kappa[0] <= 0 or self.T[0] <= 0 or not 0 <= self.c[0] <= self.c[1] <= 1:
            raise ValueError("ranges need D > 0 nm²/s (log-uniform), kappa > 0 J/m², T > 0 K and c within 0–1")
        return self


class SimulateXPCSParams(_Params):
    """Two-time maps of the grain-boundary model over random draws or a grid of (D, κ, c, T)."""

    n_maps: int = Field(2000, ge=XPCS_MAPS[0], le=XPCS_MAPS[1], description="Random draws (ignored with a grid).")
    grid_per_axis: int | None = Field(None, ge=2, le=12,
                                      description="Values per parameter on a grid (k⁴ maps, D log-spaced); "
                                      "None: n_maps random draws.")
    n_frames: int = Field(gb.N_FRAMES, ge=XPCS_FRAMES[0], le=XPCS_FRAMES[1], description="Frames per map (T × T).")
    q: float = Field(gb.Q_NM, gt=0.0, le=100.0, description="Wavevector along the boundary normal, nm⁻¹.")
    dt: float = Field(gb.DT_S, gt=0.0, le=3600.0, description="Frame interval, s.")
    beta: float = Field(gb.BETA, gt=0.0, le=1.0, description="Speckle contrast (Siegert relation).")
    seed: int = Field(0, ge=0)
    ranges: SimulationRanges = Field(default_factory=SimulationRanges)
    name: str | None = Field(None, max_length=200)

    @property
    def sampling(self) -> Literal["random", "grid"]:
        return "grid" if self.grid_per_axis else "random"


# -- XPCS: physical parameters from two-time maps (DESIGN §1, XPCS; core.xpcs.adapt) ------------
class TrainXPCSParams(_Params):
    """CNN + MLP regressor on simulated maps, adapted to experimental maps with CORAL + surrogate."""

    simulations_id: ResultId = Field(..., description="Stored simulated two-time maps with their parameters.")
    experimental_ids: list[ResultId] = Field(
        default_factory=list, max_length=100,
        description="Stored measured two-time maps to adapt to (unlabelled); none: no adaptation.")
    side: int = Field(32, ge=XPCS_SIDE[0], le=XPCS_SIDE[1], description="Maps are resized to side × side px.")
    n_members: int = Field(3, ge=N_MEMBERS[0], le=N_MEMBERS[1],
                           description="Ensemble members (seeds): mean ± sd per parameter.")
    epochs: int = Field(30, ge=EPOCHS[0], le=EPOCHS[1], description="Supervised epochs per member.")
    adapt_epochs: int = Field(10, ge=0, le=EPOCHS[1], description="CORAL + surrogate epochs per member.")
    batch_size: int = Field(64, ge=BATCH_SIZE[0], le=BATCH_SIZE[1])
    lr: float = Field(2e-3, gt=0.0, le=LR_MAX)
    coral_weight: float = Field(1.0, ge=0.0, le=1000.0, description="Weight of the CORAL term.")
    surrogate_weight: float = Field(1.0, ge=0.0, le=1000.0,
                                    description="Weight of the surrogate (measured non-equilibrium) term.")
    seed: int = Field(0, ge=0)
    name: str | None = Field(None, max_length=200)


# -- synthesis from the map (DESIGN §1, Latent Space Explorer; core.synthesis) ---------------------

class TrainSamplerParams(_Params):
    """What flow matching and latent diffusion share: the map, the network and the study's recipe."""

    clustering_id: ResultId = Field(..., description="The clustered 2-D map whose latents and coordinates train it.")
    epochs: int = Field(200, ge=EPOCHS[0], le=EPOCHS[1])
    batch_size: int = Field(256, ge=BATCH_SIZE[0], le=BATCH_SIZE[1])
    lr: float = Field(3e-4, gt=0.0, le=LR_MAX, description="AdamW learning rate (cosine schedule).")
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    min_membership: float = Field(0.5, ge=0.0, lt=1.0,
                                  description="Cluster members with HDBSCAN membership above this train it.")
    width: int = Field(256, ge=8, le=2048, description="Width of the residual blocks and the conditioning.")
    n_blocks: int = Field(6, ge=1, le=32, description="Residual blocks with adaptive layer norm.")
    p_uncond: float = Field(0.15, ge=0.0, le=1.0, description="Coordinate dropped in training (guidance).")
    steps: int = Field(20, ge=1, le=1000, description="Sampling steps, stored as the model's default.")
    seed: int = Field(0, ge=0)
    name: str | None = Field(None, max_length=200)


class TrainFlowMatchingParams(TrainSamplerParams):
    """Conditional flow matching with classifier-free guidance (the study's defaults)."""

    guidance: float = Field(5.0, ge=0.0, le=50.0, description="Guidance scale s stored as the default (0: unconditional).")


class TrainLatentDiffusionParams(TrainSamplerParams):
    """A DDPM on the map's latents, conditioned on the coordinate or not, sampled with DDIM."""

    guidance: float = Field(1.0, ge=0.0, le=50.0, description="Guidance scale stored as the default (1: as trained).")
    conditional: bool = Field(True, description="Condition on the map coordinate (False: a latent prior).")
    n_timesteps: int = Field(1000, ge=50, le=10_000, description="DDPM's T (linear β schedule); at least 50 "
                             "noise levels, so the default 20 sampling steps always fit.")

    @model_validator(mode="after")
    def _steps_fit(self) -> TrainLatentDiffusionParams:
        if self.steps > self.n_timesteps:
            raise ValueError(f"steps={self.steps} must not exceed n_timesteps={self.n_timesteps}")
        return self


class EvaluateSamplersParams(_Params):
    """Samplers scored on held-out points of a map, drawn per cluster (the study's evaluation)."""

    clustering_id: ResultId = Field(..., description="The clustered 2-D map.")
    model_ids: list[ResultId] | None = Field(
        None, max_length=20, description="Trained samplers to score; None: every one trained on this map.")
    per_cluster: int = Field(20, ge=1, le=10_000, description="Held-out query points per cluster.")
    knn_k: int = Field(5, ge=1, le=1000, description="Neighbours averaged by the retrieval baseline.")
    seed: int = Field(0, ge=0, description="Seed of the query draw and of every sampler.")


class SynthesizeParams(_Params):
    """An image asked for at a map point, or a sequence along a drawn path (the synthesis panel)."""

    sampler: str = Field("umap_pca", pattern=KEY_PATTERN, description="umap_pca (needs no training), or the id "
                         "of a flow matching or latent diffusion model trained on the shown map.")
    n: int = Field(4, ge=1, le=16, description="Images per clicked point (each its own draw).")
    steps: int = Field(16, ge=STEPS_RANGE[0], le=STEPS_RANGE[1],
                       description="Images along a drawn path, evenly spaced by its length.")
    seed: int = Field(0, ge=0, description="Same seed, same images.")
    temperature: float = Field(0.1, gt=0.0, le=100.0, description="UMAP-guided PCA: T in w ∝ exp(−‖u − c‖²/T), "
                               "squared map units (the study: 0.1).")
    k_nearest: int = Field(2, ge=1, le=50, description="UMAP-guided PCA: centroids sharing the weight (the study: 2).")
    noise_scale: float = Field(1.0, ge=0.0, le=10.0,
                               description="UMAP-guided PCA: spread of the draws in units of the cluster's own.")
    guidance: float | None = Field(None, ge=0.0, le=50.0, description="Trained samplers: guidance scale s "
                                   "(0: unconditional); blank: the sampler's default (flow matching: 5).")
    sampling_steps: int | None = Field(None, ge=1, le=1000, description="Trained samplers: Euler or DDIM steps; "
                                       "blank: the sampler's default (20).")
