"""Level naming benchmark: how often a found disc is named wrong, how often a scan is fully right, and how
often ``spine.naming.uncertain`` fires on correctly named scans, per set and sequence.

Sets (all in ../shared/data; truth as its README describes):

* ``volumes``: vb1/vb2/vb3/ivd with level ids (3D; a level is right when the majority predicted id over its
  ground-truth voxels is its id);
* ``spider_masks``: SPIDER mid-sagittal T1/T2/SPACE slices with masks; discs ordered from the bottom are
  L5/S1, L4/L5, ... (usual anatomy);
* ``sacrum cut`` / ``top cut``: the same slices cropped so that only 15 mm of bone below L5/S1 stays in view,
  or so that the image starts at the middle of the fourth disc from the bottom's upper body (hard cases);
* ``spider``: every other SPIDER mid-sagittal slice (no masks): a weak count check, right when the lowest
  found disc is named L5/S1 and the number of discs found is SPIDER's ``num_discs`` (wrong when the lowest
  found disc is named otherwise although all discs were found).

With ``--cv MODELDIR`` (a ``lumbarkit train segment`` folder with ``work_fold{k}/checkpoint.pt``) every case
of the first two sets is segmented by the fold model trained without its patient; otherwise by ``--model``
(default: the packaged model), which saw some of them in training. Needs torch only with ``--cv``.

    python benchmarks/naming.py --data ../shared/data --out runs/naming [--cv runs/seg_v4] [--limit N]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from lumbarkit.io import load_scan
from lumbarkit.models.folder import ModelFolder, packaged_model
from lumbarkit.stages.s1_segment import predict_probabilities
from lumbarkit.stages.s2_localize import localize
from lumbarkit.training.grade.data import read_series
from lumbarkit.training.segment.data import list_cases, load_png_case
from lumbarkit.training.segment.evaluate import disc_ids_from_bottom, naming_scores

SACRUM_KEEP_MM = 15.0  # bone kept below the L5/S1 disc in the "sacrum cut" crops


def _predictors(args, cases):
    """case id -> predict function: the fold model without the case's patient (--cv) or the one model."""
    model = ModelFolder.load(args.model) if args.model else packaged_model("segment_2d")
    if args.cv is None:
        return (lambda case: model.run), model.spec.pixel_mm, model
    from lumbarkit.training.folds import source_balanced_folds
    from lumbarkit.training.segment.evaluate import torch_predictor
    from lumbarkit.training.segment.train import SegTrainConfig, finished_net

    cfg = SegTrainConfig(steps=args.steps)
    folds = source_balanced_folds(cases, cfg.n_folds, cfg.seed)
    nets = {k: finished_net(args.cv / f"work_fold{k}", cfg) for k in range(cfg.n_folds)}
    preds = {k: torch_predictor(n) for k, n in nets.items() if n is not None}

    def pick(case):
        return preds.get(folds[case["patient"]])

    return pick, cfg.target_mm, model


def _row(levels, truth_ids: np.ndarray, **extra) -> dict:
    """Naming outcome of one scan against truth ids on its grid."""
    names = naming_scores(levels.segmentation.labels, truth_ids)["levels"]
    wrong = [k for k, v in names.items() if v not in (k, "missed")]
    discs = {k: v for k, v in names.items() if "/" in k}
    n = levels.naming
    return {**extra, "levels": len(names), "named_wrong": bool(wrong), "fully_right": all(k == v for k, v in names.items()),
            "lumbar6_right": sum(k == v for k, v in discs.items()), "uncertain": bool(n.uncertain), "anchor": n.anchor,
            "reasons": " | ".join(n.reasons), **n.cues, "wrong": " ".join(f"{k}->{v}" for k, v in names.items() if k != v)}


def _crop(scan, truth2d: np.ndarray, rows: slice):
    from lumbarkit.scan import Scan

    arr = scan.array[:, rows]
    affine = scan.affine.copy()
    affine[:3, 3] = scan.affine[:3, :3] @ np.array([0, rows.start or 0, 0]) + scan.affine[:3, 3]
    return Scan(np.ascontiguousarray(arr), affine, scan.metadata), truth2d[rows]


