"""Stage 2 (localize): instances and level names from the semantic segmentation.

Levels are found on the mid-sagittal slab (class probabilities averaged over the slices that
hold most canal and disc), where the spine is one chain: disc candidates off the spine or
without bone above and below are dropped, discs are ordered along the spine, and bone (body or
sacrum class) between consecutive disc planes becomes one vertebral body. Names run bottom-up
from S1: the topmost bone interval that is mostly sacrum class, counted from the bottom (discs
below it are sacral remnants and are dropped). When no sacrum is seen the lowest body is called
L5 with a low confidence and a warning. The slab's disc planes then label every slice in 3D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lumbarkit.levels import (
    CANAL_ID,
    VERTEBRA_IDS,
    disc_id,
    disc_name,
    vertebra_above,
)
from lumbarkit.results.labelmap import LabelMap
from lumbarkit.results.levels import LevelInstance, Levels
from lumbarkit.scan import Scan
from lumbarkit.seg_classes import BODY, CANAL, DISC, SACRUM

MIN_DISC_AREA_MM2 = 40.0  # smaller disc fragments are noise
MIN_BODY_AREA_MM2 = 120.0
NO_SACRUM_CONFIDENCE = 0.3
INFERRED_SACRUM_CONFIDENCE = 0.6
CUT_SACRUM_CONFIDENCE = 0.45
MIN_CUT_WIDTH_MM = 10.0  # bone at least this wide on the image's last row was cut by the field of view
SACRUM_LENGTH_RATIO = 1.5  # bone below the lowest disc this many disc spacings long is the sacrum
SACRUM_FRACTION = 0.4  # bone interval counts as sacral when this share of its bone is sacrum class
MISSED_DISC_GAP_RATIO = 1.7  # a disc-to-disc gap this many times the median means a missed disc
MAX_OFF_SPINE_MM = 18.0  # a disc centroid farther than this from the spine curve is not a disc
BONE_RING_MM = 5.0  # a disc needs bone within this distance above and below it
MIDLINE_PRIOR_SIGMA = 0.25  # width of the centre prior of the mid-sagittal slab, as a fraction of the slice count
DISC_REACH_MM = 8.0  # lateral disc voxels join the nearest slab disc within this distance


@dataclass
class _Blob:
    """A 2D structure on the mid-sagittal slab (coordinates in mm: row, col)."""

    mask: np.ndarray
    centroid: np.ndarray
    area_mm2: float
    score: float
    normal: np.ndarray | None = None


def _components(mask: np.ndarray, min_pixels: float) -> list[np.ndarray]:
    """Connected components of ``mask`` with at least ``min_pixels`` pixels, largest first."""
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1))
    return [lab == (i + 1) for i in np.argsort(-sizes) if sizes[i] >= min_pixels]


def _points(mask: np.ndarray, pix: np.ndarray) -> np.ndarray:
    return np.argwhere(mask) * pix


def _blob(mask: np.ndarray, score_map: np.ndarray, pix: np.ndarray) -> _Blob:
    pts = _points(mask, pix)
    return _Blob(mask, pts.mean(axis=0), float(mask.sum() * pix.prod()), float(score_map[mask].mean()))


def _thin_direction(mask: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Unit direction of least extent of a blob (a disc's normal), pointing inferior."""
    pts = _points(mask, pix)
    if len(pts) < 3:
        return np.array([1.0, 0.0])
    _, vecs = np.linalg.eigh(np.cov((pts - pts.mean(axis=0)).T))
    n = vecs[:, 0]
    return n if n[0] >= 0 else -n


def midline_slices(probabilities: np.ndarray) -> tuple[int, ...]:
    """Contiguous slices around the one with most canal + disc probability (>= 60% of its mass).

    The mass is weighted by a Gaussian over the slab centred on its middle slice (sigma
    MIDLINE_PRIOR_SIGMA x slice count): a sagittal series is planned on the spine, and lateral
    slices can hold spurious disc-like tissue."""
    n = len(probabilities)
    mass = probabilities[:, CANAL].sum(axis=(1, 2)) + probabilities[:, DISC].sum(axis=(1, 2))
    mass = mass * np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (MIDLINE_PRIOR_SIGMA * n)) ** 2)
    best = int(mass.argmax())
    lo = hi = best
    while lo > 0 and mass[lo - 1] >= 0.6 * mass[best]:
        lo -= 1
    while hi < len(mass) - 1 and mass[hi + 1] >= 0.6 * mass[best]:
        hi += 1
    return tuple(range(lo, hi + 1))


def _bone_sides(disc: _Blob, bone: np.ndarray, pix: np.ndarray) -> tuple[bool, bool]:
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


