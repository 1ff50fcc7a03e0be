"""Whole-process `lumbarkit analyze` wall time: one T2 series vs a study of a T2 and a T1 series (target: < 2x).

The study is a real T2 volume (``volumes/ivd_11``, written as a DICOM series) and the same volume written
as a second series declared T1 (so both series are the same size: the ratio measures the study
machinery, not a bigger second scan), in one DICOM study folder. Each analysis runs as a fresh CLI
process (imports and model loading included, as a user pays them), all outputs written, hotspots on,
median of ``--repeats`` runs. Numbers are only meaningful on an otherwise idle machine.

    python benchmarks/study_speed.py --data ../shared/data --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _write_study(data: Path, root: Path) -> tuple[Path, Path]:
    from pydicom.uid import generate_uid

    from lumbarkit.io import load_scan
    from lumbarkit.report.dicom import write_dicom_series

    scan = load_scan(data / "volumes" / "ivd_11_image.nii.gz")
    study, frame = generate_uid(), generate_uid()
    write_dicom_series(scan, root / "single" / "t2", series_description="t2_tse_sag", series_number=2)
    write_dicom_series(scan, root / "study" / "t2", series_description="t2_tse_sag", series_number=2, study_uid=study,
                       frame_of_reference_uid=frame)
    write_dicom_series(scan, root / "study" / "t1", series_description="t1_tse_sag", series_number=3, study_uid=study,
                       frame_of_reference_uid=frame)
    return root / "single", root / "study"


def _time(source: Path, out: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lumbarkit", "analyze", str(source), "-o", str(out), "--overwrite"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        single, study = _write_study(args.data, Path(tmp))
        times = {"single T2 series": [], "T2 + T1 study": []}
        for _ in range(args.repeats):
            times["single T2 series"].append(_time(single, Path(tmp) / "out_single"))
            times["T2 + T1 study"].append(_time(study, Path(tmp) / "out_study"))
    medians = {k: statistics.median(v) for k, v in times.items()}
    for k, v in medians.items():
        print(f"{k:18s} median {v:6.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times[k])})")
    ratio = medians["T2 + T1 study"] / medians["single T2 series"]
    print(f"study / single: {ratio:.2f}x (target < 2x): {'met' if ratio < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
