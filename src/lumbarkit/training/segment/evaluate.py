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
    elif source == "spider_masks":
        region = spider_mask_region(truth[0])[None]
        out["vertebra"] = _dice_iou((bone | (classes == POSTERIOR)) & region, truth == 1)
        out["disc"] = _dice_iou((classes == DISC) & region, truth == 2)
        out["spinal_canal"] = _dice_iou((classes == CANAL) & region, truth == 3)
    elif source == "slices2d":
        out["disc"] = _dice_iou(classes == DISC, truth == 1)
        if (truth == 2).any():
            out["vertebral_body"] = _dice_iou(bone, truth == 2)
    return out


def spider_mask_region(truth2d: np.ndarray) -> np.ndarray:
    """Where a spider_masks slice is evaluated: every labelled pixel, and unlabelled pixels above the
    plane of the lowest disc (the sacrum below it is not labelled, so a prediction there is no error)."""
    from lumbarkit.training.segment.data import below_lowest_disc_plane

    return (truth2d > 0) | ~below_lowest_disc_plane(truth2d == 2)


def disc_ids_from_bottom(truth2d: np.ndarray, min_fraction: float = 0.3) -> np.ndarray:
    """Level ids of a slice's labelled discs ordered from the bottom: the lowest is L5/S1 (124),
    the next L4/L5 (123), ... (SPIDER labels the lowest lumbar disc; usual anatomy assumed).
    Components smaller than ``min_fraction`` of the largest are left out (0)."""
    from scipy import ndimage

    from lumbarkit.levels import DISC_OFFSET

    lab, n = ndimage.label(truth2d == 2)
    out = np.zeros(truth2d.shape, dtype=np.int32)
    if n == 0:
        return out
    sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    keep = [i + 1 for i in range(n) if sizes[i] >= min_fraction * sizes.max()]
    rows = ndimage.center_of_mass(np.ones_like(lab), lab, keep)
    for k, i in enumerate(sorted(keep, key=lambda i: -rows[keep.index(i)][0])):
        out[lab == i] = DISC_OFFSET + 24 - k  # 124 = L5/S1
    return out


def disc_detection(pred_labels2d: np.ndarray, true_ids2d: np.ndarray, region: np.ndarray) -> dict:
    """Every labelled disc overlapped by a predicted disc instance, and no predicted disc instance
    (inside ``region``) that overlaps no labelled disc."""
    from lumbarkit.levels import DISC_OFFSET

    true_ids = [int(v) for v in np.unique(true_ids2d) if v]
    found = sum(1 for t in true_ids if (pred_labels2d[true_ids2d == t] > DISC_OFFSET).any())
    pred_ids = [int(v) for v in np.unique(pred_labels2d[region]) if v > DISC_OFFSET]
    extra = sum(1 for p in pred_ids if not (true_ids2d[pred_labels2d == p] > 0).any())
    return {"discs_true": len(true_ids), "discs_found": found, "discs_extra": extra,
            "discs_all_found": found == len(true_ids) and extra == 0}


def naming_scores(labels_pred: np.ndarray, truth: np.ndarray) -> dict:
    """Per labelled level (VerSe ids in ``truth``), is the predicted id at its voxels the same?

    A level counts as named correctly when the majority predicted id over its ground-truth voxels
    equals its true id.
    """
    from lumbarkit.levels import lumbar_count_of

    rows = {}
    lumbar = lumbar_count_of(int(v) for v in np.unique(truth) if 0 < v and v != 100)
    for lid in sorted(int(v) for v in np.unique(truth) if 0 < v and v != 100):
        vals = labels_pred[truth == lid]
        vals = vals[vals > 0]
        pred = int(np.bincount(vals).argmax()) if len(vals) else 0
        rows[label_name(lid, lumbar)] = label_name(pred, lumbar) if pred else "missed"
    correct = sum(1 for k, v in rows.items() if k == v)
    return {"levels": rows, "correct": correct, "total": len(rows), "all_correct": correct == len(rows)}


def evaluate_case(case: dict, predict: Callable, target_mm: float) -> dict:
    """Metrics of one case: Dice/IoU per labelled structure, and level naming where ids exist."""
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.stages.s1_segment import predict_probabilities
    from lumbarkit.stages.s2_localize import localize

    if case["source"] in ("slices2d", "spider_masks"):
        from lumbarkit.training.segment.data import load_png_case

        scan, raw = load_png_case(case)
        truth = raw[None].astype(np.int32)
    else:
        scan = load_scan(case["image"])
        truth = read_label_volume(case["label"])
    probs = predict_probabilities(scan, predict, target_mm)
    classes = probs.argmax(axis=1)
    row = {"case": case["case"], "source": case["source"], "sequence": case.get("sequence", "unknown")}
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
    if case["source"] == "spider_masks":
        row.update(_spider_mask_rows(scan, probs, classes, truth[0]))
    return row


def _spider_mask_rows(scan, probs, classes, truth2d) -> dict:
    """Disc detection, naming from the bottom, and how much of the predicted bodies lies in a true vertebra."""
    from lumbarkit.stages.s2_localize import localize

    levels = localize(scan, probs)
    pred = levels.segmentation.labels[0]
    region = spider_mask_region(truth2d)
    ids = disc_ids_from_bottom(truth2d)
    naming = naming_scores(pred[None], ids[None])
    body = (classes[0] == BODY) & region
    return {**disc_detection(pred, ids, region), "naming_correct": naming["correct"], "naming_total": naming["total"],
            "naming_all_correct": naming["all_correct"], "naming": naming["levels"], "sacrum_found": levels.sacrum_found,
            "body_inside_vertebra": round(float((truth2d[body] == 1).mean()), 4) if body.any() else None}


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
    if "sequence" in df:
        out["by_sequence"] = {f"{src} {seq}": {m: round(float(g[m].mean()), 4) for m in metrics if g[m].notna().any()}
                              for (src, seq), g in df.groupby(["source", "sequence"])}
    if "discs_all_found" in df:
        det = df.dropna(subset=["discs_all_found"])
        out["disc_detection"] = {"slices": int(len(det)), "all_found_no_extra": round(float(det["discs_all_found"].astype(bool).mean()), 4),
                                 "body_inside_vertebra": round(float(det["body_inside_vertebra"].dropna().mean()), 4)}
    if "naming_all_correct" in df:
        named = df.dropna(subset=["naming_all_correct"])
        out["naming_by_source"] = {src: {"cases_all_correct": int(g["naming_all_correct"].astype(bool).sum()), "cases": int(len(g))}
                                   for src, g in named.groupby("source")}
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
