"""The spine as one chain on the mid-sagittal slab: the slab, the discs along the spine, the bone between them."""

from __future__ import annotations

import numpy as np

from lumbarkit.seg_classes import BODY, CANAL, DISC, SACRUM
from lumbarkit.stages.s2_localize.blobs import Blob, blob, components, interval_index, spine_axis, thin_direction

MIN_DISC_AREA_MM2 = 40.0  # smaller disc fragments are noise
MIN_BODY_AREA_MM2 = 120.0
MAX_OFF_SPINE_MM = 18.0  # a disc centroid farther than this from the spine curve is not a disc
BONE_RING_MM = 5.0  # a disc needs bone within this distance above and below it
MIDLINE_PRIOR_SIGMA = 0.25  # width of the centre prior of the mid-sagittal slab, as a fraction of the slice count


def midline_slices(probabilities: np.ndarray) -> tuple[int, ...]:
    """Contiguous slices around the one with most canal + disc probability (>= 60% of its mass).

    The mass is weighted by a Gaussian over the slab centred on its middle slice (sigma
    MIDLINE_PRIOR_SIGMA x slice count): a sagittal series is planned on the spine, and lateral
    slices can hold spurious disc-like tissue."""
    n = len(probabilities)
    mass = probabilities[:, CANAL].sum(axis=(1, 2), dtype=np.float64) + probabilities[:, DISC].sum(axis=(1, 2), dtype=np.float64)
    mass = mass * np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (MIDLINE_PRIOR_SIGMA * n)) ** 2)
    best = int(mass.argmax())
    lo = hi = best
    while lo > 0 and mass[lo - 1] >= 0.6 * mass[best]:
        lo -= 1
    while hi < len(mass) - 1 and mass[hi + 1] >= 0.6 * mass[best]:
        hi += 1
    return tuple(range(lo, hi + 1))


def bone_sides(disc: Blob, bone: np.ndarray, pix: np.ndarray) -> tuple[bool, bool]:
    """Is there bone within BONE_RING_MM above / below the disc (10% of the ring on that side)?"""
    from scipy import ndimage

    margin = np.ceil(BONE_RING_MM / pix).astype(int) + 1
    rows, cols = np.nonzero(disc.mask)
    r0, c0 = max(rows.min() - margin[0], 0), max(cols.min() - margin[1], 0)
    r1, c1 = rows.max() + margin[0] + 1, cols.max() + margin[1] + 1
    sub = disc.mask[r0:r1, c0:c1]
    ring = (ndimage.distance_transform_edt(~sub, sampling=pix) <= BONE_RING_MM) & ~sub
    idx = np.argwhere(ring)
    side = ((idx + (r0, c0)) * pix - disc.centroid) @ disc.normal
    sub_bone = bone[r0:r1, c0:c1]
    found = []
    for sel in (side < 0, side > 0):
        found.append(bool(sel.sum() > 0 and sub_bone[tuple(idx[sel].T)].mean() >= 0.1))
    return found[0], found[1]


def drop_off_spine(discs: list[Blob]) -> list[Blob]:
    """Robust quadratic fit of column vs row through disc centroids; drop the worst outlier until
    every disc lies within MAX_OFF_SPINE_MM of the curve."""
    kept = sorted(discs, key=lambda d: -d.area_mm2)
    while len(kept) >= 4:
        pts = np.array([d.centroid for d in kept])
        coef = np.polyfit(pts[:, 0], pts[:, 1], deg=2, w=np.sqrt([d.area_mm2 for d in kept]))
        resid = np.abs(np.polyval(coef, pts[:, 0]) - pts[:, 1])
        worst = int(resid.argmax())
        if resid[worst] <= MAX_OFF_SPINE_MM:
            break
        kept.pop(worst)
    return kept


def merge_close(discs: list[Blob], axis: np.ndarray, score_map: np.ndarray, pix: np.ndarray) -> list[Blob]:
    """Merge disc fragments at the same height along the spine (< 6 mm apart)."""
    merged: list[Blob] = []
    for d in sorted(discs, key=lambda d: float(d.centroid @ axis)):
        if merged and abs(float((d.centroid - merged[-1].centroid) @ axis)) < 6.0:
            merged[-1] = blob(merged[-1].mask | d.mask, score_map, pix)
        else:
            merged.append(d)
    return merged


def find_discs(p2: np.ndarray, c2: np.ndarray, pix: np.ndarray) -> tuple[list[Blob], bool]:
    """Discs along the spine, top to bottom, and whether the lowest one has no bone below it
    although the image goes on below (then the sacrum is there but was not segmented)."""
    bone = (c2 == BODY) | (c2 == SACRUM)
    candidates = [blob(m, p2[DISC], pix) for m in components(c2 == DISC, MIN_DISC_AREA_MM2 / pix.prod())]
    discs, terminal = [], []
    for d in candidates:
        d.normal = thin_direction(d.mask, pix)
        above, below = bone_sides(d, bone, pix)
        if above and below:
            discs.append(d)
        elif above:
            terminal.append(d)
    discs = drop_off_spine(discs)
    axis = spine_axis(np.array([d.centroid for d in discs])) if len(discs) >= 2 else np.array([1.0, 0.0])
    # a disc with bone only above may close the chain at its bottom: L5/S1 over an unsegmented sacrum
    image_bottom_mm = c2.shape[0] * pix[0]
    sacrum_inferred = False
    if discs and terminal:
        lowest = max(float(d.centroid @ axis) for d in discs)
        gaps = np.diff(sorted(float(d.centroid @ axis) for d in discs))
        reach = 1.6 * float(np.median(gaps)) if len(gaps) else 45.0
        below = [t for t in terminal if 0 < float(t.centroid @ axis) - lowest <= reach
                 and image_bottom_mm - t.centroid[0] >= 20.0]
        if below:
            discs.append(min(below, key=lambda t: float(t.centroid @ axis)))
            sacrum_inferred = True
    discs = merge_close(discs, axis, p2[DISC], pix)
    for d in discs:
        d.normal = thin_direction(d.mask, pix)
    return discs, sacrum_inferred


def bodies_between(p2: np.ndarray, c2: np.ndarray, discs: list[Blob], pix: np.ndarray) -> tuple[dict[int, Blob], np.ndarray]:
    """The largest bone blob of every interval between disc planes (0 = above the top disc) on the slab, and the
    per-pixel sacrum share of the bone probability."""
    bone = (c2 == BODY) | (c2 == SACRUM)
    sacrum_share = p2[SACRUM] / np.maximum(p2[BODY] + p2[SACRUM], 1e-6)
    idx = np.argwhere(bone)
    interval = interval_index(idx * pix, discs)
    bodies: dict[int, Blob] = {}
    for iv in range(len(discs) + 1):
        m = np.zeros(bone.shape, dtype=bool)
        m[tuple(idx[interval == iv].T)] = True
        comps = components(m, MIN_BODY_AREA_MM2 / pix.prod())
        if comps:
            bodies[iv] = blob(comps[0], sacrum_share, pix)

    return bodies, sacrum_share
