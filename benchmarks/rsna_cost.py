"""Per-study cost of the RSNA track on real-sized series, and the estimate for the 1,975 RSNA training studies.

    python benchmarks/rsna_cost.py --data ../shared/data [--studies 4]

Each study is written in the Kaggle layout from a real 26-slice 381 x 381 T2 volume (``volumes/vb2_*``: the same
volume as its sagittal T2/STIR and, with other noise, as its sagittal T1 series, one frame of reference) plus an axial
T2 series of 15 images of 320 x 320 resampled from it around the lumbar discs. Prints the seconds per study to cut
the 25 crops (stage 1 on the sagittal series, axial geometry, sampling), the seconds per study and epoch of training
(the small CNN on those crops, CPU), and what that means for 1,975 studies. Only meaningful on an idle machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _axial(volume, rng):
    """An axial T2 series (15 images, 320 x 320 at 0.7 mm) resampled from a sagittal scan, as a Scan."""
    from scipy.ndimage import map_coordinates

    from lumbarkit.scan import Scan

    centre = volume.voxel_to_mm(np.array([volume.shape[0] / 2, volume.shape[1] / 2, volume.shape[2] / 2]))
    affine = np.eye(4)
    affine[:3, 0] = [0, 0, -8.0]  # 8 mm between images, superior to inferior
    affine[:3, 1] = [0, -0.7, 0]  # rows run posteriorly
    affine[:3, 2] = [-0.7, 0, 0]  # columns to the left
    affine[:3, 3] = centre + np.array([112.0, 112.0, 56.0])
    k, i, j = np.indices((15, 320, 320))
    ras = np.stack([k, i, j], -1).reshape(-1, 3) @ affine[:3, :3].T + affine[:3, 3]
    values = map_coordinates(volume.array, volume.mm_to_voxel(ras).T, order=1).reshape(15, 320, 320)
    return Scan((values + rng.normal(0, 5, values.shape)).astype(np.float32), affine)


def write_studies(data: Path, root: Path, n: int) -> None:
    import csv

    import pydicom
    from pydicom.uid import generate_uid

    from lumbarkit.io import load_scan
    from lumbarkit.report.dicom import write_dicom_series

    cases = ["vb2_06", "vb2_12", "vb2_23", "vb2_05", "vb2_09", "vb2_13"][:n]
    rng = np.random.default_rng(0)
    rows = []
    for s, case in enumerate(cases):
        vol = load_scan(data / "volumes" / f"{case}_image.nii.gz")
        study, frame = generate_uid(), generate_uid()
        series = {"Sagittal T2/STIR": vol, "Sagittal T1": vol.with_array(vol.array + rng.normal(0, 5, vol.shape).astype(np.float32)),
                  "Axial T2": _axial(vol, rng)}
        for n_, (desc, scan) in enumerate(series.items(), start=1):
            sid, ser = str(1000 + s), f"{1000 + s}{n_}"
            tmp = root / "tmp" / ser
            files = write_dicom_series(scan, tmp, series_description=desc, study_uid=study, frame_of_reference_uid=frame,
                                       series_number=n_)
            out = root / "test_images" / sid / ser
            out.mkdir(parents=True)
            for f in files:
                ds = pydicom.dcmread(str(f))
                ds.save_as(out / f"{int(ds.InstanceNumber)}.dcm", enforce_file_format=True)
            rows.append((sid, ser, desc))
    with open(root / "test_series_descriptions.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("study_id", "series_id", "series_description"), *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--studies", type=int, default=4)
    args = ap.parse_args()
    from lumbarkit.pipeline import Pipeline
    from lumbarkit.rsna.crops import study_crops
    from lumbarkit.rsna.dataset import read_rsna
    from lumbarkit.rsna.train import RsnaCache, fit

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_studies(args.data, root, args.studies)
        data = read_rsna(root, "test")
        pipeline = Pipeline()
        seconds, crops, present = [], [], []
        for sid, study in sorted(data.studies.items()):
            t = time.perf_counter()
            c = study_crops(study, pipeline)
            seconds.append(time.perf_counter() - t)
            crops.append(c.crops)
            present.append(c.present)
            print(f"study {sid}: {seconds[-1]:.2f} s, {int(c.present.sum())}/25 crops, levels {sorted(c.discs)}"
                  + (f", notes: {c.notes}" if c.notes else ""))
    labels = np.random.default_rng(0).integers(0, 3, (len(crops), 25))
    cache = RsnaCache([str(i) for i in range(len(crops))], np.stack(crops), np.stack(present), labels, np.array(seconds), {})
    _, epoch_s = fit(cache, np.arange(len(crops)), epochs=3)
    per_study = float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
    per_epoch = epoch_s / len(crops)
    print(f"\ncrops: {per_study:.2f} s per study (median, first study's model loading excluded); "
          f"training: {per_epoch * 1000:.1f} ms per study per epoch")
    print(f"1,975 studies: {per_study * 1975 / 3600:.2f} h of crops once, then {per_epoch * 1975 / 60:.2f} min per epoch")


if __name__ == "__main__":
    main()
