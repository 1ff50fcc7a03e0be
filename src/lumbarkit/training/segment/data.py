"""Training slices for the segmentation net from partly labelled sources.

Every source labels only some structures (see ../shared/data/README.md). Each training pixel
therefore carries a *target code*: the set of classes it may belong to. A labelled body pixel
allows {body}; an unlabelled pixel of a source that only labels bodies allows every class but
body; SPIDER's "vertebra" allows {body, posterior elements, sacrum}. Pixels above a source's
top labelled structure and slices without labels get code IGNORE and no loss; pixels below
its lowest labelled structure (L5, S1 or L5/S1) may be anything but a vertebral body. The loss is the marginal cross-entropy
``-log sum_{c in allowed} p_c``.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lumbarkit.seg_classes import (
    BACKGROUND,
    BODY,
    CANAL,
    DISC,
    NUM_CLASSES,
    POSTERIOR,
    SACRUM,
)
from lumbarkit.stages.s1_segment import normalise_slice, resample_2d

log = logging.getLogger(__name__)

ALL = frozenset(range(NUM_CLASSES))
# code -> allowed classes; code 0 = ignore (no loss).
ALLOWED_SETS: tuple[frozenset, ...] = (
    frozenset(),  # 0 ignore
    frozenset({BACKGROUND}),  # 1
    frozenset({BODY}),  # 2
    frozenset({DISC}),  # 3
    frozenset({CANAL}),  # 4
    frozenset({SACRUM}),  # 5
    frozenset({BODY, POSTERIOR, SACRUM}),  # 6 SPIDER vertebra
    frozenset({BODY, SACRUM}),  # 7 slices2d bone (bodies incl. sacral segments)
    ALL - {BODY},  # 8 unlabelled pixel of a body-only source (vb2, vb3)
    ALL - {BODY, SACRUM},  # 9 unlabelled pixel of vb1 (bodies and S1 labelled)
    ALL - {DISC},  # 10 unlabelled pixel of a disc-only source (ivd)
    frozenset({BACKGROUND, CANAL, POSTERIOR}),  # 11 unlabelled pixel of slices2d
    frozenset({SACRUM, POSTERIOR}),  # 12 SPIDER vertebra below the lowest disc (sacrum)
    frozenset({BODY, POSTERIOR}),  # 13 spider_masks vertebra above the lowest disc (never sacrum), beside the canal
    frozenset({POSTERIOR}),  # 14 spider_masks vertebra behind the spinal canal
)
IGNORE = 0
BELOW_LOWEST_LABEL = 8  # anything but a vertebral body


def allowed_table() -> np.ndarray:
    """(codes, classes) 0/1 table of :data:`ALLOWED_SETS`."""
    table = np.zeros((len(ALLOWED_SETS), NUM_CLASSES), dtype=np.float32)
    for code, allowed in enumerate(ALLOWED_SETS):
        table[code, sorted(allowed)] = 1.0
    return table


@dataclass(frozen=True)
class TrainingSlice:
    """One sagittal slice at the training resolution: image in [0, 1] and its target codes."""

    case: str
    patient: str
    source: str
    image: np.ndarray  # (rows, cols) float32
    codes: np.ndarray  # (rows, cols) uint8
    sequence: str = "unknown"


def _lowest_disc_plane(disc: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Centre (row, col) and inferior-pointing normal of the lowest disc of a 2D mask, or None."""
    from scipy import ndimage

    dlab, nd = ndimage.label(disc)
    if nd == 0:
        return None
    sizes = ndimage.sum_labels(disc, dlab, index=np.arange(1, nd + 1))
    keep = [i + 1 for i in range(nd) if sizes[i] >= 0.3 * sizes.max()]
    lowest = max(keep, key=lambda i: np.argwhere(dlab == i)[:, 0].mean())
    pts = np.argwhere(dlab == lowest).astype(float)
    centre = pts.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((pts - centre).T))
    normal = vecs[:, 0] if vecs[0, 0] >= 0 else -vecs[:, 0]  # thin direction, pointing inferior
    return centre, normal


