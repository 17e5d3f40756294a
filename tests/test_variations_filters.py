"""Plausibility filter presets by kind of data: what each switches on, and which samples each keeps."""

from __future__ import annotations

import pandas as pd
import pytest

from core.limits import BadParameter
from core.variations.filters import PRESET_NAMES, FilterParams

# Six samples' metrics against their reference, made by hand:
#   0  small change everywhere                      particles keep, clumps keep
#   1  entropy changed too much (0.25 > 0.2)         particles reject, clumps keep
#   2  the particle moved far: IoU 0.3               particles keep, clumps reject (IoU)
#   3  mass changed by 35 %                          particles keep, clumps reject (intensity)
#   4  every metric exactly at its threshold         both keep (≤ and ≥ are inclusive)
#   5  everything too far                            both reject
METRICS = pd.DataFrame({
    "entropy_diff": [0.05, 0.25, 0.10, 0.10, 0.20, 0.30],
    "iou": [0.90, 0.90, 0.30, 0.80, 0.50, 0.20],
    "intensity_dev": [0.05, 0.05, 0.05, 0.35, 0.20, 0.50],
    "area_diff": [0.0, 0.0, 0.4, 0.0, 0.0, 0.6],
})


def test_each_presets_active_filters():
    """particles: entropy only (the paper's particle study); clumps: intensity and IoU; custom: none
    until given; the defaults are the particles preset."""
    assert FilterParams.from_preset("particles").active == {"entropy_max": 0.2}
    assert FilterParams.from_preset("clumps").active == {"iou_min": 0.5, "intensity_max": 0.2}
    assert FilterParams.from_preset("custom").active == {}
    assert FilterParams() == FilterParams.from_preset("particles")
    assert PRESET_NAMES == ("particles", "clumps", "custom")


def test_a_preset_is_named_by_its_thresholds():
    """A preset's own thresholds carry its name; one threshold edited makes it custom; custom
    thresholds that happen to equal a preset are named by that preset."""
    assert FilterParams().preset == "particles" and FilterParams.from_preset("clumps").preset == "clumps"
    edited = FilterParams.from_preset("particles", iou_min=0.5)
    assert edited.preset == "custom" and edited.active == {"entropy_max": 0.2, "iou_min": 0.5}
    assert FilterParams.from_preset("clumps", intensity_max=0.3).preset == "custom"
    assert FilterParams.from_preset("custom", iou_min=0.5, intensity_max=0.2).preset == "clumps"
    with pytest.raises(BadParameter, match="preset='beads' must be one of 'particles', 'clumps', 'custom'"):
        FilterParams.from_preset("beads")
    with pytest.raises(BadParameter, match=r"\['iou_max'\] are unknown"):
        FilterParams.from_preset("custom", iou_max=0.5)


@pytest.mark.parametrize("preset, thresholds, kept, failed", [
    ("particles", {}, [0, 2, 3, 4], {"entropy_max": 2}),  # rows 1 and 5
    ("clumps", {}, [0, 1, 4], {"iou_min": 2, "intensity_max": 2}),  # IoU: rows 2, 5; mass: rows 3, 5
    # custom |ΔH| ≤ 0.15 and mass ≤ 10 %: entropy rejects 1, 4, 5; mass rejects 3, 4, 5
    ("custom", {"entropy_max": 0.15, "intensity_max": 0.1}, [0, 2], {"entropy_max": 3, "intensity_max": 3}),
])
def test_presets_keep_the_rows_chosen_by_hand(preset, thresholds, kept, failed):
    """The hand-made table above, filtered by each preset: the kept rows and the rejections per filter."""
    mask, rejected = FilterParams.from_preset(preset, **thresholds).apply(METRICS)
    assert METRICS.index[mask].tolist() == kept and rejected == failed
