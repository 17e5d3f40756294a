"""The jobs panel's forms, as data: fields, their flow parameter models, and what a bad value means.

Each input is built from its flow parameter model's field (``flows.params``: default, choices,
description) and every form builds that model before anything is submitted, so a value out of
range is refused in the page with the field, the value and the allowed range
(:func:`form_problems`, read from pydantic's structured errors, never from their wording), and
the flow validates the same model again on the worker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dash_bootstrap_components as dbc
from dash import html
from pydantic import BaseModel, ValidationError

from components.records import RunRecord
from core.data.preprocess import PreprocessParams
from core.limits import BadParameter, OutOfRange
from flows import params as fp
from flows.params import bounds_words, rule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FormField:
    """One input of a job form; ``name`` is the parameter it fills."""

    name: str
    label: str
    kind: Literal["number", "text", "textarea", "select", "radio", "switch", "result"]
    default: Any = None
    options: tuple = ()  # select / radio: the values offered
    result_kind: str | None = None  # "result": which kind of Tiled result the options list
    hint: str = ""


@dataclass(frozen=True)
class Job:
    flow: str  # the Prefect flow (deployment) name
    title: str
    model: type[BaseModel]
    result_kind: str  # what a completed run leaves in Tiled
    fields: tuple[FormField, ...] = field(default_factory=tuple)


_UNSET: Any = object()


def field_of(model: type[BaseModel], name: str, label: str, kind: str | None = None, *, default: Any = _UNSET,
             hint: str | None = None, result_kind: str | None = None) -> FormField:
    """The input for one parameter of ``model``: default, choices and hint (its description) come
    from the model's field; ``kind`` is 'number', 'text' or 'select' by its type unless given."""
    r = rule(model, name)
    if kind is None:
        kind = "result" if result_kind else "select" if r.choices else "number" if r.kind in (int, float) else "text"
    if hint is None:
        hint = "" if result_kind else r.description
    return FormField(name, label, kind, r.default if default is _UNSET else default, r.choices,
                     result_kind, hint)