def below_lowest_disc_plane(disc: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
    """Pixels of a 2D mask's grid lying more than ``margin_px`` below the plane of its lowest disc."""
    plane = _lowest_disc_plane(disc)
    out = np.zeros(disc.shape, dtype=bool)
    if plane is None:
        return out
    centre, normal = plane
    rr, cc = np.indices(disc.shape)
    return (rr - centre[0]) * normal[0] + (cc - centre[1]) * normal[1] > margin_px


def _below_lowest_disc(bone: np.ndarray, disc: np.ndarray) -> np.ndarray:
    """Bone components of one slice lying below the plane of the slice's lowest disc (the sacrum).

    Masks that label every disc (SPIDER, slices2d) make the bone below the lowest disc sacral.
    """
    from scipy import ndimage

    out = np.zeros(bone.shape, dtype=bool)
    plane = _lowest_disc_plane(disc)
    if plane is None:
        return out
    centre, normal = plane
    blab, nb = ndimage.label(bone)
    for i in range(1, nb + 1):
        comp = blab == i
        if (np.argwhere(comp).mean(axis=0) - centre) @ normal > 0:
            out |= comp
    return out


DISC_CORE_ERODE_PX = 2  # keep the disc target clear of the body edges and of the hull's corners


def _between_bodies(label_slice: np.ndarray) -> np.ndarray:
    """Pixels of one slice lying between two consecutive labelled vertebrae: the inside of the
    convex hull of the pair minus both bodies, eroded by DISC_CORE_ERODE_PX. Between two adjacent
    bodies there is only intervertebral disc, so body-only sources get disc targets there."""
    from scipy import ndimage
    from skimage.morphology import convex_hull_image

    out = np.zeros(label_slice.shape, dtype=bool)
    ids = sorted(int(v) for v in np.unique(label_slice) if 0 < v < 100)
    bone = (label_slice > 0) & (label_slice < 100)
    for upper, lower in zip(ids, ids[1:]):
        if lower - upper > 2:  # not neighbours (S1 = 26 follows L5 = 24)
            continue
        a, b = label_slice == upper, label_slice == lower
        if a.sum() < 20 or b.sum() < 20:
            continue
        hull = convex_hull_image(a | b)
        gap = hull & ~ndimage.binary_dilation(bone, iterations=1)
        out |= ndimage.binary_erosion(gap, iterations=DISC_CORE_ERODE_PX)
    return out


def codes_volume(labels: np.ndarray, source: str) -> np.ndarray:
    """Target codes for a canonical (slices, rows, cols) label volume of one source."""
    codes = np.zeros(labels.shape, dtype=np.uint8)
    if source in ("vb1", "vb2", "vb3"):
        body = (labels > 0) & (labels < 100) & (labels != 26)
        sacrum = labels == 26
        codes[:] = 9 if source == "vb1" else 8
        codes[body] = 2
        codes[sacrum] = 5
        for k in range(labels.shape[0]):
            codes[k][_between_bodies(labels[k])] = 3
        labelled = labels > 0
    elif source == "ivd":
        disc = labels >= 100
        codes[:] = 10
        codes[disc] = 3
        labelled = disc
    elif source == "spider_space":
        codes[:] = 1
        codes[labels == 1] = 6
        codes[labels == 2] = 3
        codes[labels == 3] = 4
        for k in range(labels.shape[0]):
            codes[k][_below_lowest_disc(labels[k] == 1, labels[k] == 2)] = 12
        return codes  # fully annotated: no extent limit
    else:
        raise ValueError(f"unknown source {source}")
    # limit the loss to the labelled extent: rows from the top labelled voxel down, on slices
    # holding labels. Every source labels its structures down to L5, S1 or L5/S1, so whatever
    # lies below them is no lumbar vertebral body (it is sacrum, disc or soft tissue): code 8
    # there teaches the net that the bone under L5 is not a body, which anchors level names.
    rows = np.flatnonzero(labelled.any(axis=(0, 2)))
    slices_with = labelled.any(axis=(1, 2))
    codes[:, rows.max() + 1 :] = BELOW_LOWEST_LABEL
    codes[:, : rows.min()] = IGNORE
    codes[~slices_with] = IGNORE
    return codes


SPIDER_MASK_VALUES = {"vertebra": 1, "disc": 2, "canal": 3}  # spider_masks/*_label.png


CANAL_MARGIN_PX = 2  # vertebra pixels this close to the canal's front or back row edge stay body-or-posterior


def split_by_canal(vertebra: np.ndarray, canal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Body and posterior-element pixels of a mid-sagittal whole-vertebra mask: in front of the spinal canal
    (lower columns) lies the vertebral body, behind it the posterior elements. The canal's front and back
    column per row are interpolated over rows without canal; pixels within CANAL_MARGIN_PX of them are left out."""
    rows = np.flatnonzero(canal.any(axis=1))
    if len(rows) < 2:
        return np.zeros_like(vertebra), np.zeros_like(vertebra)
    front = np.array([np.flatnonzero(canal[r]).min() for r in rows], dtype=float)
    back = np.array([np.flatnonzero(canal[r]).max() for r in rows], dtype=float)
    all_rows = np.arange(canal.shape[0])
    cols = np.arange(canal.shape[1])[None, :]
    body = vertebra & (cols < np.interp(all_rows, rows, front)[:, None] - CANAL_MARGIN_PX)
    posterior = vertebra & (cols > np.interp(all_rows, rows, back)[:, None] + CANAL_MARGIN_PX)
    return body, posterior


def spider_mask_codes(raw: np.ndarray) -> np.ndarray:
    """Target codes of one spider_masks slice (0 background, 1 whole vertebra, 2 disc, 3 canal).

    Every vertebra, disc and the canal in view are labelled, but not the sacrum: pixels below the
    plane of the lowest disc may be anything but a vertebral body (code 8), one below it is sacral (12).
    A labelled vertebra above it is never sacrum: body in front of the canal (2), posterior elements
    behind it (14), either (13) close to the canal's edges."""
    vertebra, disc = raw == SPIDER_MASK_VALUES["vertebra"], raw == SPIDER_MASK_VALUES["disc"]
    codes = np.ones(raw.shape, dtype=np.uint8)
    codes[below_lowest_disc_plane(disc)] = BELOW_LOWEST_LABEL
    codes[vertebra] = 13
    body, posterior = split_by_canal(vertebra, raw == SPIDER_MASK_VALUES["canal"])
    codes[body] = 2
    codes[posterior] = 14
    codes[_below_lowest_disc(vertebra, disc)] = 12
    codes[disc] = 3
    codes[raw == SPIDER_MASK_VALUES["canal"]] = 4
    return codes


SOURCE_SEQUENCE = {"vb1": "mixed T1/T2/TIRM", "vb2": "t2", "vb3": "water-fat", "ivd": "t2", "slices2d": "t2",
                   "spider_space": "t2_SPACE"}


def _spider_mask_cases(data: Path) -> list[dict]:
    """SPIDER mid-sagittal slices with ground-truth masks (spider_masks/), spacing from spider/series.csv."""
    from lumbarkit.training.grade.data import read_series, sequence_of

    masks = data / "spider_masks"
    rows = _read_index(masks / "index.csv")
    if not rows or not (data / "spider" / "series.csv").is_file():
        return []
    spacing = {r["series"]: r["spacing_mm"] for r in read_series(data / "spider")}
    cases = [
        {"case": f"mask_{r['series']}", "patient": f"spider_{r['patient']}", "source": "spider_masks",
         "sequence": sequence_of(r["series"]), "image": data / "spider" / "images" / f"{r['series']}.png",
         "label": masks / f"{r['series']}_label.png", "spacing_mm": spacing.get(r["series"])}
        for r in rows
    ]
    return [c for c in cases if c["image"].exists() and c["label"].exists() and c["spacing_mm"]]


def _read_index(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _volume_cases(data: Path) -> list[dict]:
    vol, space = data / "volumes", data / "spider_space"
    cases = [
        {"case": r["case"], "patient": r["case"], "source": r["dataset"],
         "image": vol / f"{r['case']}_image.nii.gz", "label": vol / f"{r['case']}_label.nii.gz"}
        for r in _read_index(vol / "index.csv")
    ]
    cases += [
        {"case": r["series"], "patient": f"spider_{r['patient']}", "source": "spider_space",
         "image": space / f"{r['series']}_image.nii.gz", "label": space / f"{r['series']}_label.nii.gz"}
        for r in _read_index(space / "index.csv")
    ]
    cases = [{**c, "sequence": SOURCE_SEQUENCE[c["source"]]} for c in cases
             if c["image"].exists() and c["label"].exists()]
    return group_same_patients(cases)


SAME_PATIENT_MM = 6.0  # label centroids of two series of one patient agree within this


def _label_centroids(path: Path) -> tuple[tuple, dict[int, np.ndarray]]:
    """Grid shape and centroid (mm) of every label id of a mask volume."""
    from scipy import ndimage

    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume

    labels = read_label_volume(path)
    spacing = np.array(load_scan(path).spacing_mm)
    ids = [int(v) for v in np.unique(labels) if v]
    cents = ndimage.center_of_mass(labels > 0, labels, ids)
    return labels.shape, {i: np.asarray(c) * spacing for i, c in zip(ids, cents)}


def group_same_patients(cases: list[dict]) -> list[dict]:
    """One patient id for volumes of one source whose masks share the grid and whose label
    centroids agree within SAME_PATIENT_MM (a copied mask, or T1/T2 series labelled on one
    geometry), so that a patient never sits on both sides of a CV split."""
    kept: list[tuple[dict, tuple, dict]] = []
    for c in cases:
        if c["source"] == "spider_space":
            continue
        shape, cents = _label_centroids(c["label"])
        for other, oshape, ocents in kept:
            common = set(cents) & set(ocents)
            if other["source"] == c["source"] and oshape == shape and common and max(
                    np.linalg.norm(cents[i] - ocents[i]) for i in common) <= SAME_PATIENT_MM:
                c["patient"] = other["patient"]
                break
        else:
            kept.append((c, shape, cents))
    return cases


SLICES2D_SPACING_MM = 1.3  # not recorded by the source; estimated from body size (README)


def list_cases(data: Path) -> list[dict]:
    """All labelled training cases under ``data`` (the shared data folder), sorted by case id."""
    cases = _volume_cases(data) + _spider_mask_cases(data)
    for image in sorted((data / "slices2d").glob("slice*_image.png")):
        name = image.name.replace("_image.png", "")
        cases.append({"case": name, "patient": f"slices2d_{name}", "source": "slices2d", "sequence": "t2",
                      "image": image, "label": image.with_name(f"{name}_label.png")})
    return sorted(cases, key=lambda c: c["case"])


def load_png_case(case: dict):
    """(scan, 2D label array) of a 2D case (slices2d, spider_masks): the image with its pixel spacing (the case's,
    or the slices2d estimate) and its PNG mask."""
    import imageio.v3 as iio

    from lumbarkit.io import load_scan

    spacing = case.get("spacing_mm") or (SLICES2D_SPACING_MM, SLICES2D_SPACING_MM)
    return load_scan(case["image"], spacing_mm=spacing), np.asarray(iio.imread(case["label"]))


def load_case_slices(case: dict, target_mm: float) -> list[TrainingSlice]:
    """Resampled, normalised training slices of one case (only slices with a loss region)."""
    from lumbarkit.io import load_scan
    from lumbarkit.io.volume import read_label_volume

    if case["source"] == "slices2d":
        scan, raw = load_png_case(case)
        # slices without body labels annotate discs only: unlabelled pixels may then be bone
        codes = np.full(raw.shape, 11 if (raw == 2).any() else 10, dtype=np.uint8)
        codes[raw == 1] = 3
        codes[raw == 2] = 7
        codes[_below_lowest_disc(raw == 2, raw == 1)] = 5
        codes = codes[None]
    elif case["source"] == "spider_masks":
        scan, raw = load_png_case(case)
        codes = spider_mask_codes(raw)[None]
    else:
        scan = load_scan(case["image"])
        labels = read_label_volume(case["label"])
        codes = codes_volume(labels, case["source"])
    spacing_rc = scan.spacing_mm[1:]
    out = []
    for k in range(scan.shape[0]):
        if not (codes[k] != IGNORE).any():
            continue
        factors = (spacing_rc[0] / target_mm, spacing_rc[1] / target_mm)
        img = resample_2d(normalise_slice(scan.array[k]), factors, order=1)
        cod = resample_2d(codes[k], factors, order=0).astype(np.uint8)
        out.append(TrainingSlice(case["case"], case["patient"], case["source"], img, cod, case.get("sequence", "unknown")))
    return out
