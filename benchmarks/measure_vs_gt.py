"""Stage-4 measurements from ground-truth masks vs from stage-1 masks, on cases the model never saw.

Each vb1/vb2/vb3 volume is segmented by the cross-validation fold model that was trained without
its patient (``MODELDIR/work_fold{k}/checkpoint.pt`` from ``lumbarkit train segment --cv``). Every
ground-truth body is paired with the predicted body that overlaps it most (so a level-naming
error does not hide a good mask), both label maps are measured, and the median and 90th
percentile absolute difference per measure are printed and written to --out as CSV + markdown.
Needs the [train] extra (torch) to run the fold checkpoints.

    python benchmarks/measure_vs_gt.py --model runs/seg_final --data ../shared/data --out runs/measure_vs_gt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

MEASURES = ["height_anterior_mm", "height_middle_mm", "height_posterior_mm", "depth_ap_mm", "wedge_ratio",
            "disc_height_anterior_mm", "disc_height_middle_mm", "disc_height_posterior_mm", "slip_percent"]


def relabel_by_overlap(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Give each predicted vertebra the id of the ground-truth body it overlaps most; drop the rest."""
    out = np.zeros_like(truth)
    for pid in np.unique(pred):
        if pid == 0 or pid >= 100:
            continue
        m = pred == pid
        ids = truth[m]
        ids = ids[(ids > 0) & (ids < 100)]
        if len(ids):
            out[m & (out == 0)] = np.bincount(ids).argmax()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="folder of a --cv run (with work_fold*/checkpoint.pt)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("runs/measure_vs_gt"))
    args = ap.parse_args()
    import torch

    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.nets.segmentation import build_segmentation_net
    from lumbarkit.stages.s1_segment import predict_probabilities
    from lumbarkit.stages.s2_localize import localize
    from lumbarkit.stages.s3_measure import measure
    from lumbarkit.training.folds import source_balanced_folds
    from lumbarkit.training.segment.data import list_cases
    from lumbarkit.training.segment.evaluate import torch_predictor
    from lumbarkit.training.segment.train import SegTrainConfig

    cfg = SegTrainConfig()
    cases = [c for c in list_cases(args.data) if c["source"] in ("vb1", "vb2", "vb3")]
    folds = source_balanced_folds(list_cases(args.data), cfg.n_folds, cfg.seed)
    rows = []
    for k in range(cfg.n_folds):
        ckpt = args.model / f"work_fold{k}" / "checkpoint.pt"
        if not ckpt.exists():
            print(f"fold {k}: no checkpoint, skipped")
            continue
        state = torch.load(ckpt, weights_only=False)
        if state["step"] < cfg.steps:
            print(f"fold {k}: still training (step {state['step']}), skipped")
            continue
        net = build_segmentation_net(cfg.architecture())
        net.load_state_dict(state["net"])
        net.eval()
        for c in [c for c in cases if folds[c["patient"]] == k]:
            scan = load_scan(c["image"])
            truth = read_label_volume(c["label"])
            levels = localize(scan, predict_probabilities(scan, torch_predictor(net), cfg.target_mm))
            pred = relabel_by_overlap(levels.segmentation.labels, truth)
            gt_rows = {r["vertebra"]: r for r in measure(scan, truth).to_rows()}
            pr_rows = {r["vertebra"]: r for r in measure(scan, pred).to_rows()}
            for name, g in gt_rows.items():
                p = pr_rows.get(name, {})
                row = {"case": c["case"], "source": c["source"], "vertebra": name}
                for m in MEASURES:
                    gv, pv = g.get(m), p.get(m)
                    ok = isinstance(gv, (int, float)) and isinstance(pv, (int, float)) and np.isfinite(gv) and np.isfinite(pv)
                    row[m] = abs(float(pv) - float(gv)) if ok else np.nan
                rows.append(row)
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "measure_vs_gt_rows.csv", index=False)
    summary = pd.DataFrame({m: {"median_abs_diff": df[m].median(), "p90_abs_diff": df[m].quantile(0.9),
                                "n_pairs": int(df[m].notna().sum())} for m in MEASURES}).T
    text = (f"{df['case'].nunique()} held-out cases, {len(df)} ground-truth vertebrae\n\n" + summary.round(2).to_string())
    (args.out / "measure_vs_gt.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