_PRE = PreprocessParams()
JOBS: dict[str, Job] = {
    "ingest": Job("ingest", "Ingest", fp.IngestParams, "datasets", (
        field_of(fp.IngestParams, "source", "Source", "textarea",
                 hint="A folder, a glob (/data/run7/*.tif), a file (file.h5::/entry/data) or "
                      "tiled+http://…; one per line. It must lie under the worker's data roots."),
        field_of(fp.IngestParams, "name", "Name"),
        # core's preprocessing (a dataclass, checked by its validate()), not a pydantic model
        FormField("size", "Size (px)", "number", _PRE.size, hint="Square side after resizing."),
        FormField("patch_size", "Patch size", "number", _PRE.patch_size,
                  hint="Cut each frame into square windows first; empty for whole frames."),
        FormField("clip_lo", "Clip low %", "number", _PRE.clip_percentiles[0],
                  hint="Percentile clipping; empty both for none."),
        FormField("clip_hi", "Clip high %", "number", _PRE.clip_percentiles[1]),
        FormField("log", "log1p (scattering)", "switch", _PRE.log),
        FormField("mask_nonpositive", "Mask pixels ≤ 0 (detector gaps)", "switch", _PRE.mask_nonpositive),
        field_of(fp.IngestParams, "pixel_size", "Pixel size",
                 hint="Of the source frames, in the unit below; empty when unknown (results in px)."),
        field_of(fp.IngestParams, "pixel_unit", "Pixel unit"),
        field_of(fp.IngestParams, "frame_interval", "Frame interval (s)",
                 hint="Time between consecutive frames; empty when unknown (results in frames)."),
    )),
    "train": Job("train-vae", "Train VAE", fp.TrainParams, "models", (
        field_of(fp.TrainParams, "dataset_id", "Dataset", result_kind="datasets"),
        field_of(fp.TrainParams, "latent_dim", "Latent dim"),
        field_of(fp.TrainParams, "fc_hidden", "FC hidden"),
        field_of(fp.TrainParams, "beta", "β (KL weight)", hint=""),
        field_of(fp.TrainParams, "epochs", "Epochs"),
        field_of(fp.TrainParams, "batch_size", "Batch size"),
        field_of(fp.TrainParams, "lr", "Learning rate"),
        field_of(fp.TrainParams, "lr_schedule", "LR schedule"),
        field_of(fp.TrainParams, "name", "Name"),
        # denoising: every noise model off at 0
        field_of(fp.TrainParams, "flip_prob", "Salt & pepper p"),
        field_of(fp.TrainParams, "grid_amplitude", "Grid amplitude"),
        field_of(fp.TrainParams, "grid_frequency", "Grid frequency (1/px)"),
        field_of(fp.TrainParams, "grid_angle", "Grid angle (°)"),
        field_of(fp.TrainParams, "ring_count", "FFT rings"),
        field_of(fp.TrainParams, "ring_width", "Ring width"),
        field_of(fp.TrainParams, "ring_intensity", "Ring depth I_fm"),
    )),
    "train-gan": Job("train-gan", "Train GAN", fp.TrainGANParams, "models", (
        field_of(fp.TrainGANParams, "dataset_id", "Dataset", result_kind="datasets",
                 hint="Square frames of any size: the GAN grows to the next power of two and resizes back."),
        field_of(fp.TrainGANParams, "latent_dim", "Latent dim"),
        field_of(fp.TrainGANParams, "epochs_per_stage", "Epochs per stage",
                 hint="One stage per resolution, from 4 px up to the frames' size."),
        field_of(fp.TrainGANParams, "batch_size", "Batch size"),
        field_of(fp.TrainGANParams, "lr", "Learning rate"),
        field_of(fp.TrainGANParams, "name", "Name"),
    )),
    "gan-map": Job("gan-map", "GAN map", fp.GANMapParams, "clusterings", (
        field_of(fp.GANMapParams, "model_id", "GAN", result_kind="models",
                 hint="A trained GAN: its prior draws are decoded and mapped."),
        field_of(fp.GANMapParams, "dataset_id", "Real frames", result_kind="datasets",
                 hint="Frames placed on the map by inversion; choose none for prior draws only."),
        field_of(fp.GANMapParams, "n_samples", "Prior draws"),
        field_of(fp.GANMapParams, "n_real", "Real frames inverted"),
        field_of(fp.GANMapParams, "invert_steps", "Inversion steps"),
        field_of(fp.GANMapParams, "tag", "Tag"),
    )),
    "encode": Job("encode", "Encode", fp.EncodeParams, "latents", (
        field_of(fp.EncodeParams, "dataset_id", "Dataset", result_kind="datasets"),
        field_of(fp.EncodeParams, "model_id", "Model", result_kind="models"),
        field_of(fp.EncodeParams, "batch_size", "Batch size"),
    )),
    "project": Job("project", "Project", fp.ProjectParams, "projections", (
        field_of(fp.ProjectParams, "latents_id", "Latents", result_kind="latents"),
        field_of(fp.ProjectParams, "method", "Method", "radio"),
        field_of(fp.ProjectParams, "n_components", "Dimensions", "radio"),
        field_of(fp.ProjectParams, "n_neighbors", "Neighbours (UMAP)",
                 hint="Small: local detail; large: global layout."),
        field_of(fp.ProjectParams, "min_dist", "Min dist (UMAP)"),
        field_of(fp.ProjectParams, "metric", "Metric (UMAP)"),
    )),
    "cluster": Job("cluster", "Cluster", fp.ClusterParams, "clusterings", (
        field_of(fp.ClusterParams, "projection_id", "Projection", result_kind="projections"),
        field_of(fp.ClusterParams, "space", "Space", "radio"),
        field_of(fp.ClusterParams, "min_cluster_size", "Min cluster size"),
        field_of(fp.ClusterParams, "min_samples", "Min samples",
                 hint="Empty: same as min cluster size. Larger: more points called noise."),
    )),
    "calibrate": Job("calibrate-gamma", "Calibrate γ", fp.CalibrateParams, "calibrations", (
        field_of(fp.CalibrateParams, "model_id", "Model", result_kind="models",
                 hint="Real frames for the bands come from the dataset it was trained on."),
        # the form's count fills references.n_prior (lassoed references come from the variations panel)
        dataclasses.replace(field_of(fp.ReferenceStates, "n_prior", "References", default=16, hint=(
            "Prior draws to perturb (references lassoed on a map come from the variations panel).")),
            name="references"),
        field_of(fp.CalibrateParams, "gammas", "γ values", "text",
                 default=", ".join(f"{g:g}" for g in fp.GAMMA_SWEEP),
                 hint="Comma-separated, each in (0, 10]; empty for 0.25 … 2."),
        field_of(fp.CalibrateParams, "n_per_reference", "Samples per γ", hint="Per reference and γ."),
    )),
    "simulate-xpcs": Job("simulate-xpcs", "Simulate XPCS", fp.SimulateXPCSParams, "xpcs_simulations", (
        field_of(fp.SimulateXPCSParams, "n_maps", "Maps"),
        field_of(fp.SimulateXPCSParams, "grid_per_axis", "Grid per axis"),
        field_of(fp.SimulateXPCSParams, "n_frames", "Frames"),
        field_of(fp.SimulateXPCSParams, "q", "q (nm⁻¹)"),
        field_of(fp.SimulateXPCSParams, "dt", "Frame interval (s)"),
        field_of(fp.SimulateXPCSParams, "beta", "Contrast β"),
        field_of(fp.SimulateXPCSParams, "seed", "Seed"),
        field_of(fp.SimulateXPCSParams, "name", "Name"),
    )),
    "simulate-ch": Job("simulate-cahn-hilliard", "Simulate Cahn–Hilliard", fp.SimulateCHParams, "datasets", (
        field_of(fp.SimulateCHParams, "phis", "φ0 values", "text",
                 hint="Initial volume fractions, comma-separated, each in (0, 1); empty: "
                      + ", ".join(f"{v:g}" for v in fp.CH_DEFAULTS.phis) + "."),
        field_of(fp.SimulateCHParams, "chis", "χ values", "text",
                 hint="Interactions, comma-separated; χ > 2 separates a 50/50 mixture; empty: "
                      + ", ".join(f"{v:g}" for v in fp.CH_DEFAULTS.chis) + "."),
        field_of(fp.SimulateCHParams, "size", "Side (px)"),
        field_of(fp.SimulateCHParams, "n_snapshots", "Snapshots per run"),
        field_of(fp.SimulateCHParams, "t_end", "Last time"),
        field_of(fp.SimulateCHParams, "seed", "Seed"),
        field_of(fp.SimulateCHParams, "name", "Name"),
    )),
    "train-xpcs": Job("train-xpcs-regressor", "Train XPCS regressor", fp.TrainXPCSParams, "models", (
        field_of(fp.TrainXPCSParams, "simulations_id", "Simulated maps", result_kind="xpcs_simulations",
                 hint="Simulated two-time maps with their parameters (Simulate XPCS)."),
        field_of(fp.TrainXPCSParams, "experimental_ids", "Measured maps", "text", default="",
                 hint="Ids of stored measured maps (xmap-…, listed in the XPCS panel), comma-separated; "
                      "empty: no adaptation."),
        field_of(fp.TrainXPCSParams, "n_members", "Ensemble members"),
        field_of(fp.TrainXPCSParams, "epochs", "Epochs"),
        field_of(fp.TrainXPCSParams, "adapt_epochs", "Adaptation epochs"),
        field_of(fp.TrainXPCSParams, "side", "Side (px)"),
        field_of(fp.TrainXPCSParams, "name", "Name"),
    )),
}
# Form fields that fill a parameter of another name (the calibrate form's count is references.n_prior,
# the clip pair is preprocess.clip_percentiles), and fixed words for what a field needs.
WHERE: dict[str, dict[str, str | tuple[str, ...]]] = {
    "ingest": {"clip_percentiles": ("clip_lo", "clip_hi")},
    "calibrate": {"n_prior": "references"},
}
CLIP_HINT = "enter both percentiles (0 ≤ low < high ≤ 100), or leave both empty for no clipping"
FIXED = {"clip_percentiles": CLIP_HINT}
RESULT_FIELDS = [(job, f) for job, spec in JOBS.items() for f in spec.fields if f.kind == "result"]


