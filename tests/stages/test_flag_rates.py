"""Clinical flags on real healthy spines stay at population rates (issue 13), on ground-truth and predicted masks.

vb2 (10 healthy volunteers, T2) and ivd (4 young adults): the rates the issue sets are at most 5 % of levels
with a Meyerding grade, at most 10 % of discs with absolute central stenosis, and never a Meyerding grade
from a posterior slip.
"""

from __future__ import annotations

import csv

import pytest

from lumbarkit.io import load_scan
from lumbarkit.io.volume import read_label_volume
from lumbarkit.pipeline import Pipeline

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _healthy(shared_data, datasets=("vb2", "ivd")):
    with open(shared_data / "volumes" / "index.csv") as fh:
        return [r for r in csv.DictReader(fh) if r["dataset"] in datasets]


def _discs(result):
    return [d for d in result.measurements.discs if d.name[0] in "TL"]


def test_ground_truth_masks_of_healthy_spines(shared_data):
    pipeline = Pipeline()
    slips, graded, retro_graded, bodies, fractures = 0, 0, 0, 0, 0
    for r in _healthy(shared_data, ("vb2",)):
        scan = load_scan(shared_data / "volumes" / f"{r['case']}_image.nii.gz")
        labels = read_label_volume(shared_data / "volumes" / f"{r['case']}_label.nii.gz")
        result = pipeline.run(scan, until="measure", labels=labels)
        for d in _discs(result):
            if d.slip_percent.ok:
                slips += 1
                graded += int(d.meyerding_grade.value > 0)
                retro_graded += int(d.slip_percent.value < 0 and d.meyerding_grade.value > 0)
        for v in result.measurements.vertebrae:
            if v.genant_grade.ok:
                bodies += 1
                fractures += int(v.genant_grade.value > 0)
    assert slips >= 50 and retro_graded == 0
    assert graded / slips <= 0.05, (graded, slips)
    assert bodies >= 50 and fractures / bodies <= 0.05, (fractures, bodies)


def test_predicted_masks_of_healthy_spines(shared_data):
    pipeline = Pipeline()
    slips = graded = canals = absolute = 0
    for r in _healthy(shared_data):
        result = pipeline.run(shared_data / "volumes" / f"{r['case']}_image.nii.gz", until="measure")
        for d in _discs(result):
            if d.slip_percent.ok:
                slips += 1
                graded += int(d.meyerding_grade.value > 0)
                assert not (d.slip_percent.value < 0 and d.meyerding_grade.value > 0)
            if d.canal_ap.ok:
                canals += 1
                absolute += int(d.canal_stenosis == "absolute")
    assert slips >= 60 and graded / slips <= 0.05, (graded, slips)
    assert canals >= 60 and absolute / canals <= 0.10, (absolute, canals)
