"""Stage 5 (grade): grade every disc crop with the multi-task grader (ONNX Runtime; no torch).

``grade(scan, levels)`` cuts the crops the model was trained on (its ``crop_spec`` in model.json),
runs the ONNX model (one output of logits per task) and returns :class:`DiscGrades`: per disc the
class probabilities and the graded value (argmax) of every task, and Pfirrmann mapped to the 3-class
lumbar disc degeneration (mild I-II / moderate III / severe IV-V, probabilities summed).

Test-time augmentation (``tta=True``) averages the softmax over fixed variants of each crop
(:func:`tta_variants`: the crop itself, +-2 px row and +-4 px column shifts, a 6 % zoom, gamma 0.85
and 1.15). No horizontal flip: it would swap anterior and posterior.
"""

from __future__ import annotations

import logging

import numpy as np

from lumbarkit.results.grades import CSV_COLUMNS, DiscGrade, DiscGrades
from lumbarkit.scan import Scan
from lumbarkit.tasks import TASKS, get_task, ldd_probabilities, pfirrmann_to_ldd

log = logging.getLogger(__name__)

DEFAULT_MODEL = "grade_2d"
TTA_NAMES = ("identity", "rows+2", "rows-2", "cols+4", "cols-4", "zoom1.06", "gamma0.85", "gamma1.15")


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _shift(x: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """Shift the last two axes by whole pixels, zero fill."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    rs, rd = (slice(0, h - dr), slice(dr, h)) if dr >= 0 else (slice(-dr, h), slice(0, h + dr))
    cs, cd = (slice(0, w - dc), slice(dc, w)) if dc >= 0 else (slice(-dc, w), slice(0, w + dc))
    out[..., rd, cd] = x[..., rs, cs]
    return out


def _zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the last two axes about the centre by ``factor`` (>1 enlarges), keeping the shape."""
    from scipy.ndimage import map_coordinates

    h, w = x.shape[-2:]
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    r = (rr - (h - 1) / 2) / factor + (h - 1) / 2
    c = (cc - (w - 1) / 2) / factor + (w - 1) / 2
    flat = x.reshape(-1, h, w)
    out = np.stack([map_coordinates(im, [r, c], order=1, mode="constant", cval=0.0) for im in flat])
    return out.reshape(x.shape).astype(x.dtype)


def tta_variants(images: np.ndarray) -> list[np.ndarray]:
    """The fixed test-time variants (see :data:`TTA_NAMES`) of a crop batch ``(N, C, H, W)`` float32."""
    x = np.asarray(images, dtype=np.float32)
    pos = np.clip(x, 0.0, None)
    return [x, _shift(x, 2, 0), _shift(x, -2, 0), _shift(x, 0, 4), _shift(x, 0, -4), _zoom(x, 1.06),
            (pos ** 0.85).astype(np.float32), (pos ** 1.15).astype(np.float32)]


def _load(model):
    from lumbarkit.models.folder import load_model

    return load_model(model, DEFAULT_MODEL)


def model_crops(scan: Scan, levels, model=None):
    """The disc crops of ``levels`` cut as the grader ``model`` (folder or path; default packaged) expects."""
    from lumbarkit.stages.s4_crops import extract_disc_crops

    spec = _load(model).spec.crop_spec
    return extract_disc_crops(scan, levels, n_slices=spec.n_slices, size_mm=spec.size_mm, shape_px=spec.shape_px,
                              body_median=spec.body_median, clip=spec.clip)


def predict_probabilities(folder, images: np.ndarray, tta: bool = True) -> dict[str, np.ndarray]:
    """Softmax per task output ``(N, n_classes)`` of crops ``(N, C, H, W)``, TTA-averaged when ``tta``."""
    sess = folder.session
    names = [o.name for o in sess.get_outputs()]
    x = np.asarray(images, dtype=np.float32)
    if len(x) == 0:
        return {n: np.zeros((0, get_task(n).n_classes), dtype=np.float32) for n in names}
    variants = tta_variants(x) if tta else [x]
    batch = np.ascontiguousarray(np.concatenate(variants))  # one run for all variants
    outs = sess.run(None, {sess.get_inputs()[0].name: batch})
    result = {}
    for n, logits in zip(names, outs):
        p = softmax(logits, axis=1).reshape(len(variants), len(x), -1).mean(axis=0)
        result[n] = p.astype(np.float32)
    return result


def disc_grade(name: str, probs: dict[str, np.ndarray], i: int) -> DiscGrade:
    """The :class:`DiscGrade` of row ``i`` of per-task probabilities ``probs`` (task -> (N, classes)): each task's
    argmax, and the 3-class LDD as the class of the Pfirrmann grade shown (never a contradicting argmax of the sums)."""
    p = {k: tuple(float(v) for v in probs[k][i]) for k in probs}
    g = {k: get_task(k).decode(int(np.argmax(probs[k][i]))) for k in probs}
    if "pfirrmann" in probs:
        ldd, ldd_p = pfirrmann_to_ldd(g["pfirrmann"]), tuple(float(v) for v in ldd_probabilities(probs["pfirrmann"][i]))
    else:
        ldd, ldd_p = "", (float("nan"),) * 3
    return DiscGrade(name, p, g, ldd, ldd_p)


def grade(scan: Scan, levels, model=None, tta: bool = True, crops=None) -> DiscGrades:
    """Grade every disc of ``levels`` on ``scan``.

    Parameters
    ----------
    scan : the canonical scan.
    levels : :class:`lumbarkit.stages.s2_localize.Levels` of the scan.
    model : grader model folder (path or :class:`ModelFolder`; default the packaged ``grade_2d``).
    tta : average over the fixed test-time variants.
    crops : precomputed :class:`DiscCrops` (must follow the model's crop spec); cut here when None.

    Returns
    -------
    DiscGrades : immutable; one :class:`DiscGrade` per cropped disc, top to bottom.

    Raises
    ------
    ModelError : the model folder is missing, corrupt, or its crop spec differs from ``crops``.
    """
    from lumbarkit.errors import ModelError

    folder = _load(model)
    spec = folder.spec.crop_spec
    if crops is None:
        crops = model_crops(scan, levels, folder)
    elif crops.spec != spec:
        raise ModelError(f"crops were cut with {crops.spec} but the grader {folder.name} expects {spec}")
    probs = predict_probabilities(folder, crops.stack(), tta)
    discs = [disc_grade(c.name, probs, i) for i, c in enumerate(crops.crops)]
    warnings = tuple(f"{c.name}: {w}" for c in crops.crops for w in c.warnings)
    return DiscGrades(tuple(discs), tuple(crops.skipped), folder.name, folder.onnx_sha256, bool(tta), warnings)


__all__ = ["CSV_COLUMNS", "DiscGrade", "DiscGrades", "TASKS", "disc_grade", "grade", "model_crops", "predict_probabilities", "tta_variants"]
