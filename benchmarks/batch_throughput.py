"""Throughput of ``lumbarkit batch`` (series per hour) and peak memory per worker, for 1 and 2 workers.

    python benchmarks/batch_throughput.py --data ../shared/data --limit 24
Analyses ``--limit`` real 3D volumes (volumes/ and spider_space/, alternating) and ``--limit``
SPIDER mid-sagittal slices (spacing from spider/series.csv) with a local Dask cluster of each
worker count (fresh output folder each, no resume), then prints series/hour from the first
submitted job to the last result (``analysis``) and end to end including cluster start-up and
the cohort files (``total``), the mean seconds per series inside a worker, each worker
process's peak resident memory (psutil where it reports a peak, else ``resource``), and whether
the cohort.csv of every worker count is byte-identical. Numbers are only meaningful on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import replace
from pathlib import Path


def jobs_for(data: Path, limit: int):
    """``limit`` volumes and ``limit`` SPIDER slices as batch jobs."""
    from lumbarkit.batch import Job

    vols = [sorted((data / "volumes").glob("*_image.nii.gz")), sorted((data / "spider_space").glob("*_image.nii.gz"))]
    volumes = [p for pair in zip(*vols) for p in pair] + vols[0][len(vols[1]):] + vols[1][len(vols[0]):]
    with open(data / "spider" / "series.csv", newline="") as fh:
        spacing = {r["series"]: r["PixelSpacing"].strip("[]").replace(",", " ").split() for r in csv.DictReader(fh)}
    slices = [p for p in sorted((data / "spider" / "images").glob("*.png")) if p.stem in spacing]
    jobs = [Job(f"vol_{p.name.split('_image')[0]}", str(p.resolve()), p.name) for p in volumes[:limit]]
    jobs += [Job(f"slice_{p.stem}", str(p.resolve()), p.name, spacing_mm=tuple(float(v) for v in spacing[p.stem]))
             for p in slices[:limit]]
    return jobs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--limit", type=int, default=24, help="volumes and slices each (default 24 + 24 series)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--hotspots", action="store_true", help="also compute hotspot maps (needs a grader model)")
    ap.add_argument("--out", type=Path, default=None, help="keep the output folders here (default: a temporary folder)")
    args = ap.parse_args()

    from lumbarkit.batch import peak_rss_mb, run_batch
    from lumbarkit.pipeline import PipelineConfig

    jobs = jobs_for(args.data, args.limit)
    n_vol = sum(j.id.startswith("vol_") for j in jobs)
    print(f"{len(jobs)} series: {n_vol} volumes, {len(jobs) - n_vol} SPIDER slices; hotspots {'on' if args.hotspots else 'off'}")
    config = replace(PipelineConfig(), hotspots=args.hotspots)
    root = args.out or Path(tempfile.mkdtemp(prefix="lumbarkit-batch-bench-"))
    cohorts = {}
    for n in (int(w) for w in args.workers.split(",")):
        out = root / f"workers{n}"
        t = time.perf_counter()
        s = run_batch(jobs, out, workers=n, resume=False, config=config)
        total = time.perf_counter() - t
        analysis = s.timings_s.get("analysis", total)
        ok = [o for o in s.outcomes if o.ok]
        per_worker: dict[int, float] = {}
        for o in s.outcomes:
            if o.worker_pid and o.peak_rss_mb is not None:
                per_worker[o.worker_pid] = max(per_worker.get(o.worker_pid, 0.0), o.peak_rss_mb)
        mean_s = sum(o.seconds for o in ok) / max(1, len(ok))
        print(f"workers={n}: {len(s.done)} ok, {len(s.errors)} failed | "
              f"analysis {analysis:.1f} s = {3600 * len(s.outcomes) / analysis:.0f} series/h | "
              f"total {total:.1f} s (start-up {s.timings_s.get('startup', 0):.1f} s, cohort {s.timings_s.get('cohort', 0):.1f} s) "
              f"= {3600 * len(s.outcomes) / total:.0f} series/h | {mean_s:.2f} s per series in a worker")
        print("  peak RSS per worker process: " + ", ".join(f"pid {pid} {mb:.0f} MB" for pid, mb in sorted(per_worker.items())))
        for e in s.errors:
            print(f"  failed {e['series_id']}: {e['reason']}")
        cohorts[n] = (out / "cohort.csv").read_bytes()
    if len(cohorts) > 1:
        print(f"cohort.csv identical across worker counts: {'yes' if len(set(cohorts.values())) == 1 else 'NO'}")
    print(f"client process (scheduler included) peak RSS: {peak_rss_mb():.0f} MB; outputs in {root}")


if __name__ == "__main__":  # needed: the Dask worker processes are spawned and re-import this file
    main()
