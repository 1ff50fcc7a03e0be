"""Test volumes for the DICOM tests: distinct-valued patterns, affines, flips and an axial scan."""

from __future__ import annotations

import numpy as np

from lumbarkit.scan import Scan

SHAPE = (7, 24, 20)  # slices, rows, cols


def pattern(shape=SHAPE) -> np.ndarray:
    """Every voxel distinct: value = 10000 k + 100 i + j (integers, fit uint16)."""
    k, i, j = np.indices(shape)
    return (10000 * k + 100 * i + j).astype(np.float32)


def canonical_affine(spacing=(3.3, 0.6, 0.7), origin=(12.0, -30.0, 40.0)) -> np.ndarray:
    """RAS affine of a canonical scan: slices towards left, rows inferior, cols posterior."""
    affine = np.zeros((4, 4))
    affine[0, 0] = -spacing[0]
    affine[2, 1] = -spacing[1]
    affine[1, 2] = -spacing[2]
    affine[:3, 3] = origin
    affine[3, 3] = 1
    return affine


def rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    a, b = [ax for ax in range(3) if ax != axis]
    rot = np.eye(4)
    rot[a, a], rot[a, b], rot[b, a], rot[b, b] = c, -s, s, c
    return rot


def flip(array: np.ndarray, affine: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Same physical image stored with ``axis`` reversed."""
    f = np.eye(4)
    f[axis, axis] = -1
    f[axis, 3] = array.shape[axis] - 1
    return np.flip(array, axis).copy(), affine @ f


def swap_inplane(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same physical image with image rows and columns exchanged."""
    p = np.eye(4)[:, [0, 2, 1, 3]]
    return array.transpose(0, 2, 1).copy(), affine @ p


def axial_scan() -> Scan:
    """An axial stack written as displayed: slices towards inferior, rows posterior, cols left."""
    affine = np.zeros((4, 4))
    affine[2, 0], affine[1, 1], affine[0, 2], affine[3, 3] = -4.0, -0.8, -0.75, 1
    return Scan(pattern((5, 16, 18)), affine)


def assert_same_scan(got: Scan, expected: Scan, atol: float = 0.0) -> None:
    assert got.shape == expected.shape
    assert got.orientation == "LIP"
    np.testing.assert_allclose(got.affine, expected.affine, atol=1e-6)
    np.testing.assert_allclose(got.array, expected.array, atol=atol)
