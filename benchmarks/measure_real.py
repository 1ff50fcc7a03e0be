"""Measure every ground-truth label volume of ../shared/data with lumbarkit's stage 4.

Prints, per dataset, how many bodies/discs were measured and the distribution of the main
measurements; for vb1 (fractures, slips) the Genant and Meyerding grades found; for spider_space
the canal AP diameter at each disc (semantic masks: discs are named bottom-up by position, L5/S1
first, which only matters for the printed names). Writes nothing unless ``--qc DIR`` is given
(QC PNGs go there; keep DIR outside the repository).

    python benchmarks/measure_real.py [--data ../shared/data] [--qc /tmp/qc]
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _summary(values: list[float]) -> str:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return "-"
    return f"median {np.median(v):5.1f}  p5-p95 {np.percentile(v, 5):5.1f}-{np.percentile(v, 95):5.1f}  (n={v.size})"


def _spider_labels(semantic: np.ndarray) -> np.ndarray:
    """SPIDER semantic masks (1 vertebra, 2 disc, 3 canal) -> disc ids by position + canal 100."""
    from scipy import ndimage

    out = np.zeros(semantic.shape, dtype=np.int32)
    out[semantic == 3] = 100
    comps, n = ndimage.label(semantic == 2)
    if n:
        sizes = np.bincount(comps.ravel())[1:]
        keep = [i + 1 for i in range(n) if sizes[i] >= 0.2 * sizes.max()]
        rows = {i: ndimage.center_of_mass(comps == i)[1] for i in keep}
        for rank, i in enumerate(sorted(keep, key=lambda c: -rows[c])):  # bottom first
            if rank < 6:
                out[comps == i] = 124 - rank
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--qc", type=Path, default=None, help="write QC PNGs here (outside the repo)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume
    from lumbarkit.stages.s3_measure import measure

    volumes = args.data / "volumes"
    if not (volumes / "index.csv").exists():
        raise SystemExit(f"no data at {args.data}")
    if args.qc:
        from lumbarkit.report.qc_measure import draw_measurements

        args.qc.mkdir(parents=True, exist_ok=True)
    with open(volumes / "index.csv") as fh:
        cases = list(csv.DictReader(fh))

    stats: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    vb1_lines: list[str] = []
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in cases:
        case, ds = row["case"], row["dataset"]
        scan = load_scan(volumes / f"{case}_image.nii.gz")
        labels = read_label_volume(volumes / f"{case}_label.nii.gz")
        t0 = time.perf_counter()
        m = measure(scan, labels)
        st = stats[ds]
        st["seconds"].append(time.perf_counter() - t0)
        st["lordosis"].append(m.lordosis_deg)
        st["lordosis_method"].append(m.lordosis_method)
        for v in m.vertebrae:
            lumbar = v.name.startswith("L")
            st["bodies"].append(1)
            if v.height_anterior.ok:
                st["measured"].append(1)
                if lumbar:
                    for key, measure_ in (("Ha", v.height_anterior), ("Hm", v.height_middle), ("Hp", v.height_posterior),
                                          ("depth", v.depth_ap)):
                        st[key].append(measure_.value)
                    st["wedge"].append(v.wedge_ratio.value)
            else:
                reasons[ds][(v.height_anterior.missing_reason or "").split(" on slice")[0]] += 1
            if v.genant_grade.ok:
                st["genant"].append(int(v.genant_grade.value))
        for d in m.discs:
            if d.height_middle.ok:
                st["disc_Hm"].append(d.height_middle.value)
                st["disc_source"].append(d.source)
            if d.disc_height_index.ok:
                st["dhi"].append(d.disc_height_index.value)
            if d.slip_percent.ok:
                st["slip"].append(d.slip_percent.value)
                st["meyerding"].append(int(d.meyerding_grade.value))
        if ds == "vb1":
            g = [f"{v.name} G{int(v.genant_grade.value)} ({v.height_loss.value:.0f}%)" for v in m.vertebrae
                 if v.genant_grade.ok and v.genant_grade.value]
            s = [f"{d.name} M{int(d.meyerding_grade.value)} ({d.slip_percent.value:+.0f}%)" for d in m.discs
                 if d.meyerding_grade.ok and d.meyerding_grade.value]
            lord = f"{m.lordosis_deg:.0f} deg {m.lordosis_method}" if m.lordosis.ok else "n/a"
            vb1_lines.append(f"  {case}: Genant {', '.join(g) or 'none'} | Meyerding {', '.join(s) or 'none'} | lordosis {lord}")
        if args.qc:
            draw_measurements(scan, m, args.qc / f"{case}_qc.png", labels=labels)

    print("Stage-4 measurements from ground-truth masks (lumbar bodies L1-L5 for the height rows)")
    for ds, st in stats.items():
        print(f"\n[{ds}] {len(st['seconds'])} cases, {len(st['bodies'])} bodies, {len(st['measured'])} with heights, "
              f"{np.mean(st['seconds']):.2f} s/case")
        for key in ("Ha", "Hm", "Hp", "depth", "wedge", "disc_Hm", "dhi", "slip"):
            if st[key]:
                print(f"  {key:8s} {_summary(st[key])}")
        lords = [x for x in st["lordosis"] if x is not None]
        if lords:
            methods = sorted({x for x in st["lordosis_method"] if x})
            print(f"  lordosis {_summary(lords)}  [{', '.join(methods)}]")
        if st["genant"]:
            print(f"  Genant grades 0/1/2/3: {np.bincount(st['genant'], minlength=4).tolist()}")
        if st["meyerding"]:
            print(f"  Meyerding grades 0-5: {np.bincount(st['meyerding'], minlength=6).tolist()}")
        if st["disc_source"]:
            print(f"  disc heights from: {dict(sorted((s, st['disc_source'].count(s)) for s in set(st['disc_source'])))}")
        if reasons[ds]:
            print(f"  not measured: {dict(reasons[ds])}")
    print("\nvb1 grades found (Genant >= 1, Meyerding >= 1):")
    print("\n".join(vb1_lines))

    spider = args.data / "spider_space"
    if (spider / "index.csv").exists():
        with open(spider / "index.csv") as fh:
            series = [r["series"] for r in csv.DictReader(fh)]
        ap, flags = [], defaultdict(int)
        for name in series:
            scan = load_scan(spider / f"{name}_image.nii.gz")
            labels = _spider_labels(read_label_volume(spider / f"{name}_label.nii.gz"))
            m = measure(scan, labels)
            for d in m.discs:
                if d.canal_ap.ok:
                    ap.append(d.canal_ap.value)
                    flags[d.canal_stenosis] += 1
                else:
                    flags["not measured"] += 1
        print(f"\n[spider_space] canal AP diameter at discs, {len(series)} series: {_summary(ap)}")
        print(f"  flags: {dict(flags)}")


if __name__ == "__main__":
    main()
