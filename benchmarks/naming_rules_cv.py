"""Level naming on held-out volumes with and without two rules of ``lumbarkit.stages.s2_localize``.

Each volume with level ids is segmented by the cross-validation fold model trained without its patient
(``MODELDIR/work_fold{k}/checkpoint.pt`` from ``lumbarkit train segment --cv``); its probabilities are
named twice: with the current rules, and with the cut-off-S1 rule (``MIN_CUT_WIDTH_MM``) and the
mid-slab centre prior (``MIDLINE_PRIOR_SIGMA``) switched off. Prints volumes named all-correct per fold.
Needs the [train] extra (torch).

    python benchmarks/naming_rules_cv.py --model runs/seg_v3 --data ../shared/data
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import lumbarkit.stages.s2_localize.chain as chain_module
import lumbarkit.stages.s2_localize.naming as naming_module
from lumbarkit.stages.s2_localize import localize
from lumbarkit.io import load_scan
from lumbarkit.io.volume import read_label_volume
from lumbarkit.stages.s1_segment import predict_probabilities
from lumbarkit.training.folds import source_balanced_folds
from lumbarkit.training.segment.data import list_cases
from lumbarkit.training.segment.evaluate import naming_scores, torch_predictor
from lumbarkit.training.segment.train import SegTrainConfig, finished_net

RULES_OFF = {(naming_module, "MIN_CUT_WIDTH_MM"): 1e9, (chain_module, "MIDLINE_PRIOR_SIGMA"): 1e9}


def all_correct(scan, probs, truth, rules: bool) -> bool:
    saved = {k: getattr(*k) for k in RULES_OFF}
    try:
        if not rules:
            for (module, name), v in RULES_OFF.items():
                setattr(module, name, v)
        return bool(naming_scores(localize(scan, probs).segmentation.labels, truth)["all_correct"])
    finally:
        for (module, name), v in saved.items():
            setattr(module, name, v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="folder of a --cv run (work_fold{k}/checkpoint.pt)")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--steps", type=int, default=3000, help="training steps of the CV run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = SegTrainConfig(steps=args.steps)
    cases = [c for c in list_cases(args.data) if c["source"] in ("vb1", "vb2", "vb3", "ivd")]
    folds = source_balanced_folds(list_cases(args.data), cfg.n_folds, cfg.seed)
    total = {True: 0, False: 0}
    for k in range(cfg.n_folds):
        net = finished_net(args.model / f"work_fold{k}", cfg)
        if net is None:
            print(f"fold {k}: no finished checkpoint")
            continue
        counts, n = {True: 0, False: 0}, 0
        for c in (c for c in cases if folds[c["patient"]] == k):
            scan = load_scan(c["image"])
            probs = predict_probabilities(scan, torch_predictor(net), cfg.target_mm)
            truth = read_label_volume(c["label"])
            n += 1
            for rules in (False, True):
                counts[rules] += all_correct(scan, probs, truth, rules)
        print(f"fold {k}: {n} volumes, all levels named correctly: without the rules {counts[False]}, with {counts[True]}")
        for rules in counts:
            total[rules] += counts[rules]
    print(f"all folds: without the rules {total[False]}, with {total[True]}")


if __name__ == "__main__":
    main()
