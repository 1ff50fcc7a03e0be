"""The orchestrator runs any prefix of the chain; a given label map replaces segmentation."""

from __future__ import annotations

import numpy as np
import pytest

from lumbarkit.levels import VERTEBRA_IDS, disc_id
from lumbarkit.phantom import make_phantom
from lumbarkit.pipeline import STAGES, Pipeline, PipelineConfig
from lumbarkit.results import LabelMap, Levels, ScanResult


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(lordosis_deg=50.0, tilt_deg=15.0, shape_rc=(400, 320), seed=0)  # the demo phantom


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline(PipelineConfig(hotspots=False))


def test_the_chain_is_segment_measure_grade_hotspots():
    assert STAGES == ("segment", "measure", "grade", "hotspots")


def test_segment_only_stops_before_measuring(phantom, pipeline):
    result = pipeline.run(phantom.scan, until="segment")
    assert isinstance(result, ScanResult) and isinstance(result.levels, Levels)
    assert result.measurements is None and result.grades is None and result.crops is None
    assert set(result.timings_s) >= {"segment", "localize"} and "measure" not in result.timings_s
    assert [m.stage for m in result.models] == ["segmentation"]
    assert result.vertebrae_rows() == [] and len(result.levels_rows()) == len(result.levels.discs)


def test_up_to_measure_has_measurements_but_no_grades(phantom, pipeline):
    result = pipeline.run(phantom.scan, until="measure")
    assert result.measurements is not None and result.grades is None
    assert {v.name for v in result.measurements.vertebrae} >= {"L2", "L3", "L4"}


def test_up_to_grade_grades_every_lumbar_disc_without_hotspots(phantom, pipeline):
    result = pipeline.run(phantom.scan, until="grade")
    assert result.grades is not None and result.hotspots == {}
    assert set(result.grades.levels) | {n for n, _ in result.grades.skipped} == {d.name for d in result.levels.discs}
    assert set(result.grades.levels) >= {"L1/L2", "L2/L3", "L3/L4", "L4/L5", "L5/S1"}
    assert [m.stage for m in result.models] == ["segmentation", "grading"]


def test_unknown_stage_is_refused(phantom, pipeline):
    with pytest.raises(ValueError, match="until"):
        pipeline.run(phantom.scan, until="crops")


def test_a_given_label_map_names_the_levels_and_runs_no_segmentation(phantom):
    result = Pipeline().run(phantom.scan, until="measure", labels=phantom.labels)
    truth = phantom.truth
    assert result.models == ()  # no model ran
    names = [i.name for i in result.levels.instances]
    assert names == ["T12", "T12/L1", "L1", "L1/L2", "L2", "L2/L3", "L3", "L3/L4", "L4", "L4/L5", "L5", "L5/S1", "S1"]
    assert all(i.confidence == 1.0 for i in result.levels.instances) and result.levels.sacrum_found
    l3 = next(i for i in result.levels.instances if i.name == "L3")
    assert l3.label == VERTEBRA_IDS["L3"] and next(i for i in result.levels.discs if i.name == "L3/L4").label == disc_id("L3/L4")
    assert np.allclose(l3.centroid_mm[1:], truth.vertebrae["L3"].centroid_ras[1:], atol=1.0)  # voxel vs polygon centroid
    # the measurements are those of measuring the label map directly
    from lumbarkit.stages.s3_measure import measure

    direct = measure(phantom.scan, phantom.labels)
    assert result.measurements.to_rows() == direct.to_rows()


def test_label_map_carries_and_checks_its_grid(phantom):
    lm = LabelMap.on_grid_of(phantom.scan, phantom.labels)
    assert lm.labels.dtype == np.int32 and np.array_equal(lm.affine, phantom.scan.affine)
    assert LabelMap.on_grid_of(phantom.scan, lm) is lm  # already on the grid: not checked twice
    from lumbarkit.errors import InputError

    with pytest.raises(InputError, match="scan's grid"):
        LabelMap.on_grid_of(phantom.scan, phantom.labels[:, :-1])
    with pytest.raises(InputError, match="non-integer"):
        LabelMap.on_grid_of(phantom.scan, phantom.labels + 0.5)


def test_stages_are_reported_as_they_start(phantom, pipeline):
    seen: list[str] = []
    pipeline.run(phantom.scan, until="measure", on_stage=seen.append)
    assert seen == ["load", "segment", "measure"]
    seen.clear()
    pipeline.run(phantom.scan, until="measure", labels=phantom.labels, on_stage=seen.append)
    assert seen == ["load", "measure"]  # a given label map: no segmentation
