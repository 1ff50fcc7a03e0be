"""Stage 1b: instances and level names from the semantic segmentation.

Discs are the backbone: disc components are ordered along the spine, bone voxels (body or
sacrum class) are split into the intervals between consecutive disc planes, and each interval's
largest bone component becomes one vertebral body. Names run bottom-up from S1 (the bone below
the lowest disc when it is mostly sacrum class); when the sacrum is not seen, the lowest body is
called L5 with a low confidence and a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lumbarkit.levels import CANAL_ID, VERTEBRA_IDS, disc_id, disc_name, vertebra_above
from lumbarkit.scan import Scan, Segmentation
from lumbarkit.stages.seg_classes import BODY, CANAL, DISC, SACRUM

MIN_DISC_AREA_MM2 = 40.0  # per slice-equivalent; smaller disc fragments are noise
MIN_BODY_AREA_MM2 = 120.0
NO_SACRUM_CONFIDENCE = 0.3
MISSED_DISC_GAP_RATIO = 1.7  # a disc-to-disc gap this many times the median means a missed disc


@dataclass(frozen=True)
class LevelInstance:
    """One named structure: a vertebral body or a disc."""

    name: str  # "L4" or "L4/L5"
    label: int  # VerSe id
    kind: str  # "vertebra" or "disc"
    centroid_mm: tuple[float, float, float]  # RAS
    volume_mm3: float
    confidence: float  # 0..1, confidence of the level name
    slice_index: int  # sagittal slice holding most of the structure


@dataclass(frozen=True)
class Levels:
    """Named vertebrae and discs of a scan, and the VerSe label map on the scan's grid."""

    instances: tuple[LevelInstance, ...]
    segmentation: Segmentation
    sacrum_found: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def discs(self) -> tuple[LevelInstance, ...]:
        return tuple(i for i in self.instances if i.kind == "disc")

    @property
    def vertebrae(self) -> tuple[LevelInstance, ...]:
        return tuple(i for i in self.instances if i.kind == "vertebra")

    def names(self) -> list[str]:
        return [i.name for i in self.instances]


@dataclass
class _Component:
    mask: np.ndarray  # bool, scan grid
    centroid2d: np.ndarray  # (row_mm, col_mm) in-plane
    volume_mm3: float
    score: float  # mean class probability
    normal2d: np.ndarray | None = None


def _components(mask: np.ndarray, min_volume_mm3: float, voxel_mm3: float) -> list[np.ndarray]:
    from scipy import ndimage

    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = ndimage.sum_labels(np.ones_like(lab), lab, index=np.arange(1, n + 1)) * voxel_mm3
    return [lab == (i + 1) for i in np.argsort(-sizes) if sizes[i] >= min_volume_mm3]


def _inplane_points(mask: np.ndarray, row_mm: float, col_mm: float) -> np.ndarray:
    idx = np.argwhere(mask)
    return np.column_stack([idx[:, 1] * row_mm, idx[:, 2] * col_mm])


def _describe(mask: np.ndarray, prob: np.ndarray | None, row_mm: float, col_mm: float, voxel_mm3: float) -> _Component:
    pts = _inplane_points(mask, row_mm, col_mm)
    score = float(prob[mask].mean()) if prob is not None else 1.0
    return _Component(mask, pts.mean(axis=0), float(mask.sum() * voxel_mm3), score)


def _disc_normal(comp: _Component, row_mm: float, col_mm: float) -> np.ndarray:
    """Unit in-plane normal of a disc (its thinnest principal direction), pointing inferior."""
    pts = _inplane_points(comp.mask, row_mm, col_mm)
    cov = np.cov((pts - pts.mean(axis=0)).T) if len(pts) > 2 else np.eye(2)
    evals, evecs = np.linalg.eigh(cov)
    n = evecs[:, 0]
    return n if n[0] >= 0 else -n