def run_masks(cases, pick, target_mm) -> list[dict]:
    rows = []
    for c in cases:
        predict = pick(c)
        if predict is None:
            continue
        scan, truth = load_png_case(c)
        ids = disc_ids_from_bottom(truth)
        base = {"case": c["case"], "sequence": c["sequence"]}
        levels = localize(scan, predict_probabilities(scan, predict, target_mm))
        rows.append(_row(levels, ids[None], set="spider_masks", **base))
        low = np.argwhere(ids == 124)[:, 0].max()
        keep = int(low + SACRUM_KEEP_MM / scan.spacing_mm[1])
        if keep < truth.shape[0] - 5:
            s2, t2 = _crop(scan, ids, slice(0, keep))
            rows.append(_row(localize(s2, predict_probabilities(s2, predict, target_mm)), t2[None], set="sacrum cut", **base))
        if (ids == 121).any():
            top = int(np.argwhere(ids == 121)[:, 0].min()) - int(12 / scan.spacing_mm[1])
            if top > 5:
                s3, t3 = _crop(scan, ids, slice(top, truth.shape[0]))
                rows.append(_row(localize(s3, predict_probabilities(s3, predict, target_mm)), t3[None], set="top cut", **base))
    return rows


def run_volumes(cases, pick, target_mm) -> list[dict]:
    from lumbarkit.io.volume import read_label_volume

    rows = []
    for c in cases:
        predict = pick(c)
        if predict is None:
            continue
        scan = load_scan(c["image"])
        truth = read_label_volume(c["label"])
        levels = localize(scan, predict_probabilities(scan, predict, target_mm))
        rows.append(_row(levels, truth, set="volumes", case=c["case"], sequence=c["sequence"]))
    return rows


def run_spider(data: Path, model, skip: set[str], limit: int) -> list[dict]:
    """The weak count check on the SPIDER slices without masks."""
    from lumbarkit.stages.s1_segment import segment

    table = pd.read_csv(data / "spider" / "series.csv").set_index("series")
    rows = []
    for s in read_series(data / "spider")[: limit or None]:
        if s["series"] in skip:
            continue
        scan = load_scan(data / "spider" / "images" / f"{s['series']}.png", spacing_mm=s["spacing_mm"])
        levels = localize(scan, segment(scan, model).probabilities)
        names = [d.name for d in levels.discs]
        all_found = len(names) == int(table.loc[s["series"], "num_discs"])
        lowest_ok = bool(names) and names[-1] == "L5/S1"
        n = levels.naming
        rows.append({"set": "spider", "case": s["series"], "sequence": s["sequence"], "named_wrong": all_found and not lowest_ok,
                     "fully_right": all_found and lowest_ok, "uncertain": bool(n.uncertain), "anchor": n.anchor,
                     "reasons": " | ".join(n.reasons), **n.cues, "wrong": "" if lowest_ok else f"lowest={names[-1] if names else '-'}"})
    return rows


def summary(df: pd.DataFrame) -> pd.DataFrame:
    def agg(g):
        right = g[g["fully_right"]]
        return pd.Series({"scans": len(g), "found disc named wrong": int(g["named_wrong"].sum()),
                          "wrong without uncertain": int((g["named_wrong"] & ~g["uncertain"]).sum()),
                          "fully right": f"{g['fully_right'].mean():.1%}",
                          "uncertain on right": f"{int(right['uncertain'].sum())}/{len(right)}"})

    return df.groupby(["set", "sequence"]).apply(agg, include_groups=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("runs/naming"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--cv", type=Path, default=None, help="CV run folder: fold models for the volumes and masks")
    ap.add_argument("--steps", type=int, default=3000, help="training steps of the CV run")
    ap.add_argument("--limit", type=int, default=0, help="only the first N SPIDER series of the count check")
    ap.add_argument("--skip-spider", action="store_true")
    args = ap.parse_args()
    cases = list_cases(args.data)
    pick, target_mm, model = _predictors(args, cases)
    rows = run_masks([c for c in cases if c["source"] == "spider_masks"], pick, target_mm)
    rows += run_volumes([c for c in cases if c["source"] in ("vb1", "vb2", "vb3", "ivd")], pick, target_mm)
    if not args.skip_spider:
        skip = {c["case"].removeprefix("mask_") for c in cases if c["source"] == "spider_masks"}
        rows += run_spider(args.data, model, skip, args.limit)
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "naming_cases.csv", index=False)
    table = summary(df)
    (args.out / "naming_summary.txt").write_text(table.to_string() + "\n")
    print(table.to_string())
    print(f"per-case rows: {args.out / 'naming_cases.csv'}")


if __name__ == "__main__":
    main()
