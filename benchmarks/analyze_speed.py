"""Whole-process `lumbarkit analyze` wall time and peak memory against a base commit, plus a stage breakdown.

    python benchmarks/analyze_speed.py --data ../shared/data [--base c97ad3e] [--repeats 5] [--profile] [--batch 12]

Cases, built from real scans of ``--data``: a SPIDER T2 slice (PNG + spacing), the 26-slice 381 x 381 T2
volume ``volumes/vb2_06`` written as a DICOM series, its middle 15 slices as another DICOM series, and a
two-series study (that series as T2 and again as a T1 series of the same study). Every run is a fresh CLI
process (``python -m lumbarkit analyze IN -o OUT``: interpreter start, imports, model loading, hotspots on,
all outputs written), the base commit (checked out into a temporary git worktree, same interpreter and
packages) and the working tree alternating; medians of ``--repeats``. Peak memory is the child's maximum
resident set (``wait4``). Then the stage breakdown of one fresh process per case, for both trees.
``--profile`` prints cProfile's top functions for the 26-slice series; ``--batch N`` also runs each tree's
``benchmarks/batch_throughput.py --limit N`` (series per hour, 1 and 2 workers). Figures are only
meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from base_tree import ROOT, base_worktree  # noqa: E402 (benchmarks/ helper)

STAGES = r"""
import json, sys, tempfile, time
t0 = time.perf_counter()
from lumbarkit.pipeline import Pipeline
from lumbarkit.report.outputs import write_outputs
args = json.loads(sys.argv[1])
result = Pipeline().analyze(args["input"], spacing_mm=args.get("spacing"))
times = {"imports": 0.0, **result.timings_s}
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    write_outputs(result, d)
    times["write outputs"] = time.perf_counter() - t
times["imports"] = time.perf_counter() - t0 - times["total"] - times["write outputs"]
print(json.dumps(times))
"""


def build_cases(data: Path, tmp: Path) -> dict[str, list[str]]:
    """Case name -> ``analyze`` arguments."""
    from pydicom.uid import generate_uid

    from lumbarkit.io import load_scan
    from lumbarkit.report.dicom import write_dicom_series

    with open(data / "spider" / "series.csv", newline="") as fh:
        spacing = next(r for r in csv.DictReader(fh) if r["series"] == "1_t2")["PixelSpacing"].strip("[]").replace(",", " ")
    vol = load_scan(data / "volumes" / "vb2_06_image.nii.gz")
    mid = vol.shape[0] // 2
    write_dicom_series(vol, tmp / "s26", series_description="t2_tse_sag", series_number=2)
    write_dicom_series(_slab(vol, mid - 7, 15), tmp / "s15", series_description="t2_tse_sag", series_number=2)
    study, frame = generate_uid(), generate_uid()
    for name, number in (("t2_tse_sag", 2), ("t1_tse_sag", 3)):
        write_dicom_series(vol, tmp / "study" / name, series_description=name, series_number=number, study_uid=study,
                           frame_of_reference_uid=frame)
    return {"2D slice (SPIDER 1_t2)": [str(data / "spider" / "images" / "1_t2.png"), "--spacing", *spacing.split()],
            "15-slice series": [str(tmp / "s15")],
            "26-slice series": [str(tmp / "s26")],
            "T2 + T1 study (2 x 26)": [str(tmp / "study")]}


def _slab(scan, first: int, count: int):
    """``count`` consecutive sagittal slices of ``scan`` from ``first``, keeping their place in patient space."""
    import numpy as np

    from lumbarkit.scan import Scan

    affine = scan.affine.copy()
    affine[:3, 3] = scan.voxel_to_mm(np.array([first, 0, 0], dtype=float))
    return Scan(scan.array[first : first + count].copy(), affine, scan.metadata)


def run_cli(src: Path, args: list[str], out: Path) -> tuple[float, float] | None:
    """(wall seconds, peak MB) of one fresh ``analyze`` process with the code of ``src``; None when it failed."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)  # a fresh folder (the base commit has no --overwrite)
    env = {**os.environ, "PYTHONPATH": str(src)}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lumbarkit", "analyze", *args, "-o", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    return (wall, usage.ru_maxrss / 1024) if os.waitstatus_to_exitcode(status) == 0 else None


