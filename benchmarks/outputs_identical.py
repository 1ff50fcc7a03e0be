"""Check that a change left the outputs of `lumbarkit analyze` identical to an earlier commit.

    python benchmarks/outputs_identical.py --base 63adcaf [--data ../shared/data]

Checks out BASE into a temporary git worktree and runs the same CLI commands with that tree's code and
with the working tree's code (same interpreter and packages): the demo, and with ``--data`` real scans
(a SPIDER T2 slice, a 26-slice T2 volume, a resampled T2 SPACE volume written as DICOM, a T1 + T2 study of
one SPIDER patient). Compares ``result.json``, ``levels.csv`` and ``vertebrae.csv`` byte by byte; where they
differ, prints the largest difference between numbers at the same place (so float noise is told from a
changed answer). Exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from base_tree import ROOT, base_worktree  # noqa: E402 (benchmarks/ helper)
FILES = ("result.json", "levels.csv", "vertebrae.csv")


def real_cases(data: Path, tmp: Path) -> dict[str, list[str]]:
    """name -> analyze arguments, for real scans of ``data`` (written to ``tmp`` where a format is needed)."""
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import write_nifti
    from lumbarkit.report.dicom import write_dicom_series

    with open(data / "spider" / "series.csv", newline="") as fh:
        spacing = {r["series"]: r["PixelSpacing"].strip("[]").replace(",", " ").split() for r in csv.DictReader(fh)}
    study = []
    for series, suffix in (("1_t1", "T1w"), ("1_t2", "T2w")):
        scan = load_scan(data / "spider" / "images" / f"{series}.png", spacing_mm=[float(v) for v in spacing[series]])
        study.append(str(write_nifti(scan.array, scan.affine, tmp / f"sub-1_{suffix}.nii.gz")))
    space = load_scan(data / "spider_space" / "110_t2_SPACE_image.nii.gz")
    write_dicom_series(space, tmp / "space_dicom", series_description="t2_space_sag", series_number=5)
    return {"slice_1_t2": [str(data / "spider" / "images" / "1_t2.png"), "--spacing", *spacing["1_t2"]],
            "volume_vb2_06": [str(data / "volumes" / "vb2_06_image.nii.gz")],
            "dicom_space_110": [str(tmp / "space_dicom")],
            "study_1": study}


def run(src: Path, args: list[str], out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-m", "lumbarkit", *args, "-o", str(out), "--overwrite"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=out.parent)


def _numbers(a, b, path=""):
    """(place, |a - b|) of every pair of differing numbers at the same place of two parsed documents."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _numbers(a.get(k), b.get(k), f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _numbers(x, y, f"{path}[{i}]")
    elif a != b:
        try:
            yield path, abs(float(a) - float(b))
        except (TypeError, ValueError):
            yield path, float("inf")  # a changed text, structure or missing value


def largest_difference(base: Path, new: Path) -> tuple[str, float]:
    """The place and size of the largest difference between two result files (JSON or CSV)."""
    def parse(p: Path):
        return json.loads(p.read_text()) if p.suffix == ".json" else list(csv.DictReader(p.open(newline="")))

    diffs = list(_numbers(parse(base), parse(new)))
    return max(diffs, key=lambda d: d[1]) if diffs else ("", 0.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare against")
    ap.add_argument("--data", type=Path, help="also real scans from this folder (../shared/data)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with base_worktree(args.base, tmp / "base") as base:
            cases = {"demo": ["demo"]}
            if args.data:
                (tmp / "inputs").mkdir()
                cases.update(real_cases(args.data.resolve(), tmp / "inputs"))
            same = True
            for name, cmd in cases.items():
                outs = []
                for tag, src in (("base", base / "src"), ("new", ROOT / "src")):
                    out = tmp / f"{name}_{tag}"
                    run(src, cmd if name == "demo" else ["analyze", *cmd], out)
                    outs.append(out / "analysis" if name == "demo" else out)
                for f in FILES:
                    a, b = outs[0] / f, outs[1] / f
                    ok = a.read_bytes() == b.read_bytes()
                    same &= ok
                    note = "identical" if ok else "DIFFERS: largest at {} by {:.3g}".format(*largest_difference(a, b))
                    print(f"{name:16s} {f:14s} {note}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
