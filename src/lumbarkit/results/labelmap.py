"""A VerSe label map that carries its grid: the form in which segmentations travel between stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.scan import Scan

MAX_LABEL_ID = 10_000


@dataclass(frozen=True, repr=False)
class LabelMap:
    """Integer VerSe ids (see :mod:`lumbarkit.levels`) on a scan's canonical grid ``(slices, rows, cols)``.

    ``affine`` maps a voxel index to RAS mm (the scan's); ``confidences`` holds the level-naming
    confidence (0..1) of each named structure when the map came from the level-naming stage.
    """

    labels: np.ndarray
    affine: np.ndarray
    confidences: dict[str, float] = field(default_factory=dict)

    @classmethod
    def on_grid_of(cls, scan: Scan, labels: "LabelMap | np.ndarray") -> "LabelMap":
        """``labels`` checked to lie on ``scan``'s grid and to hold integer ids (a 2D array is taken for a
        one-slice scan); raises :class:`InputError` otherwise. The one place a label map's grid is checked."""
        if isinstance(labels, LabelMap):
            if (labels.labels.shape == scan.shape and labels.labels.dtype == np.int32
                    and np.allclose(labels.affine, scan.affine, atol=1e-4)):
                return labels
            arr = labels.labels
        else:
            arr = np.asarray(labels)
        if arr.ndim == 2 and scan.shape[0] == 1:
            arr = arr[None]
        if arr.shape != scan.shape:
            raise InputError(f"label map shape {arr.shape} differs from the scan's {scan.shape}: labels must be on the scan's grid")
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise InputError("the label map holds non-integer values: expected integer VerSe label ids")
        elif arr.dtype.kind not in "iub":
            raise InputError(f"the label map has dtype {arr.dtype}: expected integer VerSe label ids")
        if arr.size and (arr.min() < 0 or arr.max() > MAX_LABEL_ID):
            raise InputError("the label map holds negative or huge values: expected VerSe label ids")
        return cls(arr.astype(np.int32, copy=False), np.asarray(scan.affine, dtype=float),
                   dict(labels.confidences) if isinstance(labels, LabelMap) else {})

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.labels.shape)

    @property
    def present_labels(self) -> list[int]:
        return [int(v) for v in np.unique(self.labels) if v != 0]

    def __repr__(self) -> str:
        return f"LabelMap(shape={self.labels.shape}, labels={self.present_labels})"
