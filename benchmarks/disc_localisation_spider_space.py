"""Disc localisation on SPIDER mid-sagittal slices against the true T2-SPACE disc masks.

For each of the spider_space series, the SPIDER PNG the grader is trained on (spider/images) is
matched to the spider_space slice it came from (highest correlation), stage 1 runs on the PNG as
the grade cache does, and the named discs are compared with the true disc components of that
slice (ordered bottom-up: the lowest true disc is L5/S1, as SPIDER's ``IVD label`` counts):

* recall / precision: true discs with a detected disc centroid within MATCH_MM, and vice versa;
* centroid error (mm) of matched discs;
* naming: detected disc names equal the bottom-up count of the true disc they match (this is
  what pairs the SPIDER gradings with crops).

Usage: python benchmarks/disc_localisation_spider_space.py [--model MODELDIR]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

MATCH_MM = 8.0
MIN_CORRELATION = 0.8  # PNG vs best spider_space slice; below it the two are not the same image
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _true_discs(label_slice: np.ndarray, pix: np.ndarray) -> list[np.ndarray]:
    from scipy import ndimage

    lab, n = ndimage.label(label_slice == 2)
    cents = []
    for i in range(1, n + 1):
        m = lab == i
        if m.sum() * pix.prod() >= 30.0:
            cents.append(np.argwhere(m).mean(axis=0) * pix)
    return sorted(cents, key=lambda c: -c[0])  # bottom first


def _nth_from_bottom(j: int) -> str:
    """Disc name ``j`` discs above L5/S1 (0 = L5/S1)."""
    from lumbarkit.levels import disc_name, vertebra_above

    upper = "L5"
    for _ in range(j):
        upper = vertebra_above(upper)
    return disc_name(upper)


def _match_slice(png: np.ndarray, vol: np.ndarray) -> tuple[int, float]:
    from skimage.transform import resize

    best, best_r = 0, -2.0
    for k in range(vol.shape[0]):  # returns (slice, correlation)
        s = vol[k]
        p = resize(png.astype(float), s.shape, preserve_range=True) if png.shape != s.shape else png.astype(float)
        r = np.corrcoef(p.ravel(), s.astype(float).ravel())[0, 1]
        if r > best_r:
            best, best_r = k, r
    return best, best_r


def main() -> None:
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.models.folder import ModelFolder, packaged_model
    from lumbarkit.stages.s2_localize import localize
    from lumbarkit.stages.s1_segment import segment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="segmentation model folder (default: packaged)")
    args = ap.parse_args()
    folder = packaged_model("segment_2d") if args.model is None else ModelFolder.load(args.model)
    with open(DATA / "spider" / "series.csv") as fh:
        spacing = {r["series"]: tuple(float(v) for v in r["PixelSpacing"].strip("[]").split(",")) for r in csv.DictReader(fh)}
    with open(DATA / "spider_space" / "index.csv") as fh:
        series = [r["series"] for r in csv.DictReader(fh)]
    n_true = n_det = n_tp = n_named = 0
    errors, all_named, skipped = [], 0, 0
    print(f"{'series':16s} true det matched named_ok  mean_err_mm")
    for s in series:
        png = DATA / "spider" / "images" / f"{s}.png"
        if not png.exists():
            continue
        scan = load_scan(png, spacing_mm=spacing[s])
        vol = load_scan(DATA / "spider_space" / f"{s}_image.nii.gz")
        labels = read_label_volume(DATA / "spider_space" / f"{s}_label.nii.gz")
        k, r = _match_slice(scan.array[0], vol.array)
        if r < MIN_CORRELATION:
            print(f"{s:16s} skipped: the PNG matches no kept slice (best correlation {r:.2f})")
            skipped += 1
            continue
        pix = np.array(vol.spacing_mm[1:])
        truth = _true_discs(labels[k], pix)
        # PNG pixel grid == volume in-plane grid (both native); scale if not
        scale = np.array(vol.shape[1:]) / np.array(scan.shape[1:])
        levels = localize(scan, segment(scan, model=folder).probabilities)
        det = []
        for d in levels.discs:
            m = levels.segmentation.labels[0] == d.label
            if m.any():
                det.append((d.name, np.argwhere(m).mean(axis=0) * scale * pix))
        matched = named = 0
        errs = []
        for j, t in enumerate(truth):
            dists = [np.linalg.norm(c - t) for _, c in det]
            if dists and min(dists) <= MATCH_MM:
                i = int(np.argmin(dists))
                matched += 1
                errs.append(dists[i])
                named += det[i][0] == _nth_from_bottom(j)
        n_true += len(truth)
        n_det += len(det)
        n_tp += matched
        n_named += named
        errors += errs
        lumbar = min(len(truth), 5)
        all_named += named >= lumbar and matched >= lumbar
        print(f"{s:16s} {len(truth):4d} {len(det):3d} {matched:7d} {named:8d}  {np.mean(errs) if errs else float('nan'):6.2f}")
    print(f"\nseries: {len(series) - skipped} ({skipped} skipped)  true discs {n_true}, detected {n_det}, matched {n_tp}")
    print(f"recall {n_tp / max(n_true, 1):.3f}  precision {n_tp / max(n_det, 1):.3f}  "
          f"centroid error median {np.median(errors):.2f} mm, p90 {np.percentile(errors, 90):.2f} mm")
    print(f"matched discs named as SPIDER counts them (bottom-up): {n_named}/{n_tp} = {n_named / max(n_tp, 1):.3f}")
    print(f"series whose lowest five (or all) true discs are all found and named right: {all_named}/{len(series) - skipped}")


if __name__ == "__main__":
    main()
