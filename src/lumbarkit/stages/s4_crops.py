"""Stage 4 (crops): one crop per disc, rotated so the disc is horizontal and centred (the grader's input).

Geometry
--------
Everything happens in the sagittal image plane of the disc's mid slice (of the slices holding at
least half of the disc's largest cross-section, the one nearest its centroid; ``slice_index`` of
:class:`LevelInstance` breaks area ties towards a lateral slice), in in-plane millimetres
``(r, c) = (row * row_mm, col * col_mm)``. The crop centre is the centroid of the disc mask on that slice.
The disc's long axis ``e`` is the major principal axis of that mask (pointing posterior) and
the crop's row axis is its normal ``n`` (pointing inferior); ``(n, e)`` is a proper rotation, so
anterior stays on the left and the head stays up. Crop pixel ``(u, v)`` samples the scan at::

    p = centre + (u - (H - 1) / 2) * pixel_mm * n + (v - (W - 1) / 2) * pixel_mm * e

with bilinear interpolation (``scipy.ndimage.map_coordinates``, order 1, zero outside the
image); the label map is sampled the same way with nearest neighbour. When the crop pixel is
more than 1.5x the scan pixel the slice is first smoothed (Gaussian anti-aliasing).

Why the disc's own axis and not the line joining the adjacent body centroids: that line tilts
by ~atan(slip / 35 mm) with a spondylolisthesis (one of the graded findings), and the "S1" of
the label map is the whole sacrum, whose centroid lies far below and behind the S1 body. The
body line is used only when the disc mask is not clearly elongated (axis ratio < 2, e.g. a
fragment); a crop warns when the two disagree by more than 20 degrees.

Size
----
The default field of view is 36 x 72 mm (rows x cols) on a 64 x 128 pixel grid (0.5625 mm
pixels): a lumbar disc (8-12 mm high, 35-50 mm deep) plus ~40 % of each adjacent body
(0.4 x ~26 mm) above and below, and the canal behind it. SpineNet uses 112 x 224 pixels.

Intensity
---------
Each crop stack is scaled so that the median raw intensity of the adjacent vertebral bodies
(label-map voxels of the upper and lower vertebra that fall inside the crop stack) becomes
``body_median`` (0.5), then clipped to ``clip`` ([0, 1]). One scale for the whole stack.

Fallbacks (decided here, recorded per crop)
-------------------------------------------
* An adjacent body missing from the label map (not segmented, out of view, or a disc-only
  label map) does not stop the crop: geometry never needs the bodies, and the intensity
  reference falls back to the "bands" above and below the disc (crop pixels outside the disc's
  row extent + 1 mm, within its column extent) with ``normalisation = "bands"`` and a warning.
* A crop reaching beyond the image is zero-filled there; ``outside_fraction`` records how much, and
  a warning is added above ``MAX_OUTSIDE`` (typically a false disc at the image edge).
* A disc is skipped, with a reason in ``DiscCrops.skipped``, only when its mask on its slice has
  fewer than ``MIN_DISC_PIXELS`` pixels or its reference intensity is not positive.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from lumbarkit.levels import VERTEBRA_IDS
from lumbarkit.results.crops import (
    DEFAULT_SHAPE_PX,
    DEFAULT_SIZE_MM,
    CropGeometry,
    CropSpec,
    DiscCrop,
    DiscCrops,
)
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.scan import Scan

log = logging.getLogger(__name__)

MIN_DISC_PIXELS = 12  # on the disc's slice
MIN_REFERENCE_PIXELS = 20  # body (or band) pixels needed for the intensity reference
MIN_ELONGATION = 2.0  # major / minor axis ratio above which the disc's own axis is trusted
DISAGREE_DEG = 20.0
MAX_OUTSIDE = 0.25  # warn when more of the crop than this lies outside the image


# ---------------------------------------------------------------- helpers


def _principal(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Major axis (unit, pointing to +col) of in-plane points ``(N, 2)`` (r, c mm), and major/minor ratio."""
    cov = np.cov((points - points.mean(axis=0)).T)
    evals, evecs = np.linalg.eigh(cov)
    e = evecs[:, 1]
    if e[1] < 0:
        e = -e
    ratio = math.sqrt(max(evals[1], 0.0) / max(evals[0], 1e-12))
    return e, ratio


def _angle_of(e: np.ndarray) -> float:
    """Degrees of the long axis ``e`` (r, c) from the column axis, positive with the posterior end superior."""
    return math.degrees(math.atan2(-e[0], e[1]))


def _neighbour_ids(disc_name: str) -> tuple[int | None, int | None]:
    """VerSe ids of the vertebrae above and below a disc named like ``"L5/L6"`` (the name carries the lumbar count)."""
    upper, _, lower = disc_name.partition("/")
    return VERTEBRA_IDS.get(upper), VERTEBRA_IDS.get(lower)


