"""Lower / upper endplate length ratio at every disc of the ground-truth label volumes (vb1, vb2, vb3).

The slip measure needs the lower body's superior endplate as its reference; a much shorter one than the
upper body's inferior endplate means the lower body was only partly segmented (``MIN_ENDPLATE_RATIO`` in
``lumbarkit.stages.s3_measure.discs``). This prints how short that endplate gets on real, fully labelled
anatomy, and how many pairs the current threshold would refuse.

    python benchmarks/endplate_ratio.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

import lumbarkit.stages.s3_measure.discs as measure_discs
from lumbarkit.io import load_scan
from lumbarkit.io.volume import read_label_volume
from lumbarkit.stages.s3_measure import measure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = ap.parse_args()
    ratios: list[tuple[str, str, float]] = []
    slip = measure_discs._slip
    case = ""

    def recording_slip(lab, up_q, lo, k, name):
        lower = float(np.linalg.norm(lo.sp - lo.sa))
        upper = float(np.linalg.norm(up_q.corners[2] - up_q.corners[3]))
        ratios.append((case, name, lower / upper))
        return slip(lab, up_q, lo, k, name)

    measure_discs._slip = recording_slip
    for row in csv.DictReader(open(args.data / "volumes" / "index.csv")):
        case = row["case"]
        if case.startswith("vb"):
            measure(load_scan(args.data / "volumes" / f"{case}_image.nii.gz"),
                    read_label_volume(args.data / "volumes" / f"{case}_label.nii.gz"))
    v = np.array([r[2] for r in ratios])
    below = [r for r in ratios if r[2] < measure_discs.MIN_ENDPLATE_RATIO]
    print(f"{len(v)} disc levels: ratio min {v.min():.3f}  p1 {np.percentile(v, 1):.3f}  p5 {np.percentile(v, 5):.3f}  "
          f"median {np.median(v):.3f}  p95 {np.percentile(v, 95):.3f}  p99 {np.percentile(v, 99):.3f}  max {v.max():.3f}")
    above = [r for r in ratios if r[2] > measure_discs.MAX_ENDPLATE_RATIO]
    print(f"above MAX_ENDPLATE_RATIO = {measure_discs.MAX_ENDPLATE_RATIO}: {len(above)} "
          + ", ".join(f"{c} {n} {r:.2f}" for c, n, r in above))
    print(f"below MIN_ENDPLATE_RATIO = {measure_discs.MIN_ENDPLATE_RATIO}: {len(below)} "
          + ", ".join(f"{c} {n} {r:.2f}" for c, n, r in below))


if __name__ == "__main__":
    main()
