"""How many lumbar discs of a study get a grade, and from which sequences: SPIDER patients analysed as studies.

Each SPIDER patient with a T1 and a T2 mid-sagittal slice (``spider/images``, spacing from ``series.csv``)
becomes a study of two one-slice NIfTI series (``sub-<id>_T1w``, ``sub-<id>_T2w``) analysed with
``lumbarkit.analyze_study``. Printed: the share of the patient's graded lumbar discs (SPIDER ``gradings.csv``,
L1/L2-L5/S1 counted from the bottom) that got a fused grade, the share graded from T1+T2, and the level
check. Accuracy is not measured here (the shipped grader saw these patients): the model card's
cross-validation gives it.

    python benchmarks/study_coverage.py --data ../shared/data --limit 40
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import write_nifti
    from lumbarkit.pipeline import Pipeline, PipelineConfig
    from lumbarkit.study import analyze_study, find_study
    from lumbarkit.training.grade.data import read_gradings, read_series

    spider = args.data / "spider"
    rows = read_series(spider)
    gradings = read_gradings(spider)
    by_patient: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_patient.setdefault(r["patient"], {})[r["sequence"]] = r
    patients = [p for p, s in sorted(by_patient.items(), key=lambda kv: int(kv[0])) if "t1" in s and "t2" in s][: args.limit]
    pipeline = Pipeline(PipelineConfig(hotspots=False))
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        for patient in patients:
            files = []
            for kind, suffix in (("t1", "T1w"), ("t2", "T2w")):
                r = by_patient[patient][kind]
                scan = load_scan(spider / "images" / f"{r['series']}.png", spacing_mm=r["spacing_mm"])
                files.append(write_nifti(scan.array, scan.affine, Path(tmp) / f"sub-{patient}_{suffix}.nii.gz"))
            wanted = {("L5/S1", "L4/L5", "L3/L4", "L2/L3", "L1/L2")[k - 1] for k in gradings.get(patient, {}) if 1 <= k <= 5}
            counts["discs"] += len(wanted)
            try:
                result = analyze_study(find_study(files), pipeline)
            except Exception as exc:  # report, go on
                counts["studies failed"] += 1
                print(f"{patient}: {exc}")
                continue
            doc = result.to_dict()
            graded = {lv["level"]: lv.get("sequences") for lv in doc["levels"] if "grades" in lv}
            counts["graded"] += sum(1 for d in wanted if d in graded)
            counts["graded from T1+T2"] += sum(1 for d in wanted if graded.get(d) == "T1+T2")
            counts["studies with a level disagreement"] += bool(doc.get("study", {}).get("level_check", {}).get("disagreements"))
            counts["studies"] += 1
    n = max(counts["discs"], 1)
    print(f"{counts['studies']} studies ({counts['studies failed']} failed), {counts['discs']} graded lumbar discs in SPIDER")
    print(f"discs with a fused grade: {counts['graded'] / n:.1%}; from T1+T2: {counts['graded from T1+T2'] / n:.1%}")
    print(f"studies whose series disagree on the levels: {counts['studies with a level disagreement']} "
          "(NIfTI series share no DICOM frame of reference: names are not checked in mm here)")


if __name__ == "__main__":
    main()