def _smoothed_slice(array2d: np.ndarray, sigma_px: tuple[float, float]) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    if max(sigma_px) <= 0:
        return array2d
    return gaussian_filter(array2d.astype(np.float32), sigma=sigma_px, mode="nearest")


def extract_disc_crops(
    scan: Scan,
    levels,
    *,
    n_slices: int = 1,
    size_mm: tuple[float, float] = DEFAULT_SIZE_MM,
    shape_px: tuple[int, int] = DEFAULT_SHAPE_PX,
    body_median: float = 0.5,
    clip: tuple[float, float] = (0.0, 1.0),
    names=None,
) -> DiscCrops:
    """Cut one horizontal, centred, intensity-normalised crop stack per named disc.

    Parameters
    ----------
    scan : the canonical scan.
    levels : :class:`lumbarkit.stages.s2_localize.Levels` (its discs and VerSe label map on the scan grid).
    n_slices : odd number of sagittal slices per crop, centred on the disc's slice; slices beyond
        the volume repeat the edge slice (a single-slice scan gives ``n_slices`` copies).
    size_mm : field of view (rows along the disc normal, cols along the disc), mm.
    shape_px : crop pixel grid (rows, cols).
    body_median : target of the adjacent bodies' median intensity.
    clip : output intensity range.
    names : only these discs (default: every disc of ``levels``).

    Returns
    -------
    DiscCrops : crops top to bottom, and ``skipped`` (name, reason) pairs.

    Raises
    ------
    ValueError : an invalid crop spec.
    InputError : a label map not on the scan's grid.
    """
    spec = CropSpec(int(n_slices), tuple(float(v) for v in size_mm), tuple(int(v) for v in shape_px),
                    float(body_median), tuple(float(v) for v in clip))
    labels3d = LabelMap.on_grid_of(scan, levels.segmentation).labels
    row_mm, col_mm = scan.spacing_mm[1:]
    pr, pc = spec.pixel_mm
    # anti-aliasing (scan pixels) when the crop pixel is much coarser than the scan's: sigma = (factor - 1) / 2
    sigma = tuple((f - 1.0) / 2.0 if f > 1.5 else 0.0 for f in (pr / row_mm, pc / col_mm))
    smoothed: dict[int, np.ndarray] = {}

    def image_slice(k: int) -> np.ndarray:
        if k not in smoothed:
            smoothed[k] = _smoothed_slice(scan.array[k], sigma)
        return smoothed[k]

    wanted = None if names is None else set(names)
    crops: list[DiscCrop] = []
    skipped: list[tuple[str, str]] = []
    for disc in levels.discs:
        if wanted is not None and disc.name not in wanted:
            continue
        result = _crop_one(scan, labels3d, disc, spec, image_slice)
        if isinstance(result, str):
            log.info("disc %s not cropped: %s", disc.name, result)
            skipped.append((disc.name, result))
        else:
            crops.append(result)
    if wanted is not None:
        found = {d.name for d in levels.discs}
        skipped += [(n, "disc not found by level localisation") for n in sorted(wanted - found)]
    return DiscCrops(tuple(crops), tuple(skipped), spec)


def _disc_slice(scan: Scan, labels3d: np.ndarray, disc) -> int:
    """The disc's mid slice: of the slices holding >= half its largest cross-section, the one nearest
    its centroid (ties in area would otherwise pick a lateral slice)."""
    areas = (labels3d == disc.label).sum(axis=(1, 2))
    if areas.max() == 0:
        return int(np.clip(disc.slice_index, 0, scan.shape[0] - 1))
    k_centroid = float(scan.mm_to_voxel(np.asarray(disc.centroid_mm, dtype=float))[0])
    candidates = np.flatnonzero(areas >= 0.5 * areas.max())
    return int(candidates[np.argmin(np.abs(candidates - k_centroid))])


