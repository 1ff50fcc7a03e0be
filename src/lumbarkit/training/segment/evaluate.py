"""Evaluate segmentation + level naming on labelled cases (Dice/IoU only where a case labels).

Per case, the loss region of training (labelled extent) is also the evaluation region, so
structures a source does not annotate are never counted as false positives.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from lumbarkit.levels import label_name
from lumbarkit.seg_classes import BODY, CANAL, DISC, POSTERIOR, SACRUM

log = logging.getLogger(__name__)


def _dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two boolean masks (MONAI's metrics on one-hot tensors)."""
    import torch
    from monai.metrics import compute_dice, compute_iou

    p = torch.as_tensor(pred[None, None].astype(np.float32))
    t = torch.as_tensor(truth[None, None].astype(np.float32))
    dice = float(compute_dice(p, t, include_background=True, ignore_empty=False)[0, 0])
    iou = float(compute_iou(p, t, include_background=True, ignore_empty=False)[0, 0])
    return dice, iou


def _extent_region(mask: np.ndarray) -> np.ndarray:
    """Rows between the top and bottom labelled voxel, on slices that hold labels."""
    region = np.zeros(mask.shape, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    if len(rows) == 0:
        return region
    slices = mask.any(axis=(1, 2))
    region[:, rows.min() : rows.max() + 1] = True
    region[~slices] = False
    return region


def structure_scores(source: str, classes: np.ndarray, truth: np.ndarray) -> dict[str, tuple[float, float]]:
    """Dice/IoU per structure the source labels: body, disc, canal, vertebra (SPIDER)."""
    out: dict[str, tuple[float, float]] = {}
    bone = (classes == BODY) | (classes == SACRUM)
    if source in ("vb1", "vb2", "vb3"):
        gt = (truth > 0) & (truth < 100)
        r = _extent_region(gt)
        out["vertebral_body"] = _dice_iou(bone & r, gt & r)
    elif source == "ivd":
        gt = truth >= 100
        r = _extent_region(gt)
        out["disc"] = _dice_iou((classes == DISC) & r, gt & r)
    elif source == "spider_space":
        out["vertebra"] = _dice_iou(bone | (classes == POSTERIOR), truth == 1)
        out["disc"] = _dice_iou(classes == DISC, truth == 2)
        out["spinal_canal"] = _dice_iou(classes == CANAL, truth == 3)
    elif source == "slices2d":
        out["disc"] = _dice_iou(classes == DISC, truth == 1)
        if (truth == 2).any():
            out["vertebral_body"] = _dice_iou(bone, truth == 2)
    return out


def naming_scores(labels_pred: np.ndarray, truth: np.ndarray) -> dict:
    """Per labelled level (VerSe ids in ``truth``), is the predicted id at its voxels the same?

    A level counts as named correctly when the majority predicted id over its ground-truth voxels
    equals its true id.
    """
    rows = {}
    for lid in sorted(int(v) for v in np.unique(truth) if 0 < v and v != 100):
        vals = labels_pred[truth == lid]
        vals = vals[vals > 0]
        pred = int(np.bincount(vals).argmax()) if len(vals) else 0
        rows[label_name(lid)] = label_name(pred) if pred else "missed"
    correct = sum(1 for k, v in rows.items() if k == v)
    return {"levels": rows, "correct": correct, "total": len(rows), "all_correct": correct == len(rows)}


def evaluate_case(case: dict, predict: Callable, target_mm: float) -> dict:
    """Metrics of one case: Dice/IoU per labelled structure, and level naming where ids exist."""
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.stages.s1_segment import predict_probabilities
    from lumbarkit.stages.s2_localize import localize

    if case["source"] == "slices2d":
        import imageio.v3 as iio

        from lumbarkit.training.segment.data import SLICES2D_SPACING_MM

        scan = load_scan(case["image"], spacing_mm=(SLICES2D_SPACING_MM,) * 2)
        truth = np.asarray(iio.imread(case["label"]))[None].astype(np.int32)
    else:
        scan = load_scan(case["image"])
        truth = read_label_volume(case["label"])
    probs = predict_probabilities(scan, predict, target_mm)
    classes = probs.argmax(axis=1)
    row = {"case": case["case"], "source": case["source"]}
    for name, (d, i) in structure_scores(case["source"], classes, truth).items():
        row[f"dice_{name}"] = round(d, 4)
        row[f"iou_{name}"] = round(i, 4)
    if case["source"] in ("vb1", "vb2", "vb3", "ivd"):
        levels = localize(scan, probs)
        naming = naming_scores(levels.segmentation.labels, truth)
        row["naming_correct"] = naming["correct"]
        row["naming_total"] = naming["total"]
        row["naming_all_correct"] = naming["all_correct"]
        row["naming"] = naming["levels"]
        row["sacrum_found"] = levels.sacrum_found
    return row


def summarise(rows: list[dict]) -> dict:
    """Mean/median per metric over cases, overall and per source; naming accuracy."""
    import pandas as pd

    df = pd.DataFrame([{k: v for k, v in r.items() if k != "naming"} for r in rows])
    metrics = [c for c in df.columns if c.startswith(("dice_", "iou_"))]
    out: dict = {"n_cases": len(df), "overall": {}, "by_source": {}}
    for m in metrics:
        s = df[m].dropna()
        if len(s):
            out["overall"][m] = {"mean": round(float(s.mean()), 4), "median": round(float(s.median()), 4), "n": int(len(s))}
    for src, g in df.groupby("source"):
        out["by_source"][src] = {m: round(float(g[m].mean()), 4) for m in metrics if g[m].notna().any()}
    if "naming_all_correct" in df:
        named = df.dropna(subset=["naming_all_correct"])
        out["naming"] = {
            "cases_all_correct": int(named["naming_all_correct"].astype(bool).sum()),
            "cases": int(len(named)),
            "case_accuracy": round(float(named["naming_all_correct"].astype(bool).mean()), 4),
            "level_accuracy": round(float(named["naming_correct"].sum() / max(named["naming_total"].sum(), 1)), 4),
        }
    return out


def torch_predictor(net) -> Callable:
    import torch

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.as_tensor(x)).numpy()

    return predict


def evaluate_torch_fold(net, cfg, cases: list[dict]) -> dict:
    rows = [evaluate_case(c, torch_predictor(net), cfg.target_mm) for c in cases]
    return {"rows": rows, "summary": summarise(rows)}