def _drop_off_spine(discs: list[_Blob]) -> list[_Blob]:
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


def _spine_axis(points: np.ndarray) -> np.ndarray:
    """Unit direction along the spine (pointing inferior) through ``points``."""
    if len(points) < 2:
        return np.array([1.0, 0.0])
    _, _, vt = np.linalg.svd(points - points.mean(axis=0))
    return vt[0] if vt[0][0] >= 0 else -vt[0]


def _merge_close(discs: list[_Blob], axis: np.ndarray, score_map: np.ndarray, pix: np.ndarray) -> list[_Blob]:
    """Merge disc fragments at the same height along the spine (< 6 mm apart)."""
    merged: list[_Blob] = []
    for d in sorted(discs, key=lambda d: float(d.centroid @ axis)):
        if merged and abs(float((d.centroid - merged[-1].centroid) @ axis)) < 6.0:
            merged[-1] = _blob(merged[-1].mask | d.mask, score_map, pix)
        else:
            merged.append(d)
    return merged


def _interval_index(points_mm: np.ndarray, discs: list[_Blob]) -> np.ndarray:
    """For points (N, 2) in mm: how many disc planes lie above each point."""
    out = np.zeros(len(points_mm), dtype=int)
    for d in discs:
        out += ((points_mm - d.centroid) @ d.normal > 0).astype(int)
    return out


def _find_discs(p2: np.ndarray, c2: np.ndarray, pix: np.ndarray) -> tuple[list[_Blob], bool]:
    """Discs along the spine, top to bottom, and whether the lowest one has no bone below it
    although the image goes on below (then the sacrum is there but was not segmented)."""
    bone = (c2 == BODY) | (c2 == SACRUM)
    candidates = [_blob(m, p2[DISC], pix) for m in _components(c2 == DISC, MIN_DISC_AREA_MM2 / pix.prod())]
    discs, terminal = [], []
    for d in candidates:
        d.normal = _thin_direction(d.mask, pix)
        above, below = _bone_sides(d, bone, pix)
        if above and below:
            discs.append(d)
        elif above:
            terminal.append(d)
    discs = _drop_off_spine(discs)
    axis = _spine_axis(np.array([d.centroid for d in discs])) if len(discs) >= 2 else np.array([1.0, 0.0])
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
    discs = _merge_close(discs, axis, p2[DISC], pix)
    for d in discs:
        d.normal = _thin_direction(d.mask, pix)
    return discs, sacrum_inferred


def _median_gap(discs: list[_Blob]) -> float:
    """Median distance (mm) between consecutive discs along the spine (35 mm, a lumbar segment, if < 2 discs)."""
    if len(discs) < 2:
        return 35.0
    axis = _spine_axis(np.array([d.centroid for d in discs]))
    return float(np.median(np.diff([float(d.centroid @ axis) for d in discs])))


def _bone_length_below(bone: _Blob, discs: list[_Blob], pix: np.ndarray) -> float:
    """How far (mm) the bone blob reaches below the lowest disc, along that disc's normal."""
    pts = _points(bone.mask, pix)
    return float(np.max((pts - discs[-1].centroid) @ discs[-1].normal)) if len(pts) else 0.0


def _cut_by_image_bottom(bone: _Blob, pix: np.ndarray) -> bool:
    """Whether the bone blob runs off the bottom of the image (a vertebra only partly in the field of view)."""
    return float(bone.mask[-1].sum() * pix[1]) >= MIN_CUT_WIDTH_MM


def localize(scan: Scan, probabilities: np.ndarray) -> Levels:
    """Name vertebral bodies and discs from class probabilities ``(slices, classes, rows, cols)``.

    Returns the instances (top to bottom) and a VerSe-id label map (bodies, S1 with the rest of
    the sacrum, discs, canal) on the scan grid.
    """
    pix = np.array(scan.spacing_mm[1:])
    slab = midline_slices(probabilities)
    p2 = probabilities[list(slab)].mean(axis=0)
    c2 = p2.argmax(axis=0)
    warnings: list[str] = []
    discs, sacrum_inferred = _find_discs(p2, c2, pix)
    bodies, sacrum_share = _bodies_between(p2, c2, discs, pix)
    anchor, anchor_name, anchor_conf, discs, bodies, sacrum_found = _anchor(bodies, discs, sacrum_inferred, sacrum_share,
                                                                            pix, warnings)
    names = _walk_up(discs, anchor, anchor_name, anchor_conf, warnings)
    labels = _label_volume(scan, probabilities, discs, bodies, names, pix)
    instances = _instances(scan, labels, discs, names)
    seg = LabelMap(labels=labels, affine=scan.affine, confidences={i.name: i.confidence for i in instances})
    return Levels(tuple(instances), seg, sacrum_found, tuple(warnings), slab)


