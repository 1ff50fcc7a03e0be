"""In-memory scan and segmentation in lumbarkit's canonical sagittal orientation.

Canonical orientation
---------------------
``Scan.array`` has shape ``(slices, rows, cols)``:

* axis 0 (slices) runs towards the patient's **left** (nibabel code ``L``),
* axis 1 (rows) runs towards **inferior** (``I``): row 0 is the top of the image,
* axis 2 (cols) runs towards **posterior** (``P``): col 0 is anterior.

So ``scan.array[k]`` is a sagittal image displayed head up, anterior to the left (the
radiological convention of SPIDER and most PACS). Readers only permute and flip axes to get
there (never resample), and ``Scan.affine`` maps the canonical voxel index ``(k, i, j)`` to
RAS+ millimetres (NIfTI convention) exactly, so oblique acquisitions keep their true geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lumbarkit.errors import InputError

CANONICAL_AXCODES = ("L", "I", "P")


@dataclass(frozen=True)
class ScanMetadata:
    """Non-identifying acquisition facts (never names, ids, dates or institutions)."""

    modality: str = "MR"
    sequence: str = "unknown"  # "T1", "T2", "T2_SPACE", "STIR", ... or "unknown"
    series_description: str = ""
    manufacturer: str = ""
    field_strength_t: float | None = None
    source_format: str = ""  # "dicom", "nifti", "mha", "nrrd", "image"
    series_uid: str = ""  # technical UID, kept to reference the source series (DICOM SEG/SR)
    frame_of_reference_uid: str = ""  # DICOM FrameOfReferenceUID: series sharing it share patient coordinates
    notes: tuple[str, ...] = ()  # reader warnings (e.g. a sidecar disagreeing with the file); become result warnings

    def to_dict(self) -> dict:
        return {
            "modality": self.modality,
            "sequence": self.sequence,
            "series_description": self.series_description,
            "manufacturer": self.manufacturer,
            "field_strength_t": self.field_strength_t,
            "source_format": self.source_format,
        }


def to_canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permute/flip a 3D array so its axes follow ``CANONICAL_AXCODES``; update the affine.

    ``affine`` maps the voxel index of ``array`` to RAS mm. No interpolation happens.
    """
    import nibabel.orientations as nio

    current = nio.io_orientation(affine)
    target = nio.axcodes2ornt(CANONICAL_AXCODES)
    transform = nio.ornt_transform(current, target)
    out = nio.apply_orientation(array, transform)
    new_affine = affine @ nio.inv_ornt_aff(transform, array.shape)
    return np.ascontiguousarray(out), new_affine


@dataclass(frozen=True, repr=False)
class Scan:
    """A sagittal MR scan: canonical voxel array, its RAS mm affine and safe metadata.

    Parameters
    ----------
    array : (slices, rows, cols) float32 array in canonical orientation (see module doc).
    affine : 4x4 array mapping the voxel index ``(k, i, j, 1)`` to RAS+ mm.
    metadata : non-identifying acquisition facts.
    """

    array: np.ndarray
    affine: np.ndarray
    metadata: ScanMetadata = field(default_factory=ScanMetadata)
    source_affine: np.ndarray | None = None  # affine of the array as stored in the input file

    def __post_init__(self):
        if self.array.ndim != 3:
            raise InputError(f"a scan needs a 3D array (slices, rows, cols), got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise InputError("a scan needs a 4x4 affine")
        if not np.all(np.isfinite(self.affine)) or abs(np.linalg.det(self.affine[:3, :3])) < 1e-9:
            raise InputError("the scan geometry (affine) is degenerate or not finite")
        if not np.all(np.isfinite(self.array)):
            raise InputError("the image holds non-finite voxel values (NaN or infinity)")

    @classmethod
    def from_array(cls, array: np.ndarray, affine: np.ndarray, metadata: ScanMetadata | None = None) -> "Scan":
        """Build a canonical scan from any 3D array whose ``affine`` maps its index to RAS mm."""
        data = np.asarray(array)
        if data.ndim != 3:
            raise InputError(f"expected a 3D image, got {data.ndim} dimensions")
        source_affine = np.asarray(affine, dtype=float)
        canon, canon_affine = to_canonical(data, source_affine)
        return cls(canon.astype(np.float32, copy=False), canon_affine, metadata or ScanMetadata(), source_affine)

    def to_source_grid(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map a canonical-grid array (e.g. a label map) back onto the input file's voxel grid.

        Returns the array and the input's affine (RAS); the inverse of the reader's reorientation.
        """
        if self.source_affine is None:
            return array, self.affine
        import nibabel.orientations as nio

        transform = nio.ornt_transform(nio.io_orientation(self.affine), nio.io_orientation(self.source_affine))
        out = nio.apply_orientation(array, transform)
        return np.ascontiguousarray(out), self.source_affine

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel size along (slices, rows, cols) in mm."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Nibabel axis codes of the array axes (always ``"LIP"`` for a canonical scan)."""
        import nibabel.orientations as nio

        return "".join(nio.aff2axcodes(self.affine))

    @property
    def is_single_slice(self) -> bool:
        return self.array.shape[0] == 1

    @property
    def mid_slice(self) -> int:
        """Index of the middle sagittal slice."""
        return self.array.shape[0] // 2

    def voxel_to_mm(self, index: np.ndarray) -> np.ndarray:
        """Map voxel indices ``(..., 3)`` in (k, i, j) order to RAS mm ``(..., 3)``."""
        idx = np.asarray(index, dtype=float)
        return idx @ self.affine[:3, :3].T + self.affine[:3, 3]

    def mm_to_voxel(self, points_mm: np.ndarray) -> np.ndarray:
        """Map RAS mm points ``(..., 3)`` to fractional voxel indices (k, i, j)."""
        pts = np.asarray(points_mm, dtype=float)
        inv = np.linalg.inv(self.affine)
        return pts @ inv[:3, :3].T + inv[:3, 3]

    def with_array(self, array: np.ndarray) -> "Scan":
        """Same geometry and metadata, other voxels (same shape)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from the scan's {self.array.shape}")
        return replace(self, array=array.astype(np.float32, copy=False))

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing_mm)
        return (
            f"Scan(shape={self.shape}, spacing_mm=({sp}), orientation={self.orientation}, "
            f"sequence={self.metadata.sequence}, source={self.metadata.source_format or '?'})"
        )
