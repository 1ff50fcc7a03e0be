"""NIfTI (nibabel) and MHA/MHD/NRRD (SimpleITK) volume readers and a NIfTI writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lumbarkit.errors import InputError
from lumbarkit.io.limits import check_voxels
from lumbarkit.scan import Scan, ScanMetadata

# ITK stores geometry in LPS; NIfTI/lumbarkit affines are RAS.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many kinds for corrupt/truncated files
        raise InputError(f"cannot read NIfTI file {path.name}: {type(exc).__name__}: {exc}") from None
    check_voxels(img.shape[:3], path.name)
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise InputError(f"cannot read NIfTI file {path.name}: {type(exc).__name__}: {exc}") from None
    return data, np.asarray(img.affine, dtype=float)


def _read_itk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        check_voxels(reader.GetSize(), path.name)
        img = reader.Execute()
    except InputError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()
        reason = next((line for line in first if "ERROR" in line or "Exception" in line), first[0] if first else "")
        raise InputError(f"cannot read {path.name}: {reason.strip()[:200]}") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path.name} has {img.GetNumberOfComponentsPerPixel()} components per voxel; expected a scalar image")
    data = sitk.GetArrayFromImage(img)  # (z, y, x)
    dim = img.GetDimension()
    direction = np.asarray(img.GetDirection(), dtype=float).reshape(dim, dim)
    spacing = np.asarray(img.GetSpacing(), dtype=float)
    origin = np.asarray(img.GetOrigin(), dtype=float)
    if dim == 2:
        data = data[None]
        direction = np.block([[direction, np.zeros((2, 1))], [np.zeros((1, 2)), np.ones((1, 1))]])
        spacing = np.append(spacing, 1.0)
        origin = np.append(origin, 0.0)
    elif dim != 3:
        raise InputError(f"{path.name} has {dim} dimensions; expected a 3D volume")
    # numpy axes are (z, y, x); index (a0, a1, a2) -> physical = origin + D @ (spacing * (a2, a1, a0))
    lps = np.eye(4)
    lps[:3, :3] = (direction * spacing)[:, ::-1]
    lps[:3, 3] = origin
    return data, LPS_TO_RAS @ lps


def read_volume(path: Path) -> Scan:
    """Read a NIfTI, MHA/MHD or NRRD volume into a canonical :class:`Scan`."""
    name = path.name.lower()
    is_nifti = name.endswith(".nii") or name.endswith(".nii.gz")
    data, affine = _read_nifti(path) if is_nifti else _read_itk(path)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise InputError(f"{path.name} has shape {data.shape}; expected a 3D scalar volume")
    if data.size == 0:
        raise InputError(f"{path.name} holds no voxels")
    data = np.asarray(data, dtype=np.float32)
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path.name} holds non-finite voxel values (NaN or infinity)")
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputError(f"{path.name} has a degenerate or non-finite affine")
    if not is_nifti:
        return Scan.from_array(data, affine, ScanMetadata(source_format=name.rsplit(".", 1)[-1]))
    from lumbarkit.io.sidecar import read_sidecar

    side = read_sidecar(path, slice_spacing_mm=float(np.linalg.norm(affine[:3, 2])))
    meta = ScanMetadata(sequence=side.sequence, series_description=side.series_description, manufacturer=side.manufacturer,
                        field_strength_t=side.field_strength_t, source_format="nifti", notes=side.notes)
    return Scan.from_array(data, affine, meta)


def read_label_volume(path: Path | str) -> np.ndarray:
    """Read an integer label volume and return it on the canonical grid (no interpolation)."""
    path = Path(path)
    from lumbarkit.scan import to_canonical

    name = path.name.lower()
    data, affine = _read_nifti(path) if name.endswith((".nii", ".nii.gz")) else _read_itk(path)
    if data.ndim == 2:
        data = data[:, :, None]
    labels, _ = to_canonical(np.asarray(data), affine)
    return labels.astype(np.int32)


def write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write a canonical-grid array with its RAS affine as NIfTI (no identifying header fields)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=float))
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"lumbarkit"
    nib.save(img, str(path))
    return path


def write_itk(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write a canonical-grid array with its RAS affine as MHA/MHD/NRRD via SimpleITK."""
    import SimpleITK as sitk

    lps = LPS_TO_RAS @ np.asarray(affine, dtype=float)
    cols = lps[:3, :3]  # columns for canonical axes (k, i, j)
    spacing_kij = np.linalg.norm(cols, axis=0)
    direction_kij = cols / spacing_kij
    img = sitk.GetImageFromArray(np.asarray(array))  # numpy (k, i, j) -> ITK (x=j, y=i, z=k)
    img.SetSpacing(tuple(float(s) for s in spacing_kij[::-1]))
    img.SetDirection(tuple(float(v) for v in direction_kij[:, ::-1].ravel()))
    img.SetOrigin(tuple(float(v) for v in lps[:3, 3]))
    sitk.WriteImage(img, str(path), useCompression=True)
    return path
