"""Clinical flag rates per dataset, on ground-truth and on predicted masks, to set beside prevalence.

For every real scan in ../shared/data (volumes/: vb1 patients with fractures and slips, vb2/vb3/ivd
healthy volunteers; spider_space/ and spider_masks/: SPIDER back-pain patients), the measurements
are made twice: from the ground-truth mask (where it labels what a flag needs) and from the
packaged segmentation model's mask (``Pipeline.run(until="measure")``). Printed per dataset and
mask source: discs with a slip measured, anterolisthesis of Meyerding grade >= 1, retrolisthesis
(>= RETRO_FLAG_MM), discs with a dural sac measured, how many of those are under 8 and 10 mm, their
absolute / relative stenosis flags (which also need a focal narrowing), the grade the RSNA track's canal rule
gives without a trained model (moderate or worse, severe), vertebrae graded (T4-L4) and
those with Genant >= 1, and measures refused as implausible (with what depends on them).

Population anchors: absolute central stenosis ~7 %, relative ~20 % of adults (Kalichman et al.
2009, Framingham CT), far less in young volunteers; degenerative spondylolisthesis ~ 3-12 % of
adults (Jacobsen et al. 2007: 2.7 % of men, 8.4 % of women), rare in the young.

The packaged model was trained on these volumes (not held out): its rates are optimistic for
segmentation quality but the flag logic is the same.

    python benchmarks/flag_rates.py [--data ../shared/data] [--limit N] [--no-predicted]
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from measure_real import _spider_labels  # noqa: E402  (SPIDER semantic masks -> disc ids + canal)

COUNTS = ("discs", "slip", "meyerding>=1", "retro", "canal", "sac<8mm", "sac<10mm", "absolute", "relative",
          "rsna_rule_moderate+", "rsna_rule_severe", "graded", "genant>=1", "implausible")
CANAL_COUNTS = ("absolute", "relative", "sac<8mm", "sac<10mm", "rsna_rule_moderate+", "rsna_rule_severe")


def tally(m, out: dict[str, int]) -> None:
    """Add one scan's measurements to the counters."""
    from lumbarkit.results.measurements import RETRO_FLAG_MM
    from lumbarkit.rsna.rule import canal_probabilities

    for d in m.discs:
        out["discs"] += 1
        if d.slip_percent.ok:
            out["slip"] += 1
            out["meyerding>=1"] += int(bool(d.meyerding_grade.ok and d.meyerding_grade.value))
            out["retro"] += int(bool(d.retrolisthesis.ok and d.retrolisthesis.value >= RETRO_FLAG_MM))
        if d.canal_ap.ok:
            out["canal"] += 1
            out["sac<8mm"] += int(d.canal_ap.value < 8.0)
            out["sac<10mm"] += int(d.canal_ap.value < 10.0)
            out["absolute"] += int(d.canal_stenosis == "absolute")
            out["relative"] += int(d.canal_stenosis == "relative")
            # the RSNA track's canal rule without a trained model (lumbarkit.rsna.rule): its most probable grade
            grade = int(np.argmax(canal_probabilities(float(d.canal_ap.value))))
            out["rsna_rule_moderate+"] += int(grade >= 1)
            out["rsna_rule_severe"] += int(grade == 2)
        out["implausible"] += sum("implausible" in (x.missing_reason or "") for x in d.measures())
    for v in m.vertebrae:
        out["graded"] += int(v.genant_grade.ok)
        out["genant>=1"] += int(bool(v.genant_grade.ok and v.genant_grade.value))
        out["implausible"] += sum("implausible" in (x.missing_reason or "") for x in v.measures())


def cases(data: Path, limit: int | None):
    """(dataset, image path, ground-truth VerSe label map loader, spacing or None) of every real scan."""
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.training.grade.data import read_series

    with open(data / "volumes" / "index.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows[:limit]:
        yield r["dataset"], data / "volumes" / f"{r['case']}_image.nii.gz", \
            (lambda c=r["case"]: read_label_volume(data / "volumes" / f"{c}_label.nii.gz")), None
    with open(data / "spider_space" / "index.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows[:limit]:
        yield "spider_space", data / "spider_space" / f"{r['series']}_image.nii.gz", \
            (lambda s=r["series"]: _spider_labels(read_label_volume(data / "spider_space" / f"{s}_label.nii.gz"))), None
    spacing = {r["series"]: r["spacing_mm"] for r in read_series(data / "spider")}
    with open(data / "spider_masks" / "index.csv") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows[:limit]:
        yield "spider_masks", data / "spider" / "images" / f"{r['series']}.png", \
            (lambda s=r["series"]: _png_labels(data / "spider_masks" / f"{s}_label.png")), spacing[r["series"]]


def _png_labels(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return _spider_labels(np.asarray(iio.imread(path))[None].astype(np.int32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None, help="first N cases of each source (quick check)")
    parser.add_argument("--no-predicted", action="store_true", help="ground-truth masks only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    from lumbarkit.errors import LumbarkitError
    from lumbarkit.io import load_scan
    from lumbarkit.pipeline import Pipeline

    pipeline = Pipeline()
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for dataset, image, gt_labels, spacing in cases(args.data, args.limit):
        scan = load_scan(image, spacing_mm=spacing)
        for source in ("ground truth", "predicted"):
            if source == "predicted" and args.no_predicted:
                continue
            try:
                labels = gt_labels() if source == "ground truth" else None
                result = pipeline.run(scan, until="measure", labels=labels)
            except LumbarkitError as exc:
                table[(dataset, source)]["refused"] += 1
                logging.getLogger("flag_rates").info("%s %s: %s", image.name, source, exc)
                continue
            table[(dataset, source)]["scans"] += 1
            tally(result.measurements, table[(dataset, source)])
    head = ["dataset", "masks", "scans", *COUNTS]
    print(" | ".join(head))
    for (dataset, source), t in sorted(table.items()):
        cells = [dataset, source, str(t["scans"])]
        for c in COUNTS:
            base = t["slip"] if c in ("meyerding>=1", "retro") else \
                t["canal"] if c in CANAL_COUNTS else t["graded"] if c == "genant>=1" else None
            cells.append(f"{t[c]} ({100 * t[c] / base:.0f} %)" if base else str(t[c]))
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