# -- parameters and their problems -----------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def build_params(job: str, values: Mapping[str, Any]) -> BaseModel:
    """The flow's parameter model from a form's values; raises pydantic's ValidationError.

    Empty text becomes None; an empty number stays None, so a required number is reported as
    empty rather than silently replaced by its default.
    """
    spec = JOBS[job]
    values = {k: (None if _blank(v) else v) for k, v in values.items()}
    if job == "ingest":
        sources = [s.strip() for s in (values.get("source") or "").splitlines() if s.strip()]
        lo, hi = values.get("clip_lo"), values.get("clip_hi")
        return fp.IngestParams(
            source=sources[0] if len(sources) == 1 else (sources or None),
            name=values.get("name"),
            preprocess={
                "size": values.get("size"),
                "patch_size": values.get("patch_size"),
                "clip_percentiles": None if lo is None and hi is None else (lo, hi),
                "log": bool(values.get("log")),
                "mask_nonpositive": bool(values.get("mask_nonpositive")),
            },
            **{name: values[name] for name in ("pixel_size", "pixel_unit", "frame_interval")
               if values.get(name) is not None},
        )
    names = {f.name for f in spec.fields}
    data = {k: v for k, v in values.items() if k in names}
    if job == "calibrate":
        data["references"] = {"n_prior": data.get("references")}
        if data.get("gammas") is None:
            del data["gammas"]  # the default sweep
        else:  # pydantic reads each token as a number and names the one that is not
            data["gammas"] = [t for t in re.split(r"[,;\s]+", data["gammas"]) if t]
    if job == "simulate-ch":  # numbers, comma- or space-separated; pydantic names a bad one
        for name in ("phis", "chis"):
            if data.get(name) is None:
                data.pop(name, None)  # the default grid
            else:
                data[name] = [t for t in re.split(r"[,;\s]+", data[name]) if t]
    if job == "train-xpcs":  # ids, comma- or space-separated; pydantic checks each one
        data["experimental_ids"] = [t for t in re.split(r"[,;\s]+", data.get("experimental_ids") or "") if t]
    if job == "project" and data.get("n_components") is not None:
        data["n_components"] = int(data["n_components"])  # radio values come back as sent, but be sure
    return spec.model(**data)