def _crop_one(scan: Scan, labels3d: np.ndarray, disc, spec: CropSpec, image_slice) -> DiscCrop | str:
    from scipy.ndimage import map_coordinates

    row_mm, col_mm = scan.spacing_mm[1:]
    k = _disc_slice(scan, labels3d, disc)
    mask = labels3d[k] == disc.label
    idx = np.argwhere(mask)
    if len(idx) < MIN_DISC_PIXELS:
        return f"disc mask has {len(idx)} pixels on slice {k} (< {MIN_DISC_PIXELS})"
    pts = idx * np.array([row_mm, col_mm])
    centre = pts.mean(axis=0)
    e_disc, ratio = _principal(pts)
    upper_id, lower_id = _neighbour_ids(disc.name)
    warnings: list[str] = []

    e_body = None
    if upper_id is not None and lower_id is not None:
        up, lo = np.argwhere(labels3d[k] == upper_id), np.argwhere(labels3d[k] == lower_id)
        if len(up) >= MIN_REFERENCE_PIXELS and len(lo) >= MIN_REFERENCE_PIXELS:
            n_body = (lo.mean(axis=0) - up.mean(axis=0)) * np.array([row_mm, col_mm])
            n_body /= np.linalg.norm(n_body)
            e_body = np.array([-n_body[1], n_body[0]])  # n = (e_c, -e_r)  =>  e = (-n_c, n_r)
            if e_body[1] < 0:
                e_body = -e_body
    if ratio >= MIN_ELONGATION or e_body is None:
        e, source = e_disc, "disc"
        if ratio < MIN_ELONGATION:
            warnings.append(f"disc mask barely elongated (axis ratio {ratio:.1f}); orientation uncertain")
    else:
        e, source = e_body, "bodies"
    angle = _angle_of(e)
    if e_body is not None:
        diff = abs((_angle_of(e_disc) - _angle_of(e_body) + 90.0) % 180.0 - 90.0)
        if diff > DISAGREE_DEG:
            warnings.append(f"disc axis and adjacent-body line differ by {diff:.0f} deg")

    half = spec.n_slices // 2
    slices = tuple(int(np.clip(k + d, 0, scan.shape[0] - 1)) for d in range(-half, half + 1))
    centre_vox = (float(k), float(centre[0] / row_mm), float(centre[1] / col_mm))
    geom = CropGeometry(
        slice_indices=slices, centre_voxel=centre_vox,
        centre_mm=tuple(float(v) for v in scan.voxel_to_mm(np.array(centre_vox))),
        angle_deg=float(angle), pixel_mm=spec.pixel_mm, shape_px=tuple(spec.shape_px),
        scan_pixel_mm=(float(row_mm), float(col_mm)), orientation_source=source,
    )
    h, w = spec.shape_px
    uu, vv = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ii, jj = geom.pixel_to_voxel(uu, vv)
    coords = np.stack([ii, jj])
    n_rows, n_cols = scan.shape[1:]
    outside = float(((ii < -0.5) | (ii > n_rows - 0.5) | (jj < -0.5) | (jj > n_cols - 0.5)).mean())
    if outside > MAX_OUTSIDE:
        warnings.append(f"{outside:.0%} of the crop lies outside the image")
    raw = np.stack([map_coordinates(image_slice(s), coords, order=1, mode="constant", cval=0.0) for s in slices])
    lab = np.stack([map_coordinates(labels3d[s], coords, order=0, mode="constant", cval=0) for s in slices]).astype(np.int16)

    ref, method = _reference(raw, lab, disc.label, upper_id, lower_id, spec)
    if method == "bands":
        warnings.append("adjacent vertebral bodies not in the label map: intensity reference from the bands above and below the disc")
    if not (ref > 0 and np.isfinite(ref)):
        return f"reference intensity ({method}) is not positive"
    scale = spec.body_median / ref
    image = np.clip(raw * scale, spec.clip[0], spec.clip[1]).astype(np.float32)
    image.flags.writeable = False
    lab.flags.writeable = False
    return DiscCrop(disc.name, int(disc.label), image, lab, geom, float(scale), method, round(outside, 4), tuple(warnings))


def _reference(raw: np.ndarray, lab: np.ndarray, disc_label: int, upper_id, lower_id, spec: CropSpec) -> tuple[float, str]:
    """Median raw intensity of the adjacent bodies in the crop stack, else of the bands around the disc."""
    ids = [v for v in (upper_id, lower_id) if v is not None]
    body = np.isin(lab, ids) if ids else np.zeros(lab.shape, dtype=bool)
    if body.sum() >= MIN_REFERENCE_PIXELS:
        return float(np.median(raw[body])), "bodies"
    disc = lab == disc_label
    centre = len(lab) // 2
    rows = np.flatnonzero(disc[centre].any(axis=1))
    cols = np.flatnonzero(disc[centre].any(axis=0))
    band = np.zeros(lab.shape, dtype=bool)
    if len(rows) and len(cols):
        margin = int(math.ceil(1.0 / spec.pixel_mm[0]))
        sel_rows = np.ones(lab.shape[1], dtype=bool)
        sel_rows[max(rows.min() - margin, 0): rows.max() + margin + 1] = False
        band[:, sel_rows, cols.min(): cols.max() + 1] = True
        band &= lab == 0
    values = raw[band]
    values = values[values > 0]
    if values.size >= MIN_REFERENCE_PIXELS:
        return float(np.median(values)), "bands"
    inside = raw[raw > 0]
    return (float(np.median(inside)) if inside.size else 0.0), "bands"
