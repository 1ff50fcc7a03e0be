"""Transitional spines end to end: a six-lumbar phantom's own label map through measure, result.json and levels.csv."""

from __future__ import annotations

import csv
import json

import pytest

from lumbarkit.phantom import make_phantom
from lumbarkit.pipeline import Pipeline
from lumbarkit.results.scan_result import SCHEMA_PATH

SIX = ("T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1")


@pytest.fixture(scope="module")
def six_lumbar_result():
    ph = make_phantom(noise_sigma=0.0, vertebrae=SIX, n_slices=5)
    return Pipeline().run(ph.scan, until="measure", labels=ph.labels)


def test_six_lumbar_label_map_gives_l6_names_in_result_json(six_lumbar_result):
    jsonschema = pytest.importorskip("jsonschema")
    doc = six_lumbar_result.to_dict()
    schema = json.loads(SCHEMA_PATH.read_text())
    for part in ("levels", "vertebrae", "spine"):  # a --labels run has no model records, so not the whole document
        jsonschema.validate(doc[part], {**schema["properties"][part], "$defs": schema["$defs"]})
    assert [r["level"] for r in doc["levels"]][-3:] == ["L4/L5", "L5/L6", "L6/S1"]
    assert "L6" in [r["name"] for r in doc["vertebrae"]]
    assert doc["spine"]["naming"]["lumbar_vertebrae"] == 6 and doc["spine"]["naming"]["uncertain"] is False


def test_six_lumbar_levels_csv_and_segment_names(six_lumbar_result, tmp_path):
    from lumbarkit.report.outputs import segment_names, write_levels_csv

    with open(write_levels_csv(six_lumbar_result, tmp_path / "levels.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["level"] for r in rows][-2:] == ["L5/L6", "L6/S1"]
    assert {r["naming_uncertain"] for r in rows} == {"False"}
    names = segment_names(six_lumbar_result.levels.segmentation.labels)
    assert names[124] == "L5/L6 intervertebral disc" and names[125] == "L6/S1 intervertebral disc"


def test_four_lumbar_disc_l4_s1_is_measured_against_its_truth():
    ph = make_phantom(noise_sigma=0.0, vertebrae=("T12", "L1", "L2", "L3", "L4", "S1"), n_slices=5)
    result = Pipeline().run(ph.scan, until="measure", labels=ph.labels)
    disc = {d.name: d for d in result.measurements.discs}["L4/S1"]
    truth = ph.truth.discs["L4/S1"]
    assert disc.height_middle.ok and abs(disc.height_middle.value - truth.middle_height_mm) < 1.5
