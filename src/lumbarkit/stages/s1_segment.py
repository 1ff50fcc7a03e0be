"""Stage 1 (segment): semantic segmentation of every sagittal slice at a fixed physical resolution.

Each slice is normalised to [0, 1] (0.5-99.5 percentiles), resampled to the model's isotropic
pixel size, run through the network (ONNX Runtime by default), and the class probabilities are
resampled back onto the scan's own grid.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lumbarkit.results.segmentation import SemanticSegmentation
from lumbarkit.scan import Scan

PredictFn = Callable[[np.ndarray], np.ndarray]  # (N, 1, H, W) float32 -> (N, C, H, W) logits
# Probabilities are kept as float16 on the scan grid (12 bytes per voxel for 6 classes instead of 24): precision
# 1e-3, far finer than the 0.5 decisions made on them; it bounds memory on large 3D series.
PROBABILITY_DTYPE = np.float16


def normalise_slice(image: np.ndarray) -> np.ndarray:
    """Scale a slice to [0, 1] between its 0.5th and 99.5th intensity percentiles."""
    lo, hi = np.percentile(image, (0.5, 99.5))
    if hi <= lo:
        return np.zeros_like(image, dtype=np.float32)
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def resample_2d(array: np.ndarray, factors: tuple[float, float], order: int) -> np.ndarray:
    """Zoom a 2D array by (row, col) ``factors`` (>1 enlarges); order 0 for labels, 1 for images."""
    from scipy.ndimage import zoom

    if np.allclose(factors, 1.0):
        return array
    return zoom(array, factors, order=order, mode="nearest", grid_mode=True)


def _softmax_(logits: np.ndarray, axis: int) -> np.ndarray:
    """Softmax of float32 ``logits`` along ``axis``, computed in place (the same operations, no temporaries)."""
    logits -= logits.max(axis=axis, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=axis, keepdims=True)
    return logits


_MIN_NORMAL_F16 = np.float32(2.0**-14)


def to_float16(values: np.ndarray) -> np.ndarray:
    """``values.astype(float16)`` for non-negative float32 values, bit for bit, without numpy's slow path for
    results below float16's smallest normal number (2**-14), where most softmax probabilities fall.

    A float16 subnormal is k * 2**-24 (k = 0..1023) and its bit pattern is k, so those values are rounded
    (half to even, as the cast does) on that grid directly; k = 1024 is the pattern of 2**-14 itself."""
    values = np.asarray(values, dtype=np.float32)
    small = values < _MIN_NORMAL_F16
    half = np.where(small, np.float32(1.0), values).astype(np.float16)
    k = np.minimum(values, _MIN_NORMAL_F16) * np.float32(2.0**24)
    np.rint(k, out=k)
    return np.where(small, k.astype(np.uint16), half.view(np.uint16)).view(np.float16)


def winning_class(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The winning class (uint8, the first on a tie, as ``argmax``) and its probability, per pixel, of one slice's
    non-negative float16 probabilities ``(classes, rows, cols)``.

    Non-negative float16 values order as their bit patterns do, so the comparison runs on uint16 (vectorised),
    class by class: ``argmax``/``max`` over float16 is several times slower."""
    if probabilities.dtype != np.float16:  # e.g. float32 probabilities made by a caller
        return probabilities.argmax(axis=0).astype(np.uint8), probabilities.max(axis=0)
    bits = np.ascontiguousarray(probabilities).view(np.uint16)
    best = bits[0].copy()
    winner = np.zeros(best.shape, dtype=np.uint8)
    better = np.empty(best.shape, dtype=bool)
    for c in range(1, len(bits)):
        np.greater(bits[c], best, out=better)
        np.copyto(winner, c, where=better)
        np.maximum(best, bits[c], out=best)
    return winner, best.view(PROBABILITY_DTYPE)


def predict_probabilities(scan: Scan, predict: PredictFn, target_mm: float, multiple: int = 16, batch: int = 8) -> np.ndarray:
    """Class probabilities ``(slices, classes, rows, cols)`` on the scan's own grid (:data:`PROBABILITY_DTYPE`).

    Slices go through the network ``batch`` at a time and straight back onto the scan grid, so memory beyond the
    result grows with one batch, not with the volume."""
    row_mm, col_mm = scan.spacing_mm[1:]
    factors = (row_mm / target_mm, col_mm / target_mm)
    n_rows, n_cols = scan.shape[1:]
    out = None
    for start in range(0, scan.shape[0], batch):
        images = [resample_2d(normalise_slice(s), factors, order=1) for s in scan.array[start : start + batch]]
        h, w = images[0].shape
        ph, pw = -h % multiple, -w % multiple
        x = np.zeros((len(images), 1, h + ph, w + pw), dtype=np.float32)
        for i, im in enumerate(images):
            x[i, 0, :h, :w] = im
        probs = _softmax_(np.array(predict(x)[:, :, :h, :w], dtype=np.float32), axis=1)
        if out is None:
            out = np.empty((scan.shape[0], probs.shape[1], n_rows, n_cols), dtype=PROBABILITY_DTYPE)
        if (h, w) != (n_rows, n_cols):
            back = (n_rows / h, n_cols / w)
            on_grid = np.empty((probs.shape[0], probs.shape[1], n_rows, n_cols), dtype=np.float32)
            for i in range(probs.shape[0]):
                for c in range(probs.shape[1]):
                    z = resample_2d(probs[i, c], back, order=1)
                    on_grid[i, c] = z if z.shape == (n_rows, n_cols) else _fit(z, n_rows, n_cols)
            probs = on_grid
        for i in range(len(probs)):  # slice by slice: the temporaries stay in cache (several times faster than whole)
            out[start + i] = to_float16(probs[i])
    return out


def _fit(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=a.dtype)
    r, c = min(rows, a.shape[0]), min(cols, a.shape[1])
    out[:r, :c] = a[:r, :c]
    return out


def segment_semantic(scan: Scan, predict: PredictFn, target_mm: float) -> np.ndarray:
    """Semantic class map ``(slices, rows, cols)`` (see :mod:`lumbarkit.seg_classes`)."""
    return predict_probabilities(scan, predict, target_mm).argmax(axis=1).astype(np.uint8)


DEFAULT_MODEL = "segment_2d"


def segment(scan: Scan, model=None) -> SemanticSegmentation:
    """Segment every sagittal slice of ``scan`` with a model folder (default: the packaged model)."""
    from lumbarkit.models.folder import load_model

    folder = load_model(model, DEFAULT_MODEL)
    probs = predict_probabilities(scan, folder.run, folder.spec.pixel_mm, multiple=folder.spec.pad_multiple)
    return SemanticSegmentation(probs, folder.name, folder.onnx_sha256)
