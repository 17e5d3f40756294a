"""Parameter rules in one place: the page's forms take defaults and choices from the flow models,
and read problems from pydantic's structured errors, not from their wording."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.job_forms import JOBS, explain, form_problems
from core.limits import OutOfRange
from flows.params import rule


@pytest.mark.parametrize("job", sorted(JOBS))
def test_form_defaults_and_choices_are_the_models(job):
    """Each input that fills a model field starts at the field's default and offers its Literal choices."""
    spec = JOBS[job]
    filled = [f for f in spec.fields if f.name in spec.model.model_fields and f.kind != "result"]
    for f in filled:
        r = rule(spec.model, f.name)
        if f.name not in ("gammas", "references", "experimental_ids"):  # lists typed as text; a count
            assert f.default == r.default, f.name                         # that fills references.n_prior
        assert tuple(f.options) == r.choices, f.name
    assert filled or job == "calibrate"


class Reworded(OutOfRange):
    """Core's refusal with other words: the form must not depend on them."""

    def __str__(self) -> str:
        return "frames this small cannot be resized"


def _core_error(cause: Exception) -> ValidationError:
    return ValidationError.from_exception_data("IngestParams", [
        {"type": "value_error", "loc": (), "input": {"source": "/a"}, "ctx": {"error": cause}}])


def test_core_refusal_is_read_from_the_error_object():
    """A bound core checks reaches the form as field, value and bounds, whatever the message says."""
    problems = explain("ingest", _core_error(Reworded("size", 4, 8, 1024)))
    assert [str(p) for p in problems] == ["Size must be a whole number of at least 8 (you entered 4)"]
    problems = explain("ingest", _core_error(Reworded("patch_size", 9000, 8, 8192)))
    assert [str(p) for p in problems] == ["Patch size must be a whole number of at most 8192 "
                                          "(you entered 9000)"]


def test_bounds_come_from_the_rule_not_the_message():
    """A range error names the bounds of the field's rule, for a nested field too (filters.iou_min)."""
    from components import variations_panel as panel
    from flows import params as fp

    error = ValidationError.from_exception_data("SampleVariationsParams", [
        {"type": "less_than_equal", "loc": ("filters", "iou_min"), "input": 3.0, "ctx": {"le": 99}}])
    [problem] = form_problems(error, fp.SampleVariationsParams, panel.FIELDS)
    assert str(problem) == "Min IoU [iou_min] must be between 0 and 1 (you entered 3.0)"


def test_a_rule_the_form_does_not_fill_is_said_for_the_whole_form():
    """An error on a parameter no input fills is shown once, as a line for the form."""
    error = ValidationError.from_exception_data("ProjectParams", [
        {"type": "greater_than_equal", "loc": ("fit_sample",), "input": 5, "ctx": {"ge": 100}}])
    [problem] = explain("project", error)
    assert problem.field == "form" and str(problem).startswith("fit_sample: Input should be greater than")


def test_filter_presets_fill_the_flow_parameters():
    """The sample-variations default is the particles preset; a preset fills the thresholds not given,
    a threshold given unlike the preset's makes it custom, and a dump reads back the same."""
    from flows.params import SampleVariationsParams, VariationFilters

    assert SampleVariationsParams.model_fields["filters"].default_factory().model_dump() == {
        "preset": "particles", "entropy_max": 0.2, "iou_min": None, "intensity_max": None}
    clumps = VariationFilters(preset="clumps")
    assert (clumps.entropy_max, clumps.iou_min, clumps.intensity_max) == (None, 0.5, 0.2)
    edited = VariationFilters(preset="clumps", iou_min=0.3)
    assert edited.preset == "custom" and (edited.iou_min, edited.intensity_max) == (0.3, 0.2)
    assert VariationFilters(**edited.model_dump()) == edited
    assert VariationFilters(preset="custom").model_dump() == {
        "preset": "custom", "entropy_max": None, "iou_min": None, "intensity_max": None}
    with pytest.raises(ValidationError, match="preset"):
        VariationFilters(preset="beads")


def test_variation_bounds_are_core_limits():
    """N per reference and the filter thresholds have the bounds of core.limits, in the flow model and in core."""
    from core import limits
    from core.variations.filters import FilterParams
    from core.variations.sampling import VariationParams
    from flows.params import SampleVariationsParams, VariationFilters

    n = rule(SampleVariationsParams, "n_per_reference")
    assert (n.lo[1], n.hi[1]) == limits.N_PER_REFERENCE
    for name, bounds in (("entropy_max", limits.ENTROPY_MAX), ("iou_min", limits.IOU_MIN),
                         ("intensity_max", limits.INTENSITY_MAX)):
        r = rule(VariationFilters, name)
        assert (r.lo[1], r.hi[1]) == bounds == FilterParams.RANGES[name]
    with pytest.raises(ValueError, match=f"n_per_reference={limits.N_PER_REFERENCE[1] + 1} must be between"):
        VariationParams(n_per_reference=limits.N_PER_REFERENCE[1] + 1).validate()