def _label(fields: Sequence[FormField], name: str) -> str:
    """'Neighbours [n_neighbors]': the form's label and the parameter it fills."""
    for f in fields:
        if f.name == name:
            short = f.label.split(" (")[0]
            return short if short.lower() == name.replace("_", " ") else f"{short} [{name}]"
    return name


@dataclass(frozen=True)
class Problem:
    field: str  # the form's label, with the parameter name
    value: Any
    text: str  # what is wrong and what is allowed

    def __str__(self) -> str:
        if self.field == "form":
            return self.text
        if self.value is None:
            return f"{self.field} is empty: {self.text}"
        given = f"you entered {self.value!r}"
        if self.text.startswith("must"):
            return f"{self.field} {self.text} ({given})"
        return f"{self.field}: {self.text} ({given})"


NOT_A_NUMBER = ("int_parsing", "int_from_float", "float_parsing", "int_type", "float_type")
OUT_OF_BOUNDS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "literal_error")


def _fields_of(annotation: Any) -> dict[str, Any]:
    """A nested parameter's fields and their annotations: a pydantic model's or a dataclass's."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: info.annotation for name, info in annotation.model_fields.items()}
    if dataclasses.is_dataclass(annotation):
        return {f.name: None for f in dataclasses.fields(annotation)}
    return {}


def _leaf(model: type[BaseModel], loc: tuple) -> tuple[str | None, type[BaseModel] | None]:
    """The innermost parameter an error's location names, and the pydantic model that holds its
    rule (None for a dataclass's field); union member names in the location ('str') are skipped."""
    owner: Any = model
    leaf, holder = None, None
    for part in (p for p in loc if isinstance(p, str)):
        fields = _fields_of(owner)
        if part not in fields:
            break
        leaf, holder = part, owner if isinstance(owner, type) and issubclass(owner, BaseModel) else None
        owner = fields[part]
    return leaf, holder


def _out_of_range(exc: OutOfRange) -> str:
    """Core's integer bounds in words, said from the side the value fell off."""
    value = exc.value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        if value < exc.lo:
            return f"must be a whole number of at least {exc.lo}"
        if value > exc.hi:
            return f"must be a whole number of at most {exc.hi}"
    return f"must be {bounds_words(('at least', exc.lo), ('at most', exc.hi), whole=True)}"


def form_problems(exc: ValidationError, model: type[BaseModel], fields: Sequence[FormField], *,
                  where: Mapping[str, str | tuple[str, ...]] | None = None) -> list[Problem]:
    """One readable problem per bad form field, from pydantic's structured errors: the field's
    label, the value given, and what the parameter's rule allows.

    ``where`` names the form field that fills a parameter of another name (a tuple: one per
    position, as the clip pair). A parameter core refuses (``core.limits.BadParameter``, raised
    in a model validator) is named by the error object it carries, not by its wording.
    """
    known = {f.name for f in fields}
    problems: dict[str, Problem] = {}
    for err in exc.errors():
        msg, value = err["msg"].removeprefix("Value error, "), err.get("input")
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, BadParameter):
            leaf, holder, value = cause.name, None, cause.value
        else:
            leaf, holder = _leaf(model, err["loc"])
        if isinstance(value, dict) and len(value) == 1:  # a form field that fills one nested parameter
            value = next(iter(value.values()))
        name = (where or {}).get(leaf, leaf)
        if isinstance(name, tuple):
            name = name[next((p for p in err["loc"] if isinstance(p, int)), 0)]
        if name not in known:  # a whole-model rule, or a parameter this form does not fill
            text = msg if leaf is None or isinstance(err.get("input"), dict) else f"{leaf}: {msg}"
            problems.setdefault(text, Problem("form", None, text))
            continue
        accepts = rule(holder, leaf).accepts() if holder else ""
        if leaf in FIXED:
            text = FIXED[leaf]
        elif isinstance(cause, OutOfRange):
            text = _out_of_range(cause)
        elif value is None:
            text = f"enter {accepts}" if accepts else "required"
        elif accepts and err["type"] in OUT_OF_BOUNDS + NOT_A_NUMBER:
            text = f"must be {accepts}"
        elif err["type"] in NOT_A_NUMBER:
            text = "must be a whole number" if err["type"].startswith("int") else "must be a number"
        else:
            text = msg[:1].lower() + msg[1:]
        problems.setdefault(name, Problem(_label(fields, name), value, text))
    return list(problems.values())


