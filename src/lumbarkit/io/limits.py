"""The largest scan lumbarkit analyses, checked from the header before any pixel data is read."""

from __future__ import annotations

from lumbarkit.errors import InputError

# Analysis peaks at about 35 bytes per voxel (float16 class probabilities, label maps, the image): a 512 x 512 x 150
# volume (39 M voxels) peaks at 1.4 GB (`python benchmarks/memory_peak.py`). 100 M voxels keep the peak near 3.5 GB,
# inside a 4 GB worker, and admit a 3D T2 SPACE of 640 x 640 x 200 (82 M).
MAX_VOXELS = 100_000_000


def check_voxels(shape, what: str) -> None:
    """InputError (one line) when a scan of ``shape`` is larger than :data:`MAX_VOXELS`."""
    n = 1
    for s in shape:
        n *= int(s)
    if n > MAX_VOXELS:
        dims = " x ".join(str(int(s)) for s in shape)
        raise InputError(f"{what} has {n / 1e6:.0f} million voxels ({dims}); lumbarkit analyses at most "
                         f"{MAX_VOXELS / 1e6:.0f} million (about 3.5 GB of memory): crop or downsample it first")
