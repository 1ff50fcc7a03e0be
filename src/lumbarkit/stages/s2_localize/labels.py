"""The VerSe label map on every slice and the named instances, from the slab's discs, bone intervals and names."""

from __future__ import annotations

import numpy as np

from lumbarkit.levels import CANAL_ID, VERTEBRA_IDS, disc_id, disc_name
from lumbarkit.results.levels import LevelInstance
from lumbarkit.scan import Scan
from lumbarkit.seg_classes import BODY, CANAL, DISC, SACRUM
from lumbarkit.stages.s2_localize.blobs import Blob, interval_index

DISC_REACH_MM = 8.0  # lateral disc voxels join the nearest slab disc within this distance


def class_map(probabilities: np.ndarray) -> np.ndarray:
    """Winning class per voxel ``(slices, rows, cols)`` uint8, computed slice by slice (no int64 volume)."""
    from lumbarkit.stages.s1_segment import winning_class

    out = np.empty((probabilities.shape[0], *probabilities.shape[2:]), dtype=np.uint8)
    for k in range(probabilities.shape[0]):
        out[k] = winning_class(probabilities[k])[0]
    return out


def label_volume(scan: Scan, probabilities: np.ndarray, discs: list[Blob], bodies: dict[int, Blob],
                  names: dict[int, tuple[str, float]], pix: np.ndarray, lumbar: int = 5) -> np.ndarray:
    """VerSe ids on every slice: discs by the nearest slab disc, bone by interval between disc planes."""
    from scipy import ndimage

    classes = class_map(probabilities)
    labels = np.zeros(classes.shape, dtype=np.int16)
    labels[classes == CANAL] = CANAL_ID
    # discs: each disc voxel joins the nearest named slab disc within DISC_REACH_MM (in-plane)
    disc_map = np.zeros(classes.shape[1:], dtype=np.int16)
    for iv, d in enumerate(discs):
        if iv in names and iv + 1 in names:
            disc_map[d.mask] = disc_id(disc_name(names[iv][0], lumbar))
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
    interval = interval_index(ij * pix, discs).reshape(bone.shape[1:])
    s1_iv = max((iv for iv, (n, _) in names.items() if n == "S1"), default=None)
    if s1_iv is not None:
        interval = np.minimum(interval, s1_iv)  # sacral segments below S1 belong to the sacrum
    boxes = ndimage.find_objects(interval + 1)  # in-plane box of each interval: a component never leaves it
    for iv, (name, _) in names.items():
        body = bodies.get(iv)
        if body is None or iv + 1 > len(boxes) or boxes[iv] is None:
            continue
        box = (slice(None), *boxes[iv])
        m = bone[box] & (interval[boxes[iv]] == iv)[None]
        comps, n = ndimage.label(m)
        on_body = comps[:, body.mask[boxes[iv]]]
        touching = np.unique(on_body[on_body > 0])
        labels[box][np.isin(comps, touching) & m] = VERTEBRA_IDS[name]
    return labels


def instances(scan: Scan, labels: np.ndarray, discs: list[Blob], names: dict[int, tuple[str, float]],
              lumbar: int = 5) -> list[LevelInstance]:
    """The named vertebrae and discs present in ``labels``: centroid (RAS mm), volume (mm3), confidence, slice."""
    from scipy import ndimage

    voxel_mm3 = float(np.prod(scan.spacing_mm))
    boxes = ndimage.find_objects(np.maximum(labels, 0))
    out: list[LevelInstance] = []
    for iv in sorted(names):
        name, conf = names[iv]
        items = [(name, VERTEBRA_IDS[name], "vertebra", conf)]
        if iv < len(discs) and iv + 1 in names:
            dname = disc_name(name, lumbar)
            items.append((dname, disc_id(dname), "disc", min(conf, names[iv + 1][1])))
        for n, lid, kind, c in items:
            if lid > len(boxes) or boxes[lid - 1] is None:
                continue
            box = boxes[lid - 1]
            idx = np.argwhere(labels[box] == lid) + [b.start for b in box]
            centroid = scan.voxel_to_mm(idx.mean(axis=0))
            out.append(LevelInstance(n, lid, kind, tuple(round(float(v), 3) for v in centroid), round(float(len(idx) * voxel_mm3), 1),
                                     round(float(np.clip(c, 0, 1)), 3), int(np.bincount(idx[:, 0]).argmax())))
    return out
