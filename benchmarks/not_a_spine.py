"""How the not-a-spine check (``lumbarkit.pipeline.not_a_spine``) splits real scans from non-spine images.

Runs stage 1 + level naming on the SPIDER mid-sagittal slices, the labelled volumes and seeded
non-spine images (noise, smoothed noise, stripes, a bright disk), and prints per group the
median vertebral-body area (mm2), the mean winning-class probability over body/disc pixels, and
how many images the check rejects. A rejected real scan is a false alarm; an accepted non-spine
image is a miss.

    python benchmarks/not_a_spine.py [--data ../shared/data] [--limit N]
"""

from __future__ import annotations

import argparse
import ast
import csv
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from lumbarkit.io import load_scan
from lumbarkit.models.folder import packaged_model
from lumbarkit.pipeline import LOW_SPINE_CONFIDENCE, SMALL_BODY_AREA_MM2, median_named_body_area_mm2, spine_confidence, not_a_spine
from lumbarkit.scan import Scan
from lumbarkit.stages.s2_localize import localize
from lumbarkit.stages.s1_segment import segment


def non_spine_images(n_each: int, seed: int = 0) -> list[tuple[str, Scan]]:
    """Seeded 256 x 256 single-slice images at 1 mm that hold no spine."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256]
    out = []
    for i in range(n_each):
        kinds = {
            "uniform noise": rng.random((256, 256)) * rng.uniform(20, 255),
            "smoothed noise": ndi.gaussian_filter(rng.random((256, 256)), rng.uniform(2, 8)) * 1000,
            "stripes": 100 + 80 * (np.sin(yy / rng.uniform(4, 12)) > 0) + rng.normal(0, 10, (256, 256)),
            "bright disk": 50 + 150 * ((yy - 128) ** 2 + (xx - 128) ** 2 < rng.uniform(40, 100) ** 2) + rng.normal(0, 10, (256, 256)),
        }
        for kind, img in kinds.items():
            out.append((f"{kind} {i}", Scan.from_array(img[None].astype(np.float32), np.eye(4))))
    return out


def real_scans(data: Path, limit: int) -> list[tuple[str, str, Scan]]:
    """(group, name, scan) for SPIDER slices and the labelled volumes."""
    out = []
    rows = list(csv.DictReader(open(data / "spider" / "series.csv")))[: limit or None]
    for r in rows:
        png = data / "spider" / "images" / f"{r['series']}.png"
        spacing = tuple(float(v) for v in ast.literal_eval(r["PixelSpacing"]))
        out.append(("spider", r["series"], lambda p=png, s=spacing: load_scan(p, spacing_mm=s)))
    vols = list(csv.DictReader(open(data / "volumes" / "index.csv")))[: limit or None]
    for r in vols:
        out.append(("volumes", r["case"], lambda c=r["case"]: load_scan(data / "volumes" / f"{c}_image.nii.gz")))
    return out


def check(scan: Scan, model) -> tuple[float, float, bool, int, float]:
    """(median body area mm2, spine confidence, rejected, discs found, spread of disc spacing) of one scan.

    The spread is the coefficient of variation of the distances between consecutive disc centroids."""
    sem = segment(scan, model=model)
    levels = localize(scan, sem.probabilities)
    area = median_named_body_area_mm2(scan, levels) if len(levels.discs) else float("nan")
    centres = np.array([d.centroid_mm for d in levels.discs]) if len(levels.discs) >= 3 else np.zeros((0, 3))
    gaps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    spread = float(gaps.std() / gaps.mean()) if len(gaps) else float("nan")
    rejected = not_a_spine(scan, levels, sem.probabilities) is not None
    return area, spine_confidence(sem.probabilities), rejected, len(levels.discs), spread


def _pct(v: list[float]) -> str:
    a = np.asarray([x for x in v if np.isfinite(x)])
    if not len(a):
        return "-"
    return f"min {a.min():7.2f}  p5 {np.percentile(a, 5):7.2f}  median {np.median(a):7.2f}  max {a.max():7.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N SPIDER slices and N volumes")
    ap.add_argument("--noise", type=int, default=5, help="non-spine images of each kind")
    ap.add_argument("--csv", type=Path, default=None, help="also write one row per image here")
    args = ap.parse_args()
    model = packaged_model("segment_2d")
    t0 = time.time()
    groups: dict[str, list[tuple]] = {}
    for group, name, load in real_scans(args.data, args.limit):
        groups.setdefault(group, []).append((name, *check(load(), model)))
    for name, scan in non_spine_images(args.noise):
        groups.setdefault("non-spine", []).append((name, *check(scan, model)))
    if args.csv is not None:
        cols = ["group", "image", "median_body_area_mm2", "confidence", "rejected", "discs_found", "disc_spacing_spread"]
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows([group, *r] for group, rows in groups.items() for r in rows)
    print(f"thresholds: rejected when median body area < {SMALL_BODY_AREA_MM2:.0f} mm2 and confidence < "
          f"{LOW_SPINE_CONFIDENCE:.2f} (or fewer than 2 discs); {time.time() - t0:.0f} s")
    for group, rows in groups.items():
        rejected = [r[0] for r in rows if r[3]]
        print(f"\n{group}: {len(rows)} images, rejected {len(rejected)}")
        print(f"  median body area mm2: {_pct([r[1] for r in rows])}")
        print(f"  confidence          : {_pct([r[2] for r in rows])}")
        print(f"  discs found         : {_pct([r[4] for r in rows])}")
        print(f"  disc spacing spread : {_pct([r[5] for r in rows])}")
        if group != "non-spine" and rejected:
            print(f"  false alarms: {', '.join(rejected)}")
        if group == "non-spine":
            accepted = [r[0] for r in rows if not r[3]]
            print(f"  accepted (misses): {', '.join(accepted) or 'none'}")


if __name__ == "__main__":
    main()
