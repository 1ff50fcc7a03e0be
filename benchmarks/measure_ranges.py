"""Distribution of every measured value on the ground-truth masks, before the plausibility gate: the evidence
behind the ranges in ``lumbarkit/stages/s3_measure/plausible.py``; also the field of view of every real scan
(the evidence behind ``lumbarkit/io/checks.py``).

    python benchmarks/measure_ranges.py [--data ../shared/data]

Masks: volumes/ (vb1, vb2, vb3 bodies; ivd discs) and spider_space/ (discs and dural sac, semantic masks
turned into disc ids by position). Prints n, min, p1, median, p99, max per measure (V = vertebra, D = disc).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from measure_real import _spider_labels  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = ap.parse_args()
    import lumbarkit.stages.s3_measure.plausible as plausible
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.stages.s3_measure import measure
    from lumbarkit.training.grade.data import read_series

    plausible.RANGES.clear()  # raw values: nothing refused
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    fov: list[tuple[float, float, str]] = []

    def add(scan, labels, name):
        fov.append((scan.shape[1] * scan.spacing_mm[1], scan.shape[2] * scan.spacing_mm[2], name))
        m = measure(scan, labels)
        for kind, records in (("V", m.vertebrae), ("D", m.discs)):
            for r in records:
                for x in r.measures():
                    if x.ok:
                        values[(kind, x.name)].append(float(x.value))
        if m.lordosis.ok:
            values[("S", "lordosis")].append(float(m.lordosis.value))

    with open(args.data / "volumes" / "index.csv") as fh:
        for r in csv.DictReader(fh):
            add(load_scan(args.data / "volumes" / f"{r['case']}_image.nii.gz"),
                read_label_volume(args.data / "volumes" / f"{r['case']}_label.nii.gz"), r["case"])
    with open(args.data / "spider_space" / "index.csv") as fh:
        for r in csv.DictReader(fh):
            add(load_scan(args.data / "spider_space" / f"{r['series']}_image.nii.gz"),
                _spider_labels(read_label_volume(args.data / "spider_space" / f"{r['series']}_label.nii.gz")), r["series"])
    for (kind, name), v in sorted(values.items()):
        a = np.asarray(v)
        print(f"{kind} {name:26s} n {a.size:4d}  min {a.min():7.2f}  p1 {np.percentile(a, 1):7.2f}  "
              f"median {np.median(a):7.2f}  p99 {np.percentile(a, 99):7.2f}  max {a.max():7.2f}")
    for r in read_series(args.data / "spider"):
        scan = load_scan(args.data / "spider" / "images" / f"{r['series']}.png", spacing_mm=r["spacing_mm"])
        fov.append((scan.shape[1] * scan.spacing_mm[1], scan.shape[2] * scan.spacing_mm[2], r["series"]))
    small = min(fov, key=lambda f: min(f[:2]))
    large = max(fov, key=lambda f: max(f[:2]))
    print(f"field of view of {len(fov)} real scans: smallest {small[0]:.0f} x {small[1]:.0f} mm ({small[2]}), "
          f"largest {large[0]:.0f} x {large[1]:.0f} mm ({large[2]})")


if __name__ == "__main__":
    main()