def _spine_axis(points: np.ndarray) -> np.ndarray:
    """Unit in-plane direction along the spine (pointing inferior) through ``points``."""
    if len(points) < 2:
        return np.array([1.0, 0.0])
    _, _, vt = np.linalg.svd(points - points.mean(axis=0))
    axis = vt[0]
    return axis if axis[0] >= 0 else -axis


MAX_OFF_SPINE_MM = 18.0  # a disc centroid farther than this from the spine curve is not a disc


def _drop_off_spine(discs: list[_Component]) -> list[_Component]:
    """Drop disc candidates off the spine: robust quadratic fit of column vs row through the
    disc centroids (mm), refitted without the worst outlier until all lie within MAX_OFF_SPINE_MM."""
    kept = sorted(discs, key=lambda d: -d.volume_mm3)
    while len(kept) >= 4:
        pts = np.array([d.centroid2d for d in kept])
        weights = np.sqrt([d.volume_mm3 for d in kept])
        coef = np.polyfit(pts[:, 0], pts[:, 1], deg=2, w=weights)
        resid = np.abs(np.polyval(coef, pts[:, 0]) - pts[:, 1])
        worst = int(resid.argmax())
        if resid[worst] <= MAX_OFF_SPINE_MM:
            break
        kept.pop(worst)
    return kept


def _merge_close_discs(discs: list[_Component], axis: np.ndarray, row_mm: float, col_mm: float, voxel_mm3: float) -> list[_Component]:
    """Merge disc fragments that sit at the same height along the spine (< 6 mm apart)."""
    discs = sorted(discs, key=lambda d: float(d.centroid2d @ axis))
    merged: list[_Component] = []
    for d in discs:
        if merged and abs(float((d.centroid2d - merged[-1].centroid2d) @ axis)) < 6.0:
            m = merged[-1]
            mask = m.mask | d.mask
            score = (m.score * m.volume_mm3 + d.score * d.volume_mm3) / (m.volume_mm3 + d.volume_mm3)
            merged[-1] = _describe(mask, None, row_mm, col_mm, voxel_mm3)
            merged[-1].score = score
        else:
            merged.append(d)
    return merged


