"""The jobs panel's forms, as data: fields, their flow parameter models, and what a bad value means.

Every form builds the flow's own pydantic parameter model (``flows.params``) before anything is
submitted, so a value out of range is refused in the page with the field, the value and the
allowed range (:func:`explain`), and the flow validates the same model again on the worker.
"""

from __future__ import annotations

import ast
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

import dash_bootstrap_components as dbc
from annotated_types import Ge, Gt, Le, Lt
from dash import html
from pydantic import BaseModel, ValidationError

from components.records import RunRecord
from core.data.preprocess import PreprocessParams
from flows import params as fp

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


def _default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].default


_PRE = PreprocessParams()
JOBS: dict[str, Job] = {
    "ingest": Job("ingest", "Ingest", fp.IngestParams, "datasets", (
        FormField("source", "Source", "textarea",
                  hint="A folder, a glob (/data/run7/*.tif), a file (file.h5::/entry/data) or "
                       "tiled+http://…; one per line. It must lie under the worker's data roots."),
        FormField("name", "Name", "text"),
        FormField("size", "Size (px)", "number", _PRE.size, hint="Square side after resizing."),
        FormField("patch_size", "Patch size", "number", _PRE.patch_size,
                  hint="Cut each frame into square windows first; empty for whole frames."),
        FormField("clip_lo", "Clip low %", "number", _PRE.clip_percentiles[0],
                  hint="Percentile clipping; empty both for none."),
        FormField("clip_hi", "Clip high %", "number", _PRE.clip_percentiles[1]),
        FormField("log", "log1p (scattering)", "switch", _PRE.log),
        FormField("mask_nonpositive", "Mask pixels ≤ 0 (detector gaps)", "switch", _PRE.mask_nonpositive),
    )),
    "train": Job("train-vae", "Train VAE", fp.TrainParams, "models", (
        FormField("dataset_id", "Dataset", "result", result_kind="datasets"),
        FormField("latent_dim", "Latent dim", "number", _default(fp.TrainParams, "latent_dim")),
        FormField("beta", "β (KL weight)", "number", _default(fp.TrainParams, "beta")),
        FormField("epochs", "Epochs", "number", _default(fp.TrainParams, "epochs")),
        FormField("batch_size", "Batch size", "number", _default(fp.TrainParams, "batch_size")),
        FormField("lr", "Learning rate", "number", _default(fp.TrainParams, "lr")),
        FormField("name", "Name", "text"),
    )),
    "train-gan": Job("train-gan", "Train GAN", fp.TrainGANParams, "models", (
        FormField("dataset_id", "Dataset", "result", result_kind="datasets",
                  hint="Frames of 32, 64, 128, 256 or 512 px: ingest with one of those sizes."),
        FormField("latent_dim", "Latent dim", "number", _default(fp.TrainGANParams, "latent_dim")),
        FormField("epochs_per_stage", "Epochs per stage", "number", _default(fp.TrainGANParams, "epochs_per_stage"),
                  hint="One stage per resolution, from 4 px up to the frames' size."),
        FormField("batch_size", "Batch size", "number", _default(fp.TrainGANParams, "batch_size")),
        FormField("lr", "Learning rate", "number", _default(fp.TrainGANParams, "lr")),
        FormField("name", "Name", "text"),
    )),
    "encode": Job("encode", "Encode", fp.EncodeParams, "latents", (
        FormField("dataset_id", "Dataset", "result", result_kind="datasets"),
        FormField("model_id", "Model", "result", result_kind="models"),
        FormField("batch_size", "Batch size", "number", _default(fp.EncodeParams, "batch_size")),
    )),
    "project": Job("project", "Project", fp.ProjectParams, "projections", (
        FormField("latents_id", "Latents", "result", result_kind="latents"),
        FormField("method", "Method", "radio", _default(fp.ProjectParams, "method"), ("pca", "umap")),
        FormField("n_components", "Dimensions", "radio", _default(fp.ProjectParams, "n_components"), (2, 3)),
        FormField("n_neighbors", "Neighbours (UMAP)", "number", _default(fp.ProjectParams, "n_neighbors"),
                  hint="Small: local detail; large: global layout."),
        FormField("min_dist", "Min dist (UMAP)", "number", _default(fp.ProjectParams, "min_dist")),
        FormField("metric", "Metric (UMAP)", "select", _default(fp.ProjectParams, "metric"),
                  get_args(fp.ProjectParams.model_fields["metric"].annotation)),
    )),
    "cluster": Job("cluster", "Cluster", fp.ClusterParams, "clusterings", (
        FormField("projection_id", "Projection", "result", result_kind="projections"),
        FormField("space", "Space", "radio", _default(fp.ClusterParams, "space"), ("projection", "latent"),
                  hint="Cluster the map's coordinates or the full latent vectors."),
        FormField("min_cluster_size", "Min cluster size", "number", _default(fp.ClusterParams, "min_cluster_size")),
        FormField("min_samples", "Min samples", "number", _default(fp.ClusterParams, "min_samples"),
                  hint="Empty: same as min cluster size. Larger: more points called noise."),
    )),
    "calibrate": Job("calibrate-gamma", "Calibrate γ", fp.CalibrateParams, "calibrations", (
        FormField("model_id", "Model", "result", result_kind="models",
                  hint="Real frames for the bands come from the dataset it was trained on."),
        FormField("references", "References", "number", 16,
                  hint="Prior draws to perturb (references lassoed on a map come from the variations panel)."),
        FormField("gammas", "γ values", "text", ", ".join(f"{g:g}" for g in fp.GAMMA_SWEEP),
                  hint="Comma-separated, each in (0, 10]; empty for 0.25 … 2."),
        FormField("n_per_reference", "Samples per γ", "number", _default(fp.CalibrateParams, "n_per_reference"),
                  hint="Per reference and γ."),
    )),
}
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
        )
    names = {f.name for f in spec.fields}
    data = {k: v for k, v in values.items() if k in names}
    if job == "calibrate":
        data["references"] = {"n_prior": data.get("references")}
        if data.get("gammas") is None:
            del data["gammas"]  # the default sweep
        else:  # pydantic reads each token as a number and names the one that is not
            data["gammas"] = [t for t in re.split(r"[,;\s]+", data["gammas"]) if t]
    if job == "project" and data.get("n_components") is not None:
        data["n_components"] = int(data["n_components"])  # radio values come back as sent, but be sure
    return spec.model(**data)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _whole(model: type[BaseModel], name: str) -> bool:
    """Whether a model field takes whole numbers only (``int`` or ``int | None``)."""
    info = model.model_fields.get(name)
    return info is not None and (info.annotation is int or int in get_args(info.annotation)) \
        and float not in get_args(info.annotation)