def _bodies_between(p2: np.ndarray, c2: np.ndarray, discs: list[_Blob], pix: np.ndarray) -> tuple[dict[int, _Blob], np.ndarray]:
    """The largest bone blob of every interval between disc planes (0 = above the top disc) on the slab, and the
    per-pixel sacrum share of the bone probability."""
    bone = (c2 == BODY) | (c2 == SACRUM)
    sacrum_share = p2[SACRUM] / np.maximum(p2[BODY] + p2[SACRUM], 1e-6)
    idx = np.argwhere(bone)
    interval = _interval_index(idx * pix, discs)
    bodies: dict[int, _Blob] = {}
    for iv in range(len(discs) + 1):
        m = np.zeros(bone.shape, dtype=bool)
        m[tuple(idx[interval == iv].T)] = True
        comps = _components(m, MIN_BODY_AREA_MM2 / pix.prod())
        if comps:
            bodies[iv] = _blob(comps[0], sacrum_share, pix)

    return bodies, sacrum_share


def _anchor(bodies: dict[int, _Blob], discs: list[_Blob], sacrum_inferred: bool, sacrum_share: np.ndarray,
            pix: np.ndarray, warnings: list[str]):
    """The interval named first and its name and confidence: S1 (the topmost sacral interval counted from the bottom;
    discs below it are sacral remnants, or S1 inferred), else L5. Returns (anchor, name, confidence, discs, bodies,
    sacrum_found) with discs and bodies trimmed to the named ones; appends what it assumed to ``warnings``."""
    s1 = None
    for iv in sorted(bodies, reverse=True):
        if bodies[iv].score >= SACRUM_FRACTION:
            s1 = iv
        elif s1 is not None:
            break
    sacrum_found = s1 is not None
    if sacrum_found:
        s1_mask = np.zeros(sacrum_share.shape, dtype=bool)
        for iv in range(s1, len(discs) + 1):
            if iv in bodies:
                s1_mask |= bodies[iv].mask
        bodies = {iv: b for iv, b in bodies.items() if iv < s1}
        bodies[s1] = _blob(s1_mask, sacrum_share, pix)
        discs = discs[:s1]
        anchor, anchor_name, anchor_conf = s1, "S1", float(bodies[s1].score)
    elif sacrum_inferred and bodies:
        anchor, anchor_name, anchor_conf = len(discs), "S1", INFERRED_SACRUM_CONFIDENCE
        warnings.append("sacrum not segmented: inferred below the lowest disc, which has bone only nearby above it")
    elif bodies and discs and max(bodies) == len(discs) and _bone_length_below(bodies[len(discs)], discs, pix) >= SACRUM_LENGTH_RATIO * _median_gap(discs):
        # bone below the lowest disc reaching much further down than one vertebra would, with no disc in it: the sacrum
        anchor, anchor_name, anchor_conf = len(discs), "S1", INFERRED_SACRUM_CONFIDENCE
        warnings.append("sacrum not classified: the bone below the lowest disc was taken as S1")
    elif bodies and discs and max(bodies) > 0 and _cut_by_image_bottom(bodies[max(bodies)], pix):
        # a lumbar field of view nearly always includes L5/S1, so a vertebra cut off below the lowest disc is S1
        # (a 'disc' found below it, in the last millimetres of the image, is a sacral remnant)
        anchor, anchor_name, anchor_conf = max(bodies), "S1", CUT_SACRUM_CONFIDENCE
        discs = discs[:anchor]
        warnings.append("sacrum not classified: the bone below the lowest disc runs off the image and was taken as S1")
    elif bodies:
        anchor, anchor_name, anchor_conf = max(bodies), "L5", NO_SACRUM_CONFIDENCE
        discs = discs[: anchor + 1] if anchor < len(discs) else discs
        warnings.append("sacrum not seen: the lowest vertebral body was called L5; level names are uncertain")
    else:
        anchor, anchor_name, anchor_conf = len(discs), "S1", 0.0
        if discs:
            warnings.append("no vertebral bodies found: disc names assume the lowest disc is L5/S1")

    return anchor, anchor_name, anchor_conf, discs, bodies, sacrum_found


