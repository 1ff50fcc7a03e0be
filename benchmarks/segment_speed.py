"""Segmentation speed and peak memory on this machine (onnxruntime, packaged model).

    python benchmarks/segment_speed.py --data ../shared/data
Prints model load time, seconds per 3D scan (segment + localize), per 15-slice series and per
single slice, and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    t = time.time()
    from lumbarkit.io import load_scan
    from lumbarkit.models.folder import packaged_model
    from lumbarkit.stages.s2_localize import localize
    from lumbarkit.stages.s1_segment import segment

    model = packaged_model("segment_2d")
    _ = model.session
    print(f"import + model load: {time.time() - t:.2f} s")
    cases = {
        "3D volume vb1_02 (19 x 361 x 361, 1 mm)": args.data / "volumes" / "vb1_02_image.nii.gz",
        "3D SPIDER T2-SPACE 110 (8 x 640 x 512, 0.47 mm)": args.data / "spider_space" / "110_t2_SPACE_image.nii.gz",
    }
    for name, path in cases.items():
        scan = load_scan(path)
        times = []
        for _ in range(args.repeats):
            t = time.time()
            localize(scan, segment(scan, model).probabilities)
            times.append(time.time() - t)
        per_slice = np.median(times) / scan.shape[0]
        print(f"{name}: {np.median(times):.2f} s per scan, {per_slice * 1000:.0f} ms per slice, "
              f"{per_slice * 15:.2f} s per 15-slice series")
    scan = load_scan(args.data / "spider" / "images" / "1_t2.png", spacing_mm=(0.625, 0.625))
    times = []
    for _ in range(args.repeats):
        t = time.time()
        localize(scan, segment(scan, model).probabilities)
        times.append(time.time() - t)
    print(f"2D SPIDER slice 1_t2 (578 x 448, 0.625 mm): {np.median(times):.2f} s")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