def bounds_text(model: type[BaseModel], name: str) -> str:
    """The allowed values of a model field in words: 'a whole number between 2 and 200', 'more
    than 0 and at most 1', "one of 'pca', 'umap'", or '' when it has no bounds."""
    info = model.model_fields.get(name)
    if info is None:
        return ""
    if get_origin(info.annotation) is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(info.annotation))
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, Ge):
            lo = ("at least", m.ge)
        elif isinstance(m, Gt):
            lo = ("more than", m.gt)
        elif isinstance(m, Le):
            hi = ("at most", m.le)
        elif isinstance(m, Lt):
            hi = ("less than", m.lt)
    if lo and hi and lo[0] == "at least" and hi[0] == "at most":
        text = f"between {_number(lo[1])} and {_number(hi[1])}"
    else:
        text = " and ".join(f"{bound[0]} {_number(bound[1])}" for bound in (lo, hi) if bound)
    return f"a whole number {text}".strip() if _whole(model, name) else text


_INTEGER = re.compile(r"must be None or an integer between (\S+) and (\S+)")


def in_words(text: str, value: Any) -> str:
    """A validator's 'must be None or an integer between 8 and 1024' as a scientist says it."""
    found = _INTEGER.fullmatch(text)
    if not found:
        return text
    lo, hi = int(found[1]), int(found[2])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return f"must be a whole number of at least {lo}" if value < lo else f"must be a whole number of at most {hi}"
    return f"must be a whole number between {lo} and {hi}"


def _label(job: str, name: str) -> str:
    """'Neighbours [n_neighbors]': the form's label and the parameter it fills."""
    for f in JOBS[job].fields:
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


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


NOT_A_NUMBER = ("int_parsing", "int_from_float", "float_parsing", "int_type", "float_type")
CLIP_HINT = "enter both percentiles (0 ≤ low < high ≤ 100), or leave both empty for no clipping"
_PRE_FIELDS = {"size": "size", "patch_size": "patch_size", "log": "log", "mask_nonpositive": "mask_nonpositive",
               "clip_percentiles": "clip_lo"}  # the validator's message names the pair


def explain(job: str, exc: ValidationError) -> list[Problem]:
    """One readable problem per bad field: its label, the value given, the allowed range."""
    model = JOBS[job].model
    problems: dict[str, Problem] = {}
    for err in exc.errors():
        loc = [p for p in err["loc"] if isinstance(p, str)]
        msg = err["msg"].removeprefix("Value error, ")
        value = err.get("input")
        if isinstance(value, dict) and len(value) == 1:  # a form field that fills one nested parameter
            value = next(iter(value.values()))
        if loc[:2] == ["preprocess", "clip_percentiles"]:
            index = next((p for p in err["loc"] if isinstance(p, int)), 0)
            name = ("clip_lo", "clip_hi")[index]
            problems.setdefault(name, Problem(_label(job, name), value, CLIP_HINT))
            continue
        if loc and loc[0] == "preprocess":  # nested: preprocess.size
            name = _PRE_FIELDS.get(loc[1], loc[1]) if len(loc) > 1 else "preprocess"
            bounds = ""
        elif not loc:  # a model validator: "size=4 must be None or an integer between 8 and 1024"
            found = re.match(r"(\w+)=(.*?) (must .*)", msg)
            if found:
                name = _PRE_FIELDS.get(found.group(1), found.group(1))
                value = _literal(found.group(2))
                problems.setdefault(name, Problem(_label(job, name), value, in_words(found.group(3), value)))
            else:
                problems.setdefault("form", Problem("form", None, msg))
            continue
        else:
            name = loc[0]  # unions add the member's type to loc ('source', 'str'): keep the field
            bounds = bounds_text(model, name)
        if name in problems:
            continue
        if value is None:
            text = f"enter {bounds}" if bounds else "required"
        elif bounds:
            text = f"must be {bounds}"
        elif err["type"] in NOT_A_NUMBER:
            text = "must be a whole number" if err["type"].startswith("int") else "must be a number"
        else:
            text = msg[:1].lower() + msg[1:]
        problems[name] = Problem(_label(job, name), value, text)
    return list(problems.values())


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
        return f"VAE d={p.latent_dim}, β={p.beta:g}, {p.epochs} epochs on {p.dataset_id}"
    if job == "train-gan":
        return f"GAN d={p.latent_dim}, {p.epochs_per_stage} epochs per stage on {p.dataset_id}"
    if job == "calibrate":
        return (f"γ sweep {p.gammas[0]:g}…{p.gammas[-1]:g} ({len(p.gammas)} values), "
                f"{p.references.n_prior}×{p.n_per_reference} samples on {p.model_id}")
    if job == "encode":
        return f"encode {p.dataset_id} with {p.model_id}"
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
