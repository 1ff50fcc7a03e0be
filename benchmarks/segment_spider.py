"""Stage-1 generalisation check on the 360 SPIDER mid-sagittal slices (no masks there).

For every slice: discs found vs SPIDER's ``num_discs`` (which counts every disc in its masks,
thoracic ones included), and whether the five lumbar discs L1/L2..L5/S1 are all found and named.
Writes ``spider_discs.csv`` and a QC montage of 40 slices (T1 and T2, every vendor) to --out.

    python benchmarks/segment_spider.py --data ../shared/data --out runs/spider_qc [--model DIR]
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lumbarkit.io import load_scan
from lumbarkit.levels import LUMBAR_DISCS
from lumbarkit.models.folder import ModelFolder, packaged_model
from lumbarkit.report.qc_segment import save_montage
from lumbarkit.stages.s2_localize import localize
from lumbarkit.stages.s1_segment import segment

LUMBAR5 = LUMBAR_DISCS[1:]  # L1/L2 .. L5/S1


def montage_selection(series: pd.DataFrame, n: int = 40, seed: int = 0) -> list[str]:
    """About n series covering T1 and T2 of every manufacturer, chosen reproducibly."""
    rng = np.random.default_rng(seed)
    groups = series.assign(seq=series["series"].str.split("_", n=1).str[1]).groupby(["Manufacturer", "seq"])
    per = max(1, n // groups.ngroups)
    chosen: list[str] = []
    for _, g in groups:
        chosen += list(rng.choice(g["series"].to_numpy(), size=min(per, len(g)), replace=False))
    rest = [s for s in series["series"] if s not in chosen]
    chosen += list(rng.choice(rest, size=max(0, n - len(chosen)), replace=False))
    return sorted(chosen[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path("runs/spider_qc"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    model = packaged_model("segment_2d") if args.model is None else ModelFolder.load(args.model)
    series = pd.read_csv(args.data / "spider" / "series.csv")
    if args.limit:
        series = series.head(args.limit)
    show = set(montage_selection(series))
    rows, panels = [], []
    t0 = time.time()
    for _, s in series.iterrows():
        spacing = tuple(float(v) for v in ast.literal_eval(s["PixelSpacing"]))
        scan = load_scan(args.data / "spider" / "images" / f"{s['series']}.png", spacing_mm=spacing)
        levels = localize(scan, segment(scan, model).probabilities)
        names = [d.name for d in levels.discs]
        rows.append({
            "series": s["series"], "manufacturer": s["Manufacturer"], "sequence": s["series"].split("_", 1)[1],
            "num_discs_spider": int(s["num_discs"]), "discs_found": len(names),
            "lumbar5_named": all(n in names for n in LUMBAR5), "sacrum_found": levels.sacrum_found,
            "names": " ".join(names), "warnings": " | ".join(levels.warnings),
        })
        if s["series"] in show:
            panels.append({"image": scan.array[0], "labels": levels.segmentation.labels[0], "instances": levels.instances,
                           "spacing_rc": scan.spacing_mm[1:], "title": f"{s['series']} {s['Manufacturer'].split()[0]}"})
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "spider_discs.csv", index=False)
    save_montage(panels, args.out / "spider_montage.png")
    diff = df["discs_found"] - df["num_discs_spider"]
    print(f"{len(df)} SPIDER slices in {time.time() - t0:.0f} s")
    print(f"discs found == num_discs: {(diff == 0).mean():.1%}; fewer: {(diff < 0).mean():.1%}; more: {(diff > 0).mean():.1%}")
    print(f"all five lumbar discs L1/L2-L5/S1 found and named: {df['lumbar5_named'].mean():.1%}")
    print(f"sacrum found: {df['sacrum_found'].mean():.1%}")
    print(df.groupby(["sequence"])[["lumbar5_named", "sacrum_found"]].mean().round(3).to_string())
    print(df.groupby(["manufacturer"])[["lumbar5_named", "sacrum_found"]].mean().round(3).to_string())


if __name__ == "__main__":
    main()
