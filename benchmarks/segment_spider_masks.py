"""One segmentation model on the SPIDER mid-sagittal slices with ground-truth masks (../shared/data/spider_masks).

Prints, per case and per sequence (T1, T2, T2-SPACE): Dice of vertebra, disc and canal (in the labelled region:
the unlabelled sacrum below the lowest disc is left out), discs found / extra, level naming from the bottom
(L5/S1 lowest) and the share of predicted body pixels inside the true vertebra. A model trained on these slices
(the packaged v4 model is) gives optimistic numbers: use the model card's cross-validation for held-out figures.

    python benchmarks/segment_spider_masks.py --data ../shared/data [--model MODELDIR] [--out runs/spider_masks]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from lumbarkit.models.folder import load_model
from lumbarkit.training.segment.data import list_cases
from lumbarkit.training.segment.evaluate import evaluate_case, summarise

COLUMNS = ["case", "dice_vertebra", "dice_disc", "dice_spinal_canal", "discs_true", "discs_found", "discs_extra",
           "naming_all_correct", "body_inside_vertebra", "sacrum_found"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: the packaged model)")
    ap.add_argument("--out", type=Path, default=None, help="write spider_masks_cases.csv and the summary JSON here")
    args = ap.parse_args()
    folder = load_model(args.model, "segment_2d")
    cases = [c for c in list_cases(args.data) if c["source"] == "spider_masks"]
    rows = [evaluate_case(c, folder.run, folder.spec.pixel_mm) for c in cases]
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "naming"} for r in rows])
    summary = summarise(rows)
    print(df[COLUMNS].to_string(index=False))
    print(json.dumps({k: summary[k] for k in ("by_sequence", "disc_detection", "naming_by_source")}, indent=1))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.out / "spider_masks_cases.csv", index=False)
        (args.out / "spider_masks_summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
