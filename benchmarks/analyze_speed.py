"""Wall time per stage and peak memory of `analyze` on a 3D series and a 2D slice (2 CPU cores).

Each case runs in a fresh process (so model loading is included, as a user's first call pays it),
then a second analysis in the same process shows the per-scan cost with models loaded.

Usage: python benchmarks/analyze_speed.py [--data ../shared/data] [--volume CASE] [--slice SERIES]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from lumbarkit.pipeline import Pipeline
from lumbarkit.report.outputs import write_outputs
import tempfile
path, spacing = sys.argv[1], json.loads(sys.argv[2])
p = Pipeline()
out = {}
for run in ("first", "second"):
    t = time.perf_counter()
    r = p.analyze(path, spacing_mm=spacing)
    with tempfile.TemporaryDirectory() as d:
        tw = time.perf_counter()
        write_outputs(r, d)
        r.timings_s["write_outputs"] = time.perf_counter() - tw
    r.timings_s["wall_incl_import" if run == "first" else "wall"] = time.perf_counter() - (t0 if run == "first" else t)
    out[run] = {k: round(v, 3) for k, v in r.timings_s.items()}
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
out["shape"] = list(r.scan.shape)
out["graded"] = r.grades is not None
print(json.dumps(out))
"""


def run_case(path: Path, spacing) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(spacing)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"analyze failed on {path.name}: {proc.stderr.strip().splitlines()[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import csv

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--volume", default="ivd_11", help="case of volumes/ (ivd_11: 22 sagittal slices of 221 x 221 mm)")
    ap.add_argument("--slice", default="1_t2", help="SPIDER series whose mid-sagittal PNG is analysed")
    args = ap.parse_args()
    with open(args.data / "spider" / "series.csv") as fh:
        row = next(r for r in csv.DictReader(fh) if r["series"] == args.slice)
    spacing = [float(v) for v in row["PixelSpacing"].strip("[]").split(",")]
    cases = [(f"3D {args.volume}", args.data / "volumes" / f"{args.volume}_image.nii.gz", None),
             (f"2D {args.slice}", args.data / "spider" / "images" / f"{args.slice}.png", spacing)]
    for name, path, sp in cases:
        res = run_case(path, sp)
        print(f"\n{name}: shape {res['shape']}, graded={res['graded']}, peak RSS {res['peak_rss_mb']} MB")
        for run in ("first", "second"):
            print(f"  {run:6s} " + "  ".join(f"{k} {v:.2f}s" for k, v in res[run].items()))


if __name__ == "__main__":
    main()