def explain(job: str, exc: ValidationError) -> list[Problem]:
    """The problems of a job form (see :func:`form_problems`)."""
    return form_problems(exc, JOBS[job].model, JOBS[job].fields, where=WHERE.get(job))


def problems_alert(problems: list[Problem]) -> dbc.Alert:
    """The problems that stopped a submission, as the alert any panel's form shows."""
    return dbc.Alert([
        html.Div("Not submitted; fix:", className="fw-bold"),
        html.Ul([html.Li(str(p)) for p in problems], className="mb-0"),
    ], color="danger", className="py-1 px-2 mb-0 jobs-problems")


def summarize(job: str, params: BaseModel) -> str:
    """One line saying what a run does, for the runs table."""
    p = params
    if job == "ingest":
        source = p.source if isinstance(p.source, str) else f"{p.source[0]} (+{len(p.source) - 1})"
        return f"ingest {source} at {p.preprocess.size} px"
    if job == "train":
        noise = [f"{name} {getattr(p, field):g}" for name, field in (
            ("flips", "flip_prob"), ("grid", "grid_amplitude"), ("rings", "ring_count")) if getattr(p, field)]
        denoise = f", denoising ({', '.join(noise)})" if noise else ""
        schedule = "" if p.lr_schedule == "constant" else f", {p.lr_schedule} lr"
        return f"VAE d={p.latent_dim}, β={p.beta:g}, {p.epochs} epochs{schedule}{denoise} on {p.dataset_id}"
    if job == "train-gan":
        return f"GAN d={p.latent_dim}, {p.epochs_per_stage} epochs per stage on {p.dataset_id}"
    if job == "gan-map":
        real = f" + {p.n_real} frames of {p.dataset_id} inverted" if p.dataset_id else ""
        return f"GAN map of {p.model_id}: {p.n_samples} prior draws{real}"
    if job == "calibrate":
        return (f"γ sweep {p.gammas[0]:g}…{p.gammas[-1]:g} ({len(p.gammas)} values), "
                f"{p.references.n_prior}×{p.n_per_reference} samples on {p.model_id}")
    if job == "encode":
        return f"encode {p.dataset_id} with {p.model_id}"
    if job == "simulate-xpcs":
        count = f"{p.grid_per_axis}⁴ grid" if p.grid_per_axis else f"{p.n_maps} random draws"
        return f"GB-model two-time maps: {count}, {p.n_frames} frames, q = {p.q:g} nm⁻¹"
    if job == "simulate-ch":
        return (f"Cahn–Hilliard {len(p.phis)} φ0 × {len(p.chis)} χ × {p.n_snapshots} snapshots, "
                f"{p.size} px, t ≤ {p.t_end:g}")
    if job == "train-xpcs":
        adapted = f", adapted to {len(p.experimental_ids)} measured records" if p.experimental_ids else ""
        return f"XPCS regressor ×{p.n_members} on {p.simulations_id}{adapted}"
    if job == "project":
        extra = f", k={p.n_neighbors}, min_dist={p.min_dist:g}, {p.metric}" if p.method == "umap" else ""
        return f"{p.method.upper()} {p.n_components}-D{extra} of {p.latents_id}"
    min_samples = "" if p.min_samples is None else f", min samples {p.min_samples}"
    return f"HDBSCAN on {p.space}, min size {p.min_cluster_size}{min_samples} of {p.projection_id}"


@dataclass
class Submitted:
    """What :func:`submit_job` did: a run record to keep, or the problems that stopped it."""

    record: RunRecord | None = None
    problems: list[Problem] = field(default_factory=list)
    error: str = ""


def submit_job(job: str, values: Mapping[str, Any], submit: Callable[[str, BaseModel], str]) -> Submitted:
    """Validate the form, then submit; nothing reaches Prefect when a value is out of range."""
    try:
        params = build_params(job, values)
    except ValidationError as exc:
        return Submitted(problems=explain(job, exc))
    try:
        run_id = submit(JOBS[job].flow, params)
    except Exception as exc:  # SubmitError says what to do; anything else still gets shown
        return Submitted(error=str(exc) or type(exc).__name__)
    return Submitted(record=run_record(run_id, job, JOBS[job].flow, JOBS[job].result_kind, summarize(job, params)))


def run_record(run_id: str, job: str, flow: str, kind: str, label: str) -> RunRecord:
    """What the jobs panel keeps of a submitted run (any panel may submit one: ids.SUBMITTED)."""
    return {"id": run_id, "job": job, "flow": flow, "kind": kind, "label": label,
            "submitted": dt.datetime.now().strftime("%H:%M:%S")}