def _walk_up(discs: list[_Blob], anchor: int, anchor_name: str, anchor_conf: float, warnings: list[str]) -> dict[int, tuple[str, float]]:
    """Names and confidences of the intervals above the anchor, counting missed discs in large gaps."""
    axis = _spine_axis(np.array([d.centroid for d in discs])) if len(discs) >= 2 else np.array([1.0, 0.0])
    gaps = np.diff([float(d.centroid @ axis) for d in discs])
    median_gap = float(np.median(gaps)) if len(gaps) else 0.0
    names: dict[int, tuple[str, float]] = {anchor: (anchor_name, anchor_conf)}
    name, conf = anchor_name, anchor_conf
    for iv in range(min(anchor, len(discs)) - 1, -1, -1):
        # crossing disc iv from interval iv+1 up to interval iv
        steps = 1
        if iv + 1 < anchor and iv < len(gaps) and median_gap > 0 and gaps[iv] > MISSED_DISC_GAP_RATIO * median_gap:
            steps = int(round(gaps[iv] / median_gap))
            warnings.append(f"a disc seems missed between detected discs {iv + 1} and {iv + 2} from the top")
        conf = min(conf, discs[iv].score) * (0.6 if steps > 1 else 1.0)
        try:
            for _ in range(steps):
                name = vertebra_above(name)
        except ValueError:
            break
        names[iv] = (name, conf)

    return names


def class_map(probabilities: np.ndarray) -> np.ndarray:
    """Winning class per voxel ``(slices, rows, cols)`` uint8, computed slice by slice (no int64 volume)."""
    out = np.empty((probabilities.shape[0], *probabilities.shape[2:]), dtype=np.uint8)
    for k in range(probabilities.shape[0]):
        out[k] = probabilities[k].argmax(axis=0)
    return out


def _label_volume(scan: Scan, probabilities: np.ndarray, discs: list[_Blob], bodies: dict[int, _Blob],
                  names: dict[int, tuple[str, float]], pix: np.ndarray) -> np.ndarray:
    """VerSe ids on every slice: discs by the nearest slab disc, bone by interval between disc planes."""
    from scipy import ndimage

    classes = class_map(probabilities)
    labels = np.zeros(classes.shape, dtype=np.int16)
    labels[classes == CANAL] = CANAL_ID
    # discs: each disc voxel joins the nearest named slab disc within DISC_REACH_MM (in-plane)
    disc_map = np.zeros(classes.shape[1:], dtype=np.int16)
    for iv, d in enumerate(discs):
        if iv in names and iv + 1 in names:
            disc_map[d.mask] = disc_id(disc_name(names[iv][0]))
    if disc_map.any():
        dist, (ri, ci) = ndimage.distance_transform_edt(disc_map == 0, sampling=pix, return_indices=True)
        nearest = np.where(dist <= DISC_REACH_MM, disc_map[ri, ci], 0)
        is_disc = classes == DISC
        labels[is_disc] = np.broadcast_to(nearest, classes.shape)[is_disc]
    # bone: interval between disc planes -> vertebra id; keep the 3D component touching the slab body
    bone = (classes == BODY) | (classes == SACRUM)
    del classes
    # the interval between disc planes depends on the in-plane position only: one map for every slice
    ij = np.indices(bone.shape[1:]).reshape(2, -1).T
    interval = _interval_index(ij * pix, discs).reshape(bone.shape[1:])
    s1_iv = max((iv for iv, (n, _) in names.items() if n == "S1"), default=None)
    if s1_iv is not None:
        interval = np.minimum(interval, s1_iv)  # sacral segments below S1 belong to the sacrum
    for iv, (name, _) in names.items():
        body = bodies.get(iv)
        if body is None:
            continue
        m = bone & (interval == iv)[None]
        comps, n = ndimage.label(m)
        touching = np.unique(comps[:, body.mask][comps[:, body.mask] > 0])
        labels[np.isin(comps, touching) & m] = VERTEBRA_IDS[name]
    return labels


def _instances(scan: Scan, labels: np.ndarray, discs: list[_Blob], names: dict[int, tuple[str, float]]) -> list[LevelInstance]:
    voxel_mm3 = float(np.prod(scan.spacing_mm))
    out: list[LevelInstance] = []
    for iv in sorted(names):
        name, conf = names[iv]
        items = [(name, VERTEBRA_IDS[name], "vertebra", conf)]
        if iv < len(discs) and iv + 1 in names:
            dname = disc_name(name)
            items.append((dname, disc_id(dname), "disc", min(conf, names[iv + 1][1])))
        for n, lid, kind, c in items:
            m = labels == lid
            if not m.any():
                continue
            idx = np.argwhere(m)
            centroid = scan.voxel_to_mm(idx.mean(axis=0))
            out.append(LevelInstance(n, lid, kind, tuple(round(float(v), 3) for v in centroid), round(float(m.sum() * voxel_mm3), 1),
                                     round(float(np.clip(c, 0, 1)), 3), int(np.bincount(idx[:, 0]).argmax())))
    return out
