"""Peak memory of `lumbarkit analyze` on a large synthetic volume (default 512 x 512 x 150), and how an
over-limit volume (2000 x 2000 x 200) is refused.

    python benchmarks/memory_peak.py [--rows 512 --cols 512 --slices 150]

Writes the phantom volume to a temporary folder, runs the CLI in a child process and prints the child's
peak resident memory (``getrusage(RUSAGE_CHILDREN)``) and wall time. Target (issue 13): under 2 GB for
512 x 512 x 150; an oversized volume refused at once in one line.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-c", "from lumbarkit.cli.main import run; run()"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--cols", type=int, default=512)
    ap.add_argument("--slices", type=int, default=150)
    args = ap.parse_args()
    from lumbarkit.phantom import make_phantom, write_phantom

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ph = make_phantom(spacing_mm=(1.0, 0.6, 0.6), n_slices=args.slices, shape_rc=(args.rows, args.cols),
                          lordosis_deg=50.0, tilt_deg=15.0)
        image = write_phantom(ph, tmp, fmt="nifti")["image"]
        t0 = time.perf_counter()
        res = subprocess.run([*CLI, "analyze", str(image), "-o", str(tmp / "out")], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        shape = f"{args.rows} x {args.cols} x {args.slices}"
        print(f"analyze {shape} ({args.rows * args.cols * args.slices / 1e6:.0f} M voxels): exit {res.returncode}, "
              f"peak {peak_gb:.2f} GB, {wall:.0f} s")

        import nibabel as nib

        hdr = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.eye(4)).header.copy()
        hdr.set_data_shape((2000, 2000, 200))
        hdr["vox_offset"] = 352
        huge = tmp / "huge.nii"
        with open(huge, "wb") as fh:  # sparse: the header says 800 M voxels, the disk holds almost nothing
            fh.write(hdr.binaryblock + b"\0" * 4)
            fh.seek(352 + 2000 * 2000 * 200 - 1)
            fh.write(b"\0")
        t0 = time.perf_counter()
        res = subprocess.run([*CLI, "analyze", str(huge), "-o", str(tmp / "out_huge")], capture_output=True, text=True)
        print(f"analyze 2000 x 2000 x 200: exit {res.returncode} in {time.perf_counter() - t0:.1f} s: {res.stderr.strip()}")


if __name__ == "__main__":
    main()