def localize(scan: Scan, probabilities: np.ndarray) -> Levels:
    """Name vertebral bodies and discs from class probabilities ``(slices, classes, rows, cols)``.

    Returns the instances and a VerSe-id label map (bodies, S1, discs, canal) on the scan grid.
    """
    classes = probabilities.argmax(axis=1)
    slice_mm, row_mm, col_mm = scan.spacing_mm
    voxel_mm3 = slice_mm * row_mm * col_mm
    warnings: list[str] = []

    disc_prob = probabilities[:, DISC]
    discs = [_describe(m, disc_prob, row_mm, col_mm, voxel_mm3)
             for m in _components(classes == DISC, MIN_DISC_AREA_MM2 * slice_mm, voxel_mm3)]
    discs = _drop_off_spine(discs)
    axis = _spine_axis(np.array([d.centroid2d for d in discs])) if len(discs) >= 2 else np.array([1.0, 0.0])
    discs = _merge_close_discs(discs, axis, row_mm, col_mm, voxel_mm3)
    for d in discs:
        d.normal2d = _disc_normal(d, row_mm, col_mm)

    bone = (classes == BODY) | (classes == SACRUM)
    sacrum_frac = probabilities[:, SACRUM] / np.maximum(probabilities[:, BODY] + probabilities[:, SACRUM], 1e-6)
    # interval index of every bone voxel: how many disc planes lie above it
    idx = np.argwhere(bone)
    pts = np.column_stack([idx[:, 1] * row_mm, idx[:, 2] * col_mm])
    interval = np.zeros(len(idx), dtype=int)
    for d in discs:
        interval += ((pts - d.centroid2d) @ d.normal2d > 0).astype(int)
    bodies: dict[int, _Component] = {}
    for iv in range(len(discs) + 1):
        sel = idx[interval == iv]
        if len(sel) == 0:
            continue
        m = np.zeros(bone.shape, dtype=bool)
        m[tuple(sel.T)] = True
        comps = _components(m, MIN_BODY_AREA_MM2 * slice_mm, voxel_mm3)
        if comps:
            bodies[iv] = _describe(comps[0], sacrum_frac, row_mm, col_mm, voxel_mm3)

    # anchor: S1 below the lowest disc, else the lowest body called L5
    n = len(discs)
    bottom = bodies.get(n)
    sacrum_found = bottom is not None and bottom.score > 0.5
    if sacrum_found:
        anchor_interval, anchor_name, anchor_conf = n, "S1", float(bottom.score)
    elif bodies:
        anchor_interval = max(bodies)
        anchor_name, anchor_conf = "L5", NO_SACRUM_CONFIDENCE
        warnings.append("sacrum not seen: the lowest vertebral body was called L5; level names are uncertain")
    else:
        anchor_interval, anchor_name, anchor_conf = n, "S1", 0.0
        if discs:
            warnings.append("no vertebral bodies found: disc names assume the lowest disc is L5/S1")

    # level offset of each interval from the anchor, counting missed discs in large gaps
    positions = [float(d.centroid2d @ axis) for d in discs]
    gaps = np.diff(positions)
    median_gap = float(np.median(gaps)) if len(gaps) else 0.0
    steps_between = [1] * len(gaps)
    for g_i, g in enumerate(gaps):
        if median_gap > 0 and g > MISSED_DISC_GAP_RATIO * median_gap:
            steps_between[g_i] = int(round(g / median_gap))
            warnings.append(f"a disc seems missed between detected discs {g_i + 1} and {g_i + 2} from the top")
    # vertebra index (0 = anchor) of each interval
    names_by_interval: dict[int, tuple[str, float]] = {}
    conf = anchor_conf
    name = anchor_name
    names_by_interval[anchor_interval] = (name, conf)
    for iv in range(anchor_interval - 1, -1, -1):
        # interval iv is above disc iv (0-based from top); disc iv separates iv and iv+1
        step = steps_between[iv] if iv < len(steps_between) and iv < anchor_interval - 1 else 1
        disc_score = discs[iv].score if iv < len(discs) else 1.0
        # a name is as sure as the anchor and the weakest disc counted on the way up
        conf = min(conf, disc_score) * (0.6 if step > 1 else 1.0)
        for _ in range(step):
            try:
                name = vertebra_above(name)
            except ValueError:
                name = ""
                break
        if not name:
            break
        names_by_interval[iv] = (name, conf)

    labels = np.zeros(classes.shape, dtype=np.int16)
    labels[classes == CANAL] = CANAL_ID
    instances: list[LevelInstance] = []
    for iv, (vname, vconf) in sorted(names_by_interval.items()):
        body = bodies.get(iv)
        if body is not None:
            vid = VERTEBRA_IDS[vname]
            labels[body.mask] = vid
            instances.append(_instance(scan, body, vname, vid, "vertebra", vconf, voxel_mm3))
        if iv < len(discs) and iv + 1 in names_by_interval:
            dname = disc_name(vname)
            did = disc_id(dname)
            labels[discs[iv].mask] = did
            instances.append(_instance(scan, discs[iv], dname, did, "disc", min(vconf, names_by_interval[iv + 1][1]), voxel_mm3))
    seg = Segmentation(labels=labels, affine=scan.affine, confidences={i.name: i.confidence for i in instances})
    return Levels(tuple(instances), seg, sacrum_found, tuple(warnings))


def _instance(scan: Scan, comp: _Component, name: str, label: int, kind: str, conf: float, voxel_mm3: float) -> LevelInstance:
    idx = np.argwhere(comp.mask)
    centroid = scan.voxel_to_mm(idx.mean(axis=0))
    k = int(np.bincount(idx[:, 0]).argmax())
    return LevelInstance(name, label, kind, tuple(round(float(v), 3) for v in centroid), round(comp.volume_mm3, 1),
                         round(float(np.clip(conf, 0, 1)), 3), k)