def compare(cases: dict[str, list[str]], base: Path, tmp: Path, repeats: int) -> None:
    rows = []
    for name, args in cases.items():
        got: dict[str, list] = {"base": [], "new": []}
        for _ in range(repeats):
            for tag, src in (("base", base / "src"), ("new", ROOT / "src")):
                got[tag].append(run_cli(src, args, tmp / f"out_{tag}"))
        med = {}
        for tag, runs in got.items():
            ok = [r for r in runs if r is not None]
            med[tag] = (statistics.median(r[0] for r in ok), max(r[1] for r in ok)) if len(ok) == len(runs) else None
        rows.append((name, med["base"], med["new"]))
    print(f"\n{'case':26s} {'base s':>8s} {'new s':>8s} {'ratio':>6s} {'base MB':>8s} {'new MB':>8s}")
    for name, b, n in rows:
        bs = f"{b[0]:8.2f}" if b else f"{'failed':>8s}"
        bm = f"{b[1]:8.0f}" if b else f"{'':>8s}"
        ratio = f"{n[0] / b[0]:6.2f}" if b and n else f"{'':>6s}"
        print(f"{name:26s} {bs} {n[0]:8.2f} {ratio} {bm} {n[1]:8.0f}" if n else f"{name:26s} {bs} {'failed':>8s}")


def stage_breakdown(cases: dict[str, list[str]], base: Path) -> None:
    """Seconds per stage of one fresh process per case, for the base commit and the working tree."""
    for tag, src in (("base", base / "src"), ("new", ROOT / "src")):
        print(f"\nstages, {tag} (seconds, one fresh process per case):")
        for name, args in cases.items():
            if "study" in name:
                continue
            spec = {"input": args[0], "spacing": [float(v) for v in args[2:4]] if "--spacing" in args else None}
            proc = subprocess.run([sys.executable, "-c", STAGES, json.dumps(spec)], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(src)})
            if proc.returncode:
                print(f"  {name}: failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            times = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {name:26s} " + "  ".join(f"{k} {v:.2f}" for k, v in times.items()))


def profile(args: list[str], out: Path) -> None:
    import cProfile
    import pstats

    from lumbarkit.cli.main import app

    pr = cProfile.Profile()
    pr.enable()
    try:
        app(["analyze", *args, "-o", str(out), "--overwrite"], standalone_mode=False)
    finally:
        pr.disable()
    print("\ncProfile of the 26-slice series (working tree, this process):")
    pstats.Stats(pr).sort_stats("cumulative").print_stats(30)


def batch(base: Path, limit: int, data: Path) -> None:
    for tag, tree in (("base", base), ("new", ROOT)):
        print(f"\nbatch throughput, {tag}:", flush=True)
        subprocess.run([sys.executable, str(tree / "benchmarks" / "batch_throughput.py"), "--data", str(data),
                        "--limit", str(limit)], env={**os.environ, "PYTHONPATH": str(tree / "src")}, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--base", default="c97ad3e", help="git revision to compare against (before the speed work)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--batch", type=int, default=0, help="also compare batch throughput on this many volumes + slices")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with base_worktree(args.base, tmp / "base") as base:
            (tmp / "inputs").mkdir()
            cases = build_cases(args.data.resolve(), tmp / "inputs")
            compare(cases, base, tmp, args.repeats)
            stage_breakdown(cases, base)
            if args.profile:
                profile(cases["26-slice series"], tmp / "out_profile")
            if args.batch:
                batch(base, args.batch, args.data.resolve())


if __name__ == "__main__":
    main()
